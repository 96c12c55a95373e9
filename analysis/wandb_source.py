"""Optional: read a W&B project through its public API, as the harness mirrors runs there.

The harness's W&B mirror (salsa/train/loggers.py) logs: run id = run_id; config = the resolved Hydra config;
summary = status + the summary.json metrics and totals, flat (and wandb's last "step"); history rows with "step" and "<kind>/<key>"
(kind: step, val, test, final); the run file train_loss.f32 (every step's loss, for the paper's metric). This rebuilds
each run's summary.json, metrics.jsonl and train_loss.f32 in a local cache (<cache>/<run id>/) that the ordinary
reader then treats as one more results root.
Needs the `wandb` package (not a dependency of the analysis otherwise).
"""
import json
from pathlib import Path

from salsa.contract.files import METRICS, STEP_LOSSES, SUMMARY

from .errors import AnalysisError
from .output import write_text

TOTALS = ("steps", "wall_time_s", "forwards", "backwards", "line_searches", "peak_memory_bytes")
STATE_TO_STATUS = {"finished": "finished", "running": "running", "crashed": "failed", "failed": "failed",
                   "killed": "failed"}


def summary_of(run) -> dict:
    config, summary = dict(run.config), dict(run.summary)
    optimizer = config.get("optimizer") or {}
    return {
        "schema": 1, "status": summary.get("status") or STATE_TO_STATUS.get(run.state, run.state),
        "run_id": run.id, "config_hash": None,  # not mirrored to W&B; run_id is its first 12 characters
        "task": config.get("task"), "dataset": (config.get("dataset") or {}).get("name"),
        "model": (config.get("model") or {}).get("name"), "optimizer": optimizer.get("name"),
        "lr_choice": optimizer.get("lr_choice"), "lr": optimizer.get("lr"), "seed": config.get("seed"),
        "epochs": (config.get("trainer") or {}).get("epochs"),
        "metrics": {k: v for k, v in summary.items() if k not in ("status", "step") and k not in TOTALS and not k.startswith("_")
                    and "/" not in k and isinstance(v, (int, float, type(None)))},
        "totals": {k: summary.get(k) for k in TOTALS},
        "error": None,
    }


def records_of(history) -> list[dict]:
    """History rows {"step": 10, "step/loss": ..., "val/acc": ...} -> metrics.jsonl records."""
    records = []
    for row in history:
        kinds = {}
        for key, value in row.items():
            if "/" in key and value is not None:
                kind, name = key.split("/", 1)
                kinds.setdefault(kind, {})[name] = value
        for kind, values in kinds.items():
            head = {"kind": "eval", "split": kind} if kind in ("val", "test") else {"kind": kind}
            records.append({**head, "step": row.get("step"), **values})
    return records


def download_project(project: str, cache: Path, api=None) -> Path:
    """project: "entity/project". api: a wandb.Api() (made here when not given)."""
    if api is None:
        try:
            import wandb
        except ImportError:
            raise AnalysisError("--wandb needs the wandb package: .venv/bin/pip install wandb") from None
        api = wandb.Api()
    runs = list(api.runs(project))
    if not runs:
        raise AnalysisError(f"W&B project {project} has no runs")
    for run in runs:
        write_text(cache / run.id / SUMMARY, json.dumps(summary_of(run)))
        lines = "".join(json.dumps(record) + "\n" for record in records_of(run.scan_history()))
        write_text(cache / run.id / METRICS, lines)
        for file in run.files(names=[STEP_LOSSES]):  # absent from runs mirrored before it was saved
            if file.size:
                file.download(root=str(cache / run.id), replace=True)
    return cache
