"""A Grid -> the runs of each stage, as override lists for run.py.

Stages: "main" (every optimizer x every seed; Adam/SGD with the paper's lr and schedule), "tune" (the lr grid of
each tuned optimizer on the tuning seed, `optimizer.lr_choice=tuned`), "tuned" (the selected lr on every seed).
"""
from __future__ import annotations

from dataclasses import dataclass

STAGES = ("main", "tune", "tuned")


@dataclass(frozen=True)
class Job:
    stage: str
    task: str                              # the grid's task name
    optimizer: str
    seed: int
    lr: float | None                       # set for tune/tuned runs, None where the config decides
    overrides: tuple                       # ((key, value), ...) in command-line order

    def args(self) -> list[str]:
        return [f"{key}={format_value(value)}" for key, value in self.overrides]


def format_value(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _job(stage, task, optimizer, seed, lr=None) -> Job:
    overrides = [("experiment", task.experiment), *task.overrides.items(), ("optimizer", optimizer)]
    if lr is not None:
        overrides += [("optimizer.lr_choice", "tuned"), ("optimizer.lr", float(lr))]
    return Job(stage, task.name, optimizer, seed, lr, tuple(overrides + [("seed", seed)]))


def main_jobs(grid) -> list[Job]:
    return [_job("main", t, o, s) for t in grid.tasks.values() for o in t.optimizers for s in grid.seeds]


def tune_jobs(grid) -> list[Job]:
    return [_job("tune", t, o, grid.tuning_seed, lr)
            for t in grid.tasks.values() for o, lrs in t.tune.items() for lr in lrs]


def extension_jobs(grid, records: list[dict]) -> list[Job]:
    """One more grid point beyond the edge where a winner sits at the edge of its (extended) lr grid: the next
    point on the grid's spacing, while the pair has had fewer than grid.max_extensions extensions."""
    jobs = []
    for r in records:
        lrs = r["lr_grid"]
        if not r["winner_at_grid_edge"] or len(r["extensions"]) >= grid.max_extensions or len(lrs) < 2:
            continue
        lr = lrs[-1] ** 2 / lrs[-2] if r["winner_lr"] == lrs[-1] else lrs[0] ** 2 / lrs[1]
        jobs.append(_job("tune", grid.tasks[r["task"]], r["optimizer"], grid.tuning_seed, lr))
    return jobs


def tuned_jobs(grid, winners: dict) -> list[Job]:
    """winners: (task, optimizer) -> selected lr; pairs without a winner get no runs. The tuning seed's run
    with the winning lr is the grid's own run (same overrides, same run id), so it is not planned twice."""
    return [_job("tuned", grid.tasks[task], optimizer, s, lr)
            for (task, optimizer), lr in winners.items() for s in grid.seeds if s != grid.tuning_seed]
