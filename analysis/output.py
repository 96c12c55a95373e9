"""Writing files atomically (temp file + os.replace), so an interrupted run never leaves half a table."""
import os
from dataclasses import dataclass
from pathlib import Path

from .table import Table, to_csv, to_latex, to_markdown


@dataclass(frozen=True)
class Written:
    """Files written together (a table's .md/.tex/.csv, a figure's .png/.pdf) and the title that says what they hold."""
    title: str
    paths: list[Path]


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_table(table: Table, directory: Path, provenance: str) -> Written:
    return Written(table.title, [write_text(directory / f"{table.name}.md", to_markdown(table, provenance)),
                                 write_text(directory / f"{table.name}.tex", to_latex(table, provenance)),
                                 write_text(directory / f"{table.name}.csv", to_csv(table, provenance))])


def copy_with_source(source: Path, target: Path, provenance: str) -> Path:
    """Copy a CSV keeping its comment lines, with a first line naming where it came from."""
    header = f"# source: {source} (copied unchanged below); {provenance}\n"
    return write_text(target, header + source.read_text(encoding="utf-8"))
