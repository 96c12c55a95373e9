"""The tuned baselines' selection: per (task, optimizer), the lr analysis.selection.choose_lr picks from the grid's
runs on the tuning seed (the lowest VALIDATION loss, val_loss_final), the rule the analysis applies to the run
directories. Written to <out>/tuning_selection.json and .csv with the grid, every grid run and the tuning cost."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from analysis.selection import SELECTION_METRIC, GridRun, choose_lr


def select(grid, tune_runs) -> list[dict]:
    """One record per (task, tuned optimizer); winner_lr is None while the grid is incomplete or all diverged."""
    records = []
    for task in grid.tasks.values():
        for optimizer, planned in task.tune.items():
            runs = [r for r in tune_runs if r.job.task == task.name and r.job.optimizer == optimizer]
            lrs = sorted({*planned, *(r.job.lr for r in runs)})   # the grid and its extensions
            extensions = [lr for lr in lrs if lr not in planned]
            rows = [_row(r) for r in sorted(runs, key=lambda r: r.job.lr)]
            choice = choose_lr([GridRun(row["lr"], row["status"], row[SELECTION_METRIC]) for row in rows])
            winner = next((row for row in rows if row["lr"] == choice.lr), None)
            records.append({
                "task": task.name, "experiment": task.experiment, "optimizer": optimizer, "lr_choice": "tuned",
                "grid_seed": grid.tuning_seed, "selection_metric": SELECTION_METRIC, "lr_grid": list(lrs),
                "winner_lr": winner["lr"] if winner else None, "winner_run_id": winner["run_id"] if winner else None,
                "winner_" + SELECTION_METRIC: winner[SELECTION_METRIC] if winner else None, "not_selected_because": choice.why,
                # the best lr at an end of the grid: the optimum may lie outside it, so the grid is extended on that
                # side (jobs.extension_jobs) until the winner is interior or max_extensions is reached
                "winner_at_grid_edge": bool(winner) and winner["lr"] in (min(lrs), max(lrs)),
                "extensions": extensions, "max_extensions": grid.max_extensions,
                "seeds": list(grid.seeds), "grid_runs": rows,
                "tuning_cost": {"runs": len(rows), "steps": sum(row["steps"] or 0 for row in rows),
                                "wall_time_s": sum(row["wall_time_s"] or 0.0 for row in rows),
                                f"estimated_{_unit(grid)}": sum(r.cost_s for r in runs) / 3600},
            })
    return records


def _unit(grid) -> str:
    return grid.compute_unit.replace("-", "_").lower()


def _row(run) -> dict:
    summary = run.summary or {}
    metrics, totals = summary.get("metrics") or {}, summary.get("totals") or {}
    return {"lr": run.job.lr, "run_id": run.run_id, "status": run.status, SELECTION_METRIC: metrics.get(SELECTION_METRIC),
            "steps": totals.get("steps"), "wall_time_s": totals.get("wall_time_s")}


def winners(records: list[dict]) -> dict:
    return {(r["task"], r["optimizer"]): r["winner_lr"] for r in records if r["winner_lr"] is not None}


def write(records: list[dict], out: Path, stamp: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    as_json = out / "tuning_selection.json"
    as_json.write_text(json.dumps({"source": stamp, "selections": records}, indent=2) + "\n", encoding="utf-8")
    buffer = io.StringIO()
    fields = ["task", "optimizer", "grid_seed", "selection_metric", "lr_grid", "extensions", "val_loss_per_lr", "winner_lr",
              "winner_run_id", "winner_at_grid_edge", "not_selected_because", "grid_runs", "grid_steps", "grid_wall_time_s",
              "grid_estimated"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    buffer.write(f"# {stamp}\n")
    writer.writeheader()
    for r in records:
        cost = r["tuning_cost"]
        writer.writerow({
            "task": r["task"], "optimizer": r["optimizer"], "grid_seed": r["grid_seed"],
            "selection_metric": r["selection_metric"], "lr_grid": " ".join(f"{lr:g}" for lr in r["lr_grid"]),
            "extensions": " ".join(f"{lr:g}" for lr in r["extensions"]),
            "val_loss_per_lr": " ".join(_fmt(row) for row in r["grid_runs"]), "winner_lr": r["winner_lr"],
            "winner_run_id": r["winner_run_id"], "winner_at_grid_edge": r["winner_at_grid_edge"],
            "not_selected_because": r["not_selected_because"] or "",
            "grid_runs": cost["runs"], "grid_steps": cost["steps"], "grid_wall_time_s": round(cost["wall_time_s"], 2),
            "grid_estimated": f"{next(v for k, v in cost.items() if k.startswith('estimated_')):.4g} {_unit_of(cost)}"})
    as_csv = out / "tuning_selection.csv"
    as_csv.write_text(buffer.getvalue(), encoding="utf-8")
    return [as_json, as_csv]


def _fmt(row) -> str:
    value = row[SELECTION_METRIC]
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else row["status"]


def _unit_of(cost: dict) -> str:
    return next(k for k in cost if k.startswith("estimated_"))[len("estimated_"):]
