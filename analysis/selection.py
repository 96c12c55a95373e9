"""Which finished runs fill the table cells, and the record of how each tuned baseline was chosen.

Tuned baselines: the sweep writes runs with lr_choice "tuned" over a grid of `lr` values on one seed
(the grid seed). The winning lr is the one with the lowest VALIDATION loss (val_loss_final) on that seed;
the tuned cell then holds every seed run with the winning lr. The grid's runs are the tuning cost.
`choose_lr` is that rule, the only copy: the sweep (experiments/reproduce/selection.py) calls it too.
"""
import math
from dataclasses import dataclass

import pandas as pd

from .names import SALSA_FOR_BASELINE

SELECTION_METRIC = "val_loss_final"
DONE = ("finished", "diverged")  # a grid run in any other state (missing, running, ...) has its value still to come


@dataclass(frozen=True)
class GridRun:
    """One run of a tuning grid on the grid seed: its lr, its status ("finished", "diverged", or another word for
    a run that is not done) and its SELECTION_METRIC (None where it has none)."""
    lr: float
    status: str
    value: float | None


@dataclass(frozen=True)
class Choice:
    lr: float | None          # the tuned lr; None when the grid gives none (yet)
    why: str | None = None    # the reason, where lr is None


def choose_lr(grid: list[GridRun]) -> Choice:
    """The tuned lr: the lr of the finished run with the lowest finite SELECTION_METRIC.

    None, with the reason, while any grid run is not done (it could still win: an early choice could differ from
    the complete grid's), when no finished run has a finite value (every run diverged or lacks the metric), and
    for an empty grid. NaN, infinite and missing values never win. On a tie the smaller lr wins, so the order of
    the runs cannot change the choice; the smaller is the safer of two equally good steps on the seeds the grid
    did not see, as the lrs that diverge lie above the grid's good ones.
    """
    runs = sorted(grid, key=lambda run: run.lr)
    if not runs:
        return Choice(None, "no grid runs")
    pending = [run for run in runs if run.status not in DONE]
    if pending:
        return Choice(None, "grid incomplete: " + ", ".join(f"lr {run.lr:g} {run.status}" for run in pending))
    scored = [run for run in runs if run.status == "finished" and run.value is not None and math.isfinite(run.value)]
    if not scored:
        return Choice(None, f"every grid run diverged or lacks {SELECTION_METRIC}")
    return Choice(min(scored, key=lambda run: (run.value, run.lr)).lr)


def tuning_seed(seed_lr_pairs) -> int | None:
    """The grid seed, from the runs alone: the seed run with the most distinct lrs, the lowest such seed on a tie.
    The sweep runs its whole grid on its tuning seed and only the winning lr on every other seed, so this is the
    grid's tuning seed wherever the grid holds two lrs or more (with one lr every seed ties, holding the same lr)."""
    lrs = {}
    for seed, lr in seed_lr_pairs:
        lrs.setdefault(seed, set()).add(lr)
    return min(lrs, key=lambda seed: (-len(lrs[seed]), seed)) if lrs else None


def grid_status(status: str, refused: str) -> str:
    """A collected run's status in choose_lr's words: run.py's only terminal failure ("failed") is a divergence;
    a finished run the analysis refuses (damaged files, no steps, a duplicate) must run again, so it is not done."""
    if status == "failed":
        return "diverged"
    return "refused" if status == "finished" and refused else status


def tuning_record(group: pd.DataFrame, finished: pd.DataFrame) -> dict:
    """group: every collected run of one (task, tuned optimizer), refused ones included."""
    seed = tuning_seed(zip(group["seed"], group["lr"]))
    on_seed = group[group["seed"] == seed]
    choice = choose_lr([GridRun(lr, grid_status(status, refused), value) for lr, status, refused, value in zip(
        on_seed["lr"], on_seed["status"], on_seed["refused"], on_seed[SELECTION_METRIC])])
    grid = on_seed[on_seed["refused"] == ""].sort_values("lr")
    winner = grid[grid["lr"] == choice.lr].iloc[0] if choice.lr is not None else None
    task, optimizer = group["task"].iloc[0], group["optimizer"].iloc[0]
    salsa = finished[(finished["task"] == task) & (finished["column"] == SALSA_FOR_BASELINE.get(optimizer))]
    salsa_time = salsa["wall_time_s"].mean() if len(salsa) else float("nan")
    grid_time = grid["wall_time_s"].sum(min_count=1)
    return {
        "task": task, "column": group["column"].iloc[0], "grid_seed": seed,
        "lr_grid": " ".join(f"{lr:g}" for lr in grid["lr"]),
        "val_loss_per_lr": " ".join(f"{v:.4g}" for v in grid[SELECTION_METRIC]),
        "winner_lr": winner["lr"] if winner is not None else float("nan"),
        "winner_val_loss_final": winner[SELECTION_METRIC] if winner is not None else float("nan"),
        "grid_runs": len(grid), "grid_wall_time_s": grid_time,
        "salsa_column": SALSA_FOR_BASELINE.get(optimizer), "salsa_run_wall_time_s": salsa_time,
        "tuning_cost_in_salsa_runs": grid_time / salsa_time,
    }


def select_cells(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs that fill the cells, tuning record with one row per task x tuned optimizer), from every collected run:
    refused runs fill no cell, but a grid run that is not done holds its grid's choice back, as in the sweep."""
    finished = runs[runs["refused"] == ""]
    records = [tuning_record(group, finished) for _, group in runs[runs["lr_choice"] == "tuned"].groupby(["task", "optimizer"])]
    record = pd.DataFrame(records, columns=[
        "task", "column", "grid_seed", "lr_grid", "val_loss_per_lr", "winner_lr", "winner_val_loss_final",
        "grid_runs", "grid_wall_time_s", "salsa_column", "salsa_run_wall_time_s", "tuning_cost_in_salsa_runs"])
    winners = set(zip(record["task"], record["column"], record["winner_lr"]))
    tuned = finished[finished["lr_choice"] == "tuned"]
    is_winner = [(t, c, lr) in winners for t, c, lr in zip(tuned["task"], tuned["column"], tuned["lr"])]
    cells = pd.concat([finished[finished["lr_choice"] != "tuned"], tuned[is_winner]])
    return cells.reset_index(drop=True), record
