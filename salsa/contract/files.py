"""The run directory's files (docs/run-directory.md) and the rules every reader and writer keeps: JSON is written
whole, a damaged file is moved aside and never deleted, a summary is known by its status, and the record files
hold at least what the checkpoint counts."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CONFIG = "config.yaml"            # the resolved Hydra config
METRICS = "metrics.jsonl"         # one JSON record per line
STEP_LOSSES = "train_loss.f32"    # every step's mini-batch loss, one little-endian float32 per step
STEP_LOSS_BYTES = 4
SUMMARY = "summary.json"          # "running" at the start, the status and the totals at the end
CHECKPOINT = "checkpoint.pt"      # the latest checkpoint
LOCK = ".lock"                    # the owner's flock


def named(error: OSError, path: Path) -> OSError:
    """The error with the file it concerns (a failed write() carries no file name, a failed open() the temporary one)."""
    error.filename = str(path)
    return error


def atomic_write(path: Path, write, *, binary: bool = False) -> None:
    """write(file) into a temporary file, then os.replace: a reader sees the old file or the new one, never half
    of one; a failed write (an OSError with its errno, e.g. ENOSPC, naming `path`) leaves the old file and no
    temporary one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
    """Renames a damaged file to <name>.corrupt.<n> (the first free n): kept for a person to look at, never deleted."""
    n = 1
    while (aside := path.with_name(f"{path.name}.corrupt.{n}")).exists():
        n += 1
    os.replace(path, aside)
    return aside


def read_summary(path: Path) -> dict | None:
    """summary.json, or None when there is none; a damaged one is moved aside (the run then writes a new one)."""
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
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
    if not path.exists():
        return 0
    count = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
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
    saved = losses.stat().st_size // STEP_LOSS_BYTES if losses.exists() else 0
    if saved < step:
        short[STEP_LOSSES] = f"{STEP_LOSSES} has {saved} steps' losses where the checkpoint counts {step}"
    return short
