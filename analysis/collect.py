"""Run directories -> one pandas DataFrame, one row per run (the contract is docs/run-directory.md)."""
import json
from pathlib import Path

import pandas as pd

from salsa.contract.files import METRICS, SUMMARY, NotPlain, check_plain, open_plain
from salsa.contract.verify import damage, identity, malformed, read, rerun_command

from .errors import AnalysisError
from .names import column_name
from .selection import cell_key, mixed_configs
from .train_loss import paper_metric

REQUIRED = ("schema", "status", "run_id", "config_hash", "task", "dataset", "model", "optimizer",
            "lr_choice", "lr", "seed", "metrics", "totals")
TEXT_FIELDS = ("run_dir", "run_id", "config_hash", "status", "error", "task", "dataset", "model", "optimizer",
               "lr_choice", "column", "damage", "refused", "cell_config")
CELL = ("task", "optimizer", "lr_choice", "lr", "seed")  # one run per cell and seed; two configs there are ambiguous
IDENTITY = ("run_id", "config_hash", "status", "error", "task", "dataset", "model", "optimizer",
            "lr_choice", "lr", "seed", "epochs")
CURVE_FIELDS = ("run_id", "task", "column", "seed", "kind", "step", "epoch", "split", "loss", "acc", "step_size",
                "line_search")


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under root holding a summary.json or a metrics.jsonl (nested sweeps included)."""
    files = list(root.rglob(SUMMARY)) + list(root.rglob(METRICS))
    return sorted({f.parent for f in files})


def read_json(run_dir: Path) -> dict:
    """summary.json: a plain file (never through a link, never a device) holding a JSON object."""
    path = run_dir / SUMMARY
    try:
        data = read(run_dir)
    except NotPlain as exc:
        raise AnalysisError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise AnalysisError(f"corrupt file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"corrupt file {path}: expected a JSON object")
    return data


def read_summary(run_dir: Path) -> dict:
    """One flat row: identity fields, then every metric and every total under its own name."""
    path = run_dir / SUMMARY
    try:
        if not check_plain(path):
            return {"run_dir": str(run_dir), "run_id": run_dir.name, "status": "no summary.json"}
    except NotPlain as exc:
        raise AnalysisError(str(exc)) from None
    summary = read_json(run_dir)
    missing = [key for key in REQUIRED if key not in summary]
    if missing:
        raise AnalysisError(f"corrupt file {path}: missing {', '.join(missing)}")
    if summary["schema"] != 1:
        raise AnalysisError(f"{path}: unsupported schema {summary['schema']!r} (this analysis reads schema 1)")
    if (what := malformed(summary)) is not None:
        raise AnalysisError(f"corrupt file {path}: {what}; run it again with: {rerun_command(summary)}")
    row = {"run_dir": str(run_dir), **{key: summary.get(key) for key in IDENTITY}}
    problems = [*damage(run_dir, summary).values(), *filter(None, [identity(run_dir, summary)])] \
        if summary["status"] == "finished" else []
    row["damage"] = f"{'; '.join(problems)}; run it again with: {rerun_command(summary)}" if problems else ""
    row["column"] = column_name(summary["optimizer"], summary["lr_choice"])
    row["cell_config"] = cell_key(run_dir)  # what the runs of a table cell share (analysis.selection)
    row.update(summary["metrics"] or {})
    row.update(paper_metric(run_dir))
    row.update(summary["totals"] or {})
    return row


def collect_runs(roots: list[Path]) -> pd.DataFrame:
    run_dirs = []
    for root in roots:
        if not root.is_dir():
            raise AnalysisError(f"results root {root} does not exist or is not a directory")
        run_dirs += find_run_dirs(root)
    if not run_dirs:
        raise AnalysisError(f"no runs (no summary.json or metrics.jsonl) under {', '.join(map(str, roots))}")
    runs = pd.DataFrame([read_summary(d) for d in run_dirs])
    runs = runs.reindex(columns=list(dict.fromkeys(["run_dir", *IDENTITY, "column", *runs.columns])))
    for name in runs.columns.difference(TEXT_FIELDS):
        runs[name] = pd.to_numeric(runs[name], errors="coerce")
    runs["seed"] = runs["seed"].astype("Int64")
    # The same config seen twice (e.g. a local root and a W&B download): keep one copy, a finished one first.
    runs = runs.sort_values("status", key=lambda s: s != "finished", kind="stable")
    runs = runs.drop_duplicates("run_id").sort_values(["task", "column", "seed", "run_id"]).reset_index(drop=True)
    runs["refused"] = refusals(runs)
    return runs


def refusals(runs: pd.DataFrame) -> pd.Series:
    """Why a run must not be averaged ("" for the runs that may): not finished, files that do not match the summary
    (salsa.contract.verify: damaged after the run, or not the run's), zero training steps (untrained metrics), a cell
    of runs of several configs (analysis.selection.mixed_configs), or one
    of several runs of one (task, optimizer, lr_choice, lr, seed) whose configs differ elsewhere (none of them
    is refused in favour of another: the choice is the user's)."""
    reasons = pd.Series("", index=runs.index, dtype=object)
    for i, run in runs.iterrows():
        if run["status"] != "finished":
            reasons[i] = f"run {run['status']}" + (f": {run['error']}" if isinstance(run["error"], str) else "")
        elif run["damage"]:
            reasons[i] = f"files do not match summary.json: {run['damage']}"
        elif not run.get("steps", 0) > 0:
            reasons[i] = "0 training steps: its metrics are those of the untrained model"
    reasons[reasons == ""] = mixed_configs(runs[reasons == ""])
    valid = runs[reasons == ""]
    for _, same in valid.groupby(list(CELL), dropna=False):
        for i in same.index if len(same) > 1 else []:
            others = ", ".join(r for r in same["run_id"] if r != runs.at[i, "run_id"])
            reasons[i] = (f"duplicate: runs {others} have the same task, optimizer, lr and seed but another config; "
                          "keep one of their run directories")
    return reasons


def read_metrics(path: Path) -> list[dict]:
    records = []
    try:
        handle = open_plain(path)
    except NotPlain as exc:
        raise AnalysisError(str(exc)) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AnalysisError(f"corrupt file {path}, line {number}: {exc}") from None
    return records


def collect_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """The metrics.jsonl records of the given runs, long format, tagged with task, column and seed."""
    frames = []
    for run in runs.itertuples():
        path = Path(run.run_dir) / METRICS
        try:
            if not check_plain(path):
                continue
        except NotPlain as exc:
            raise AnalysisError(str(exc)) from None
        frame = pd.DataFrame(read_metrics(path))
        frames.append(frame.assign(run_id=run.run_id, task=run.task, column=run.column, seed=run.seed))
    curves = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return curves.reindex(columns=list(dict.fromkeys([*CURVE_FIELDS, *curves.columns])))
