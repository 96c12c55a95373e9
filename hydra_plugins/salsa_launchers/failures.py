"""A Hydra callback that keeps a failing run from taking the sweep down with it, and records why it failed.

Configured by conf/hydra/launcher/{local,slurm}.yaml (hydra.callbacks.sweep_failures), so it is active in every
multirun that uses these launchers, whoever starts it.

- Hydra's run_job records an Exception raised by a job as a failed job and goes on with the others; the
  launcher raises the first failure only after the whole sweep has run. run.py raises its UserError under
  --multirun (a sys.exit would abort the whole joblib Parallel call, cancelling the other jobs).
- on_job_end writes failure.json (run id, overrides, error) into the failed job's Hydra output directory;
  read_failures reads them back (experiments.reproduce's failure report). The SLURM launcher (slurm.py) writes the same
  record for a job that SLURM ended before it could run to its end (cancelled, out of memory, a failed node).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback

from salsa.registry import UserError

FAILURE_FILE = "failure.json"


class SweepFailures(Callback):
    def on_job_end(self, config, job_return, **kwargs) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value
        message = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
        record_failure(Path(config.hydra.runtime.output_dir), job_return.cfg, job_return.overrides, message)


def record_failure(out: Path, cfg, overrides, message: str) -> None:
    """failure.json (run id, overrides, error) in a failed job's Hydra output directory."""
    try:
        from salsa.contract.files import write_json
        from salsa.contract.runid import identify
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / FAILURE_FILE, {"run_id": identify(cfg).id, "overrides": list(overrides or []), "error": message})
    except Exception as e:  # noqa: BLE001 - the report then says only what summary.json says
        print(f"warning: could not record the failure of {out}: {e}", file=sys.stderr)


def read_failures(sweep_dir: Path) -> dict:
    """run id -> error message, from every failure.json under a sweep directory."""
    found = {}
    for path in sorted(Path(sweep_dir).rglob(FAILURE_FILE)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found[record["run_id"]] = record["error"]
        except (OSError, ValueError, KeyError):
            continue
    return found
