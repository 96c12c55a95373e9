"""One process owns a run directory at a time (docs/run-directory.md): rank 0 claims it under its lock, or finds
the run finished and its files matching its summary; a run that fails before its first summary leaves nothing."""
from __future__ import annotations

import contextlib
from pathlib import Path

from omegaconf import OmegaConf

from salsa.contract.files import CHECKPOINT, CONFIG, METRICS, SUMMARY, move_aside, read_summary, warn
from salsa.contract.runid import RunId
from salsa.contract.verify import damage
from salsa.train.preflight import check_writable
from salsa.train.rundir import RunLock


def claim(cfg, where: RunId, lock: RunLock) -> tuple[dict | None, bool, bool]:
    """Rank 0: (the summary of a finished run whose files match it, else None; whether to resume; whether the
    directory is new). A finished run is left as it is; otherwise this process takes the lock and writes config.yaml."""
    check_writable(where)
    run_dir = where.path
    previous = read_summary(run_dir / SUMMARY)
    if previous and previous["status"] == "finished" and not damage(run_dir, previous):
        return previous, False, False
    lock.acquire()
    previous = read_summary(run_dir / SUMMARY)  # as the owner now
    if _trusted(run_dir, previous):  # finished by another process meanwhile
        return previous, False, False
    fresh = not any((run_dir / name).exists() for name in (SUMMARY, METRICS, CHECKPOINT))
    if not (run_dir / CONFIG).exists():
        (run_dir / CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return None, (run_dir / CHECKPOINT).exists(), fresh


def _trusted(run_dir: Path, previous: dict | None) -> bool:
    """A finished run whose files match its summary. One whose files do not is done again: the damaged files and
    the summary are moved aside (never deleted) with a warning, and the run resumes from what is left."""
    if not (previous and previous["status"] == "finished"):
        return False
    problems = damage(run_dir, previous)
    if not problems:
        return True
    asides = [move_aside(run_dir / name).name for name in (*problems, SUMMARY) if (run_dir / name).exists()]
    warn(f"{run_dir} finished, but its files do not match summary.json ({'; '.join(problems.values())}); moved aside "
         f"to {', '.join(asides)}. The run is done again from what is left.")
    return False


@contextlib.contextmanager
def clean_failed_start(run_dir: Path, *, fresh: bool, lock: RunLock):
    """A run that fails before its first summary leaves no directory holding only config.yaml behind."""
    try:
        yield
    except BaseException:
        if fresh and lock.file is not None:
            (run_dir / CONFIG).unlink(missing_ok=True)
            lock.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
