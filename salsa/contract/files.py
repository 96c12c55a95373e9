"""The run directory's files (docs/run-directory.md) and the rules every reader and writer keeps: the program opens
only the plain files it names here, never through a link and never a device or FIFO (open_plain); JSON is written
whole, a damaged file is moved aside and never deleted, a summary is known by its status, and the record files
hold at least what the checkpoint counts."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
from pathlib import Path

from salsa.contract.signals import signals_held
from salsa.registry import UserError

CONFIG = "config.yaml"            # the resolved Hydra config
METRICS = "metrics.jsonl"         # one JSON record per line
STEP_LOSSES = "train_loss.f32"    # every step's mini-batch loss, one little-endian float32 per step
STEP_LOSS_BYTES = 4
SUMMARY = "summary.json"          # "running" at the start, the status and the totals at the end
CHECKPOINT = "checkpoint.pt"      # the latest checkpoint
LOCK = ".lock"                    # the owner's flock
NAMES = (CONFIG, METRICS, STEP_LOSSES, SUMMARY, CHECKPOINT, LOCK)

# open_plain's modes: read, write (truncating), append, read and append (the lock), read and write (cut back)
_FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT, "a": os.O_WRONLY | os.O_APPEND | os.O_CREAT,
          "a+": os.O_RDWR | os.O_APPEND | os.O_CREAT, "r+": os.O_RDWR}
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotPlain(UserError):
    """A run directory's file that is a link, a directory, a device, a FIFO or a socket: the program neither
    follows nor opens it."""


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a plain file")


def _refused(path: Path, mode: int) -> NotPlain:
    return NotPlain(f"{path} is {_kind(mode)}, not a plain file: a run directory holds only the plain files the harness "
                    "writes, and it never follows or opens anything else; remove or move it away, then run again")


def _hard_linked(path: Path, links: int) -> NotPlain:
    return NotPlain(f"{path} has {links} hard links: writing it in place would change the file under its other names "
                    "too; replace it by a copy of itself (cp, not ln), then run again")


def not_plain(path: Path) -> str | None:
    """What path is when it exists and is not a plain file ("a symbolic link", "a FIFO", ...), else None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def check_plain(path: Path) -> bool:
    """Whether path exists (without following a link); NotPlain when it is anything but a plain file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise _refused(path, mode)
    return True


def open_plain(path: Path, mode: str = "r"):
    """open(path, mode) for a plain file only ("r", "w", "a", "a+", "r+", each with or without "b"; text is
    UTF-8): a link is never followed (O_NOFOLLOW) and a device, FIFO or socket never read (checked before and after
    the open, so a file swapped in between is refused too); a file with other hard links is never written in place
    (that would change it under its other names: "w" truncates only after this check). NotPlain names the file and
    what to do."""
    check_plain(path)
    try:
        fd = os.open(path, _FLAGS[mode.replace("b", "")] | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link put there since the check
            raise _refused(path, stat.S_IFLNK) from None
        raise
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise _refused(path, status.st_mode)
    if mode.replace("b", "") != "r" and status.st_nlink > 1:
        os.close(fd)
        raise _hard_linked(path, status.st_nlink)
    if mode.startswith("w"):
        os.ftruncate(fd, 0)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")


def read_plain(path: Path) -> bytes:
    with open_plain(path, "rb") as f:
        return f.read()


def named(error: OSError, path: Path) -> OSError:
    """The error with the file it concerns (a failed write() carries no file name, a failed open() the temporary one)."""
    error.filename = str(path)
    return error


def temporary(path: Path) -> Path:
    """The temporary file atomic_write writes path's new content to."""
    return path.with_name(f".{path.name}.tmp")


def check_run_dir(run_dir: Path, *, writing: bool = False) -> None:
    """NotPlain when the run directory is a link or any of its files or their temporary ones is not a plain file;
    writing: or has other hard links (the owner is about to write them in place)."""
    try:
        mode = os.lstat(run_dir).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not made yet (or cannot be: check_writable says so)
        return
    if not stat.S_ISDIR(mode):
        raise NotPlain(f"{run_dir} is {_kind(mode)}, not a run directory: the "
                       "harness writes its runs into directories it makes itself; remove or move it away, then run again")
    for path in (p for name in NAMES for p in (run_dir / name, temporary(run_dir / name))):
        if check_plain(path) and writing and (links := os.lstat(path).st_nlink) > 1:
            raise _hard_linked(path, links)


def atomic_write(path: Path, write, *, binary: bool = False) -> None:
    """write(file) into a temporary file, then os.replace: a reader sees the old file or the new one, never half
    of one; a failed write (an OSError with its errno, e.g. ENOSPC, naming `path`) leaves the old file and no
    temporary one. A stop signal meanwhile is honoured once the write has ended (salsa.contract.signals)."""
    tmp = temporary(path)
    try:
        with signals_held():
            with open_plain(tmp, "wb" if binary else "w") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except NotPlain:
        raise
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, allow_nan=False))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def move_aside(path: Path) -> Path:
    """Renames a damaged file to <name>.corrupt.<n> (the first free n): kept for a person to look at, never deleted.
    Only a plain file of the run directory's own names is moved."""
    if path.name not in NAMES:
        raise ValueError(f"{path.name} is not a file of the run directory")
    check_plain(path)
    n = 1
    while os.path.lexists(aside := path.with_name(f"{path.name}.corrupt.{n}")):
        n += 1
    os.replace(path, aside)
    return aside


def read_summary(path: Path) -> dict | None:
    """summary.json, or None when there is none; a damaged one is moved aside (the run then writes a new one); one
    that is not a plain file is refused (NotPlain)."""
    if not check_plain(path):
        return None
    try:
        summary = json.loads(read_plain(path).decode("utf-8"))
        problem = None if isinstance(summary, dict) and "status" in summary else "not a summary: no status"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problem = f"not valid JSON: {e}"
    if problem is None:
        return summary
    aside = move_aside(path)
    warn(f"{path} is damaged ({problem}); moved aside to {aside.name}. The run goes on from its checkpoint "
         "(or from the start) and writes a new summary.json; delete the .corrupt file when you no longer need it.")
    return None


def metrics_records(path: Path) -> int:
    """The whole JSON lines at the start of metrics.jsonl (a torn last line is not one)."""
    if not check_plain(path):
        return 0
    count = 0
    for line in read_plain(path).decode("utf-8", errors="replace").splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            break
        count += 1
    return count


def shortfalls(run_dir: Path, *, step: int, records: int | None) -> dict[str, str]:
    """file name -> what it lacks of a checkpoint at `step` that counted `records` lines of metrics.jsonl (None:
    a checkpoint from before they were counted)."""
    short = {}
    lines = metrics_records(run_dir / METRICS)
    if records is not None and lines < records:
        short[METRICS] = f"{METRICS} has {lines} records where the checkpoint counts {records}"
    losses = run_dir / STEP_LOSSES
    saved = losses.stat().st_size // STEP_LOSS_BYTES if check_plain(losses) else 0
    if saved < step:
        short[STEP_LOSSES] = f"{STEP_LOSSES} has {saved} steps' losses where the checkpoint counts {step}"
    return short
