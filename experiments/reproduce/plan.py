"""Jobs -> planned runs: each composed with Hydra's compose API (the real conf/) to get the run id run.py will
use (salsa.contract.runid.identify), its status from the run directory, and its step count and cost."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from salsa.contract.files import NotPlain
from salsa.contract.runid import identify
from salsa.contract.verify import SMALL, damage, identity, read
from salsa.train.loop import step_budget

from . import costs as C
from .errors import SweepError
from .grid import CONF
from .jobs import Job

# Leaf values applied to a cached composition instead of composing again (composing takes ~0.2 s);
# tests/experiments checks that this gives the hash a full composition gives.
LEAVES = ("seed", "optimizer.lr", "optimizer.lr_choice", "paths.root")
_COMPOSED: dict = {}                    # base overrides -> composed config, for the life of the process


@dataclass
class PlannedRun:
    job: Job
    run_id: str
    run_dir: Path
    steps: int
    cost_s: float                       # estimated seconds of compute: measured (on `measured.device`) or the grid's unit
    measured: C.Measured | None = None  # the step cost's measurement; None: the grid's assumption
    status: str = "missing"             # missing | running (interrupted or crashed) | finished | diverged | damaged
    error: str | None = None
    summary: dict | None = None

    def refresh(self) -> PlannedRun:
        """The run's status from its directory. A finished run counts as finished only while its files match its
        summary (a cheap check at each plan: sizes and line counts, and the hash of the records the analysis reads,
        metrics.jsonl and train_loss.f32; checkpoint.pt by its size), its summary's digest matches, and the
        directory holds this config; otherwise it is "damaged" (the reason in `error`) and planned again, where
        run.py moves the damaged files aside and does it again (or refuses another config's directory)."""
        try:
            self.summary = read(self.run_dir)
        except FileNotFoundError:
            self.summary = None
        except (OSError, ValueError, NotPlain) as e:  # run.py moves a damaged summary aside, or refuses a link
            self.summary, self.status, self.error = None, "damaged", f"summary.json cannot be read: {e}"
            return self
        self.summary = self.summary if isinstance(self.summary, dict) else {}
        state = self.summary.get("status")
        # run.py writes "failed" only when the loss or a gradient became NaN/Inf (NonFiniteError): the run
        # diverged, a result that repeats identically, so it is terminal. Crashes leave "running" or "interrupted".
        self.status = {"finished": "finished", "failed": "diverged", "running": "running",
                       "interrupted": "running"}.get(state, "missing")
        self.error = self.summary.get("error") if isinstance(self.summary.get("error"), str) else None
        if self.status == "finished" and (problems := self.damage()):
            self.status, self.error = "damaged", "; ".join(problems)
        return self

    def damage(self) -> list[str]:
        problems = list(damage(self.run_dir, self.summary, hashed=SMALL).values())
        wrong = identity(self.run_dir, self.summary)
        return problems + ([wrong] if wrong else []) + ([] if self.summary.get("run_id") == self.run_id else
                                                        [f"summary.json names run {str(self.summary.get('run_id'))[:12]}"])


class Composer:
    """Composes many override lists against conf/ inside one Hydra context, caching all but LEAVES."""

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self):
        self._context = initialize_config_dir(config_dir=str(CONF), version_base="1.3")
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        self._context.__exit__(*exc)

    def compose(self, args: list[str]):
        base = tuple(a for a in args if a.split("=", 1)[0] not in LEAVES)
        if base not in _COMPOSED:
            try:
                _COMPOSED[base] = compose("config", overrides=list(base))
            except (HydraException, OmegaConfBaseException) as e:
                raise SweepError(f"the overrides {' '.join(base)} do not compose: {e}") from None
        cfg = copy.deepcopy(_COMPOSED[base])
        for arg in [*args, f"paths.root={self.root}"]:
            key, value = arg.split("=", 1)
            if key in LEAVES:
                OmegaConf.update(cfg, key, yaml_value(value), merge=False)
        return cfg


def yaml_value(text: str):
    """A command-line value as Hydra types it: int, float or string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def steps_of(cfg, train_examples: int) -> int:
    t = cfg.trainer
    n = min(train_examples, t.limit) if t.limit else train_examples
    return step_budget(t, math.ceil(n / t.batch_size))


_COSTS: list = []                      # the cost files, read once per process


def default_costs() -> C.Costs:
    if not _COSTS:
        _COSTS.append(C.Costs(C.load(), C.machine()))
    return _COSTS[0]


def plan(grid, jobs: list[Job], composer: Composer, costs: C.Costs | None = None) -> list[PlannedRun]:
    """The jobs' runs; a run's cost is steps x its measured step time where results/calibration has one, else
    steps x the grid's step_cost_s x optimizer_cost; run_overhead_s on top of either."""
    costs = default_costs() if costs is None else costs
    runs, seen = [], set()
    for job in jobs:
        cfg = composer.compose(job.args())
        if cfg.optimizer.name != job.optimizer:
            raise SweepError(f"task {job.task}: optimizer={job.optimizer} composed as {cfg.optimizer.name}")
        run_id = identify(cfg).id
        if run_id in seen:               # the tuned winner's run on the tuning seed is its grid run
            continue
        seen.add(run_id)
        task = grid.tasks[job.task]
        steps = steps_of(cfg, task.train_examples)
        measured = costs.lookup(C.key(cfg))
        step_s = measured.step_s if measured else task.step_cost_s * grid.optimizer_cost[job.optimizer]
        cost = steps * step_s + task.run_overhead_s
        runs.append(PlannedRun(job, run_id, Path(cfg.paths.runs) / run_id, steps, cost, measured).refresh())
    return runs
