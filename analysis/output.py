"""Writing files atomically (temp file + os.replace), so an interrupted run never leaves half a table; a folder or
file that cannot be written is an AnalysisError that names it."""
import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import AnalysisError
from .table import Table, to_csv, to_latex, to_markdown


@dataclass(frozen=True)
class Written:
    """Files written together (a table's .md/.tex/.csv, a figure's .png/.pdf) and the title that says what they hold."""
    title: str
    paths: list[Path]


def writable(folder: Path) -> None:
    """Refuses an output folder that cannot be written, before anything is read or computed (and without making it:
    a refused analysis leaves nothing behind)."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = errno.ENOTDIR
    elif os.statvfs(existing).f_flag & os.ST_RDONLY:
        reason = errno.EROFS
    else:
        reason = None if os.access(existing, os.W_OK | os.X_OK) else errno.EACCES
    if reason is not None:
        raise AnalysisError(f"cannot write to --out {folder} ({os.strerror(reason)}: {existing}); "
                            "choose a writable folder with --out")


def write_text(path: Path, text: str) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise AnalysisError(f"cannot write {path} ({e.strerror}); the files written before it are complete, "
                            "the others unchanged: free the space or choose a writable folder with --out") from None
    return path


def write_table(table: Table, directory: Path, provenance: str) -> Written:
    return Written(table.title, [write_text(directory / f"{table.name}.md", to_markdown(table, provenance)),
                                 write_text(directory / f"{table.name}.tex", to_latex(table, provenance)),
                                 write_text(directory / f"{table.name}.csv", to_csv(table, provenance))])


def copy_with_source(source: Path, target: Path, provenance: str) -> Path:
    """Copy a CSV keeping its comment lines, with a first line naming where it came from."""
    header = f"# source: {source} (copied unchanged below); {provenance}\n"
    return write_text(target, header + source.read_text(encoding="utf-8"))
