"""The entry points' net for errors nobody foresaw (run.py, `python -m analysis`, `python -m salsa.contract.verify`,
`python -m experiments.reproduce` and its calibrate): one line on stderr that says what failed and names the file
that holds its traceback, and exit status 70 (EX_SOFTWARE). Errors the program foresees (UserError, AnalysisError,
SweepError: exit 2) have their own lines; this net only catches what slipped past them.

The traceback goes to `<place>/errors/` for the first place given that is writable (run.py: paths.root, which is on
shared storage under SLURM), else to the system's temporary directory; its name holds the entry point, the UTC time
and the process id. Standard library only: it loads neither torch nor Hydra.
"""
from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

EXIT = 70          # EX_SOFTWARE: the program failed in a way it did not foresee
INTERRUPTED = 130  # 128 + SIGINT


class Reported(Exception):
    """An error whose line has been printed already (a failed run of a multirun: the sweep goes on, and its end
    says that runs failed)."""


def say(line: str) -> None:
    """One line on stderr, whatever the characters in it (a non-UTF-8 argument stays readable, as its escape)."""
    text = line.replace("\r", " ").replace("\n", " ") + "\n"
    stream = sys.stderr
    try:
        stream.write(text.encode(stream.encoding or "utf-8", "backslashreplace").decode(stream.encoding or "utf-8"))
        stream.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed: nowhere left to say it
        pass


def one_line(text: str, limit: int = 400) -> str:
    """A message's lines joined into one (an indented list becomes comma-separated), at most `limit` characters."""
    joined = ""
    for raw in str(text).splitlines():
        line = raw.strip()
        if line:
            listed = raw[:1].isspace() and joined and not joined.endswith(":")
            joined = f"{joined}{', ' if listed else ' '}{line}" if joined else line
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def write_traceback(error: BaseException, entry: str, places: Iterable[Path] = ()) -> tuple[Path | None, str]:
    """The traceback (with the command line, the time and the process id) in a new file; (its path, or None and why
    no file could be written)."""
    slug = "".join(c if c.isalnum() else "-" for c in entry.split()[-1]).strip("-")  # run.py -> run-py
    name = f"{slug}-traceback-{_stamp()}-{os.getpid()}.txt"
    text = "".join([f"{entry} failed unexpectedly\n", f"command: {sys.executable} {' '.join(map(repr, sys.argv))}\n",
                    f"working directory: {os.getcwd()}\n", f"time: {_stamp()}, pid {os.getpid()}\n\n",
                    *traceback.format_exception(type(error), error, error.__traceback__)])
    reasons = []
    for folder in [*(Path(p) / "errors" for p in places), Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
            return (folder / name).resolve(), ""
        except OSError as e:
            reasons.append(f"{folder}: {e.strerror or e}")
    return None, "; ".join(reasons)


def report(error: BaseException, entry: str, places: Callable[[], Iterable[Path]] | Iterable[Path] = (), prefix: str = "error") -> str:
    """Writes the traceback file and prints the one line; returns the line (less its 'error: ')."""
    try:
        found = list(places() if callable(places) else places)
    except Exception:  # noqa: BLE001 - the place itself could not be worked out (the config that names it is broken)
        found = []
    path, why = write_traceback(error, entry, found)
    where = f"traceback in {path}" if path else f"no traceback file could be written ({why})"
    message = one_line(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, 300)
    line = f"{entry} failed unexpectedly: {message} ({where}); please report it with that file"
    say(f"{prefix}: {line}")
    return line


def broken_pipe(entry: str, detail: str = "") -> str:
    """The reader of stdout went away (`... | head`): stdout is pointed at /dev/null so that Python's own flush at
    exit cannot fail again, and the one line goes to stderr; returns the line (less its 'error: ')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    line = f"{entry}: its output (stdout) was closed before it had printed everything{detail}"
    say(f"error: {line}")
    return line


def guarded(entry: str, main: Callable[[], int | None], places: Callable[[], Iterable[Path]] | Iterable[Path] = ()) -> int:
    """main()'s exit status; an exception it did not handle becomes one line, a traceback file and exit 70, Ctrl-C
    one line and 130, a closed stdout one line and 1. SystemExit passes through."""
    try:
        return main() or 0
    except KeyboardInterrupt:
        say(f"error: {entry} interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        broken_pipe(entry)
        return 1
    except Exception as error:  # noqa: BLE001 - the net: whatever nothing else caught
        report(error, entry, places)
        return EXIT
