"""Which finished runs fill the table cells, and the record of how each tuned baseline was chosen.

Tuned baselines: the sweep writes runs with baseline "tuned" over a grid of `lr` values on one seed
(the grid seed). The winning lr is the one with the lowest VALIDATION loss (val_loss_final) on that seed;
the tuned cell then holds every seed run with the winning lr. The grid's runs are the tuning cost.
"""
import pandas as pd

from .names import SALSA_FOR_BASELINE

SELECTION_METRIC = "val_loss_final"


def grid_seed(group: pd.DataFrame):
    """The seed that appears with the most lr values (the lowest such seed on a tie)."""
    lrs_per_seed = group.groupby("seed")["lr"].nunique()
    return lrs_per_seed[lrs_per_seed == lrs_per_seed.max()].index.min()


def tuning_record(group: pd.DataFrame, finished: pd.DataFrame) -> dict:
    seed = grid_seed(group)
    grid = group[group["seed"] == seed].sort_values("lr")
    scored = grid.dropna(subset=[SELECTION_METRIC])
    winner = scored.loc[scored[SELECTION_METRIC].idxmin()] if len(scored) else None
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


def select_cells(finished: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs that fill the cells, tuning record with one row per task x tuned optimizer)."""
    tuned = finished[finished["baseline"] == "tuned"]
    records = [tuning_record(group, finished) for _, group in tuned.groupby(["task", "optimizer"])]
    record = pd.DataFrame(records, columns=[
        "task", "column", "grid_seed", "lr_grid", "val_loss_per_lr", "winner_lr", "winner_val_loss_final",
        "grid_runs", "grid_wall_time_s", "salsa_column", "salsa_run_wall_time_s", "tuning_cost_in_salsa_runs"])
    winners = set(zip(record["task"], record["column"], record["winner_lr"]))
    is_winner = [(t, c, lr) in winners for t, c, lr in zip(tuned["task"], tuned["column"], tuned["lr"])]
    cells = pd.concat([finished[finished["baseline"] != "tuned"], tuned[is_winner]])
    return cells.reset_index(drop=True), record
