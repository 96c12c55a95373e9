"""Which finished runs fill the table cells, and the record of how each tuned baseline was chosen.

Tuned baselines: the sweep writes runs with lr_choice "tuned" over a grid of `lr` values on one seed
(the grid seed). The winning lr is the one with the lowest VALIDATION loss (val_loss_final) on that seed;
the tuned cell then holds every seed run with the winning lr. The grid's runs are the tuning cost.
`choose_lr` is that rule, the only copy: the sweep (experiments/reproduce/selection.py) calls it too.

A cell holds the runs of one config, the seed apart (salsa.contract.runid.cell_config; the lr is one per cell, a
tuning grid's runs differ in it). Where a cell's runs differ in anything else, none of them is averaged:
`mixed_configs` names the difference, and missing_cells lists it.
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from salsa.contract.files import CONFIG, read_plain
from salsa.contract.runid import cell_config, cell_hash
from salsa.registry import UserError

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


def run_cell_config(run_dir) -> dict | None:
    """cell_config of a run directory's config.yaml (read as a plain file); None where it has none that reads."""
    try:
        return cell_config(OmegaConf.create(read_plain(Path(run_dir) / CONFIG).decode("utf-8")))
    except (OSError, UserError, ValueError, YAMLError, OmegaConfBaseException):
        return None


def cell_key(run_dir) -> str:
    """cell_hash of the run's config.yaml; "" where it has none that reads (then the runs are told apart by the
    other checks: a finished run must have one, salsa.contract.verify)."""
    config = run_cell_config(run_dir)
    return "" if config is None else cell_hash(config)


_ABSENT = object()
SHOWN_KEYS = 4  # differences named per cell; the rest are counted


def _shown(value) -> str:
    return "absent" if value is _ABSENT else json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def differences(configs: list) -> str:
    """"trainer.max_steps 40 vs 100; model.depth 2 vs -1" over the configs (dicts, or None for one that does not
    read), keys in the first config's order."""
    if any(config is None for config in configs):
        return f"{CONFIG} missing or unreadable in {sum(config is None for config in configs)} of them"
    keys = list(dict.fromkeys(key for config in configs for key in config))
    differ = [key for key in keys if len({_shown(config.get(key, _ABSENT)) for config in configs}) > 1]
    named = [f"{key} {' vs '.join(_shown(config.get(key, _ABSENT)) for config in configs)}" for key in differ[:SHOWN_KEYS]]
    more = len(differ) - SHOWN_KEYS
    return "; ".join(named) + (f"; and {more} more key{'s' * (more > 1)}" if more > 0 else "")


def mixed_configs(runs: pd.DataFrame) -> pd.Series:
    """Why each run of a cell (task, column) that holds runs of several configs must not be averaged; "" for the
    runs of the other cells. Configs are told apart by cell_config (column cell_config, from collect) and, outside
    a tuning grid, by the lr."""
    reasons = pd.Series("", index=runs.index, dtype=object)
    for _, cell in runs.groupby(["task", "column"], sort=False):
        lr = [None if choice == "tuned" or pd.isna(value) else float(value) for choice, value in zip(cell["lr_choice"], cell["lr"])]
        first = {}  # (cell_config, lr) -> the first run directory of that config
        for key, value, run_dir in zip(cell["cell_config"], lr, cell["run_dir"]):
            first.setdefault((key, value), run_dir)
        if len(first) < 2:
            continue
        configs = [run_cell_config(run_dir) for run_dir in first.values()]
        configs = [None if config is None else {**config, **({} if value is None else {"optimizer.lr": value})}
                   for config, (_, value) in zip(configs, first)]
        reason = (f"its cell holds runs of {len(first)} configs ({differences(configs)}), so none is averaged; keep "
                  "the runs of one config under the results root")
        reasons[cell.index] = reason
    return reasons
