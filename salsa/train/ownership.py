"""One process owns a run directory at a time (docs/run-directory.md): rank 0 claims it under its lock, or finds
the run finished and its files matching its summary; a run that fails before its first summary leaves nothing.
A directory that holds another config's run, or anything but plain files under the run's own names, is refused."""
from __future__ import annotations

import contextlib
from pathlib import Path

from omegaconf import OmegaConf

from salsa.contract.files import CHECKPOINT, CONFIG, METRICS, SUMMARY, atomic_write, check_run_dir, move_aside, read_summary, warn
from salsa.contract.runid import RunId
from salsa.contract.verify import damage, hash_of_config
from salsa.registry import UserError
from salsa.train.preflight import check_writable
from salsa.train.rundir import RunLock


def claim(cfg, where: RunId, lock: RunLock) -> tuple[dict | None, bool, bool]:
    """Rank 0: (the summary of a finished run whose files match it, else None; whether to resume; whether the
    directory is new). A finished run is left as it is; otherwise this process takes the lock and writes config.yaml."""
    run_dir = where.path
    check_run_dir(run_dir)
    check_writable(where)
    _check_identity(where)
    previous = read_summary(run_dir / SUMMARY)
    if previous and previous.get("status") == "finished" and not _problems(where, previous):
        return previous, False, False
    lock.acquire()
    check_run_dir(run_dir, writing=True)  # the owner writes some files in place: none may have another name
    previous = read_summary(run_dir / SUMMARY)  # as the owner now
    if _trusted(where, previous):  # finished by another process meanwhile
        return previous, False, False
    fresh = not any((run_dir / name).exists() for name in (SUMMARY, METRICS, CHECKPOINT))
    if not (run_dir / CONFIG).exists():
        atomic_write(run_dir / CONFIG, lambda f: f.write(OmegaConf.to_yaml(cfg, resolve=True)))
    return None, (run_dir / CHECKPOINT).exists(), fresh


def _check_identity(where: RunId) -> None:
    """A config.yaml already in the run directory must be this config's: a directory renamed or copied from another
    config's run is refused (exit 2), never trusted or written into."""
    path = where.path / CONFIG
    try:
        found = hash_of_config(path)
    except FileNotFoundError:
        return
    except (ValueError, OSError) as e:
        raise UserError(f"{path} cannot be read ({type(e).__name__}), so nothing says which config the run directory "
                        f"holds; move {where.path} away and run again") from None
    if found != where.config_hash:
        raise UserError(f"run directory {where.path} holds the run of another config (its {CONFIG} hashes to {found[:12]}): "
                        f"it was renamed or copied there; move it back to {where.path.parent / found[:12]} or away, then "
                        "run again")


def _problems(where: RunId, summary: dict) -> dict[str, str]:
    """How a finished run differs from its summary (salsa.contract.verify.damage), and a summary of another run."""
    problems = damage(where.path, summary)
    if summary.get("run_id") != where.id or summary.get("config_hash") != where.config_hash:
        problems[SUMMARY] = f"summary.json names run {str(summary.get('run_id'))[:12]}, not {where.id}"
    return problems


def _trusted(where: RunId, previous: dict | None) -> bool:
    """A finished run whose files match its summary. One whose files do not is done again: the damaged files and
    the summary are moved aside (never deleted) with a warning, and the run resumes from what is left."""
    if not (previous and previous.get("status") == "finished"):
        return False
    run_dir = where.path
    problems = _problems(where, previous)
    if not problems:
        return True
    asides = [move_aside(run_dir / name).name for name in dict.fromkeys((*problems, SUMMARY)) if (run_dir / name).exists()]
    warn(f"{run_dir} finished, but its files do not match summary.json ({'; '.join(problems.values())}); moved aside "
         f"to {', '.join(asides)}. The run is done again from what is left.")
    return False


@contextlib.contextmanager
def clean_failed_start(run_dir: Path, *, fresh: bool, lock: RunLock):
    """A run that fails before its first summary leaves no directory holding only config.yaml behind (nor that
    summary, when a stop signal held during its write is honoured right after it)."""
    try:
        yield
    except BaseException:
        if fresh and lock.file is not None:
            (run_dir / CONFIG).unlink(missing_ok=True)
            (run_dir / SUMMARY).unlink(missing_ok=True)
            lock.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
