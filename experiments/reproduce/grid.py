"""A grid file (experiments/grids/<tier>.yaml) -> a checked Grid: tasks, optimizers, seeds, lr grids, costs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analysis.selection import SELECTION_METRIC

from .errors import SweepError

REPO = Path(__file__).resolve().parents[2]
GRIDS = REPO / "experiments" / "grids"
CONF = REPO / "conf"


@dataclass(frozen=True)
class Task:
    name: str
    experiment: str                      # conf/experiment/<experiment>.yaml
    optimizers: tuple[str, ...]
    tune: dict                           # optimizer -> tuple of learning rates (the tuning grid)
    overrides: dict                      # extra config overrides of every run of this task
    train_examples: int
    step_cost_s: float
    run_overhead_s: float = 0.0


@dataclass(frozen=True)
class Grid:
    tier: str
    path: Path
    root: Path                           # paths.root of every run
    out: Path                            # results of this tier
    launcher: str                        # conf/hydra/launcher/<launcher>.yaml
    jobs: int | None                     # hydra.launcher.n_jobs (joblib) or None (the launcher's default)
    seeds: tuple[int, ...]
    tuning_seed: int
    tuning_metric: str
    compute_unit: str
    optimizer_cost: dict
    tasks: dict = field(default_factory=dict)   # name -> Task
    max_extensions: int = 3                      # a winner at the edge of its lr grid extends it at most this often
    env: dict = field(default_factory=dict)     # environment of the launched multiruns
    slurm: dict = field(default_factory=dict)   # hydra.launcher settings of its SLURM launches (resources)
    scope: str = ""                              # what the tier can and cannot test (the report's section)


def tiers() -> list[str]:
    return sorted(p.stem for p in GRIDS.glob("*.yaml"))


def add_choice(parser) -> None:
    """A command line's grid: --tier NAME or --grid FILE."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tier", help=f"the grid: {', '.join(tiers())} (experiments/grids/<tier>.yaml)")
    which.add_argument("--grid", type=Path, help="a grid file of the same schema (experiments/README.md)")


def chosen(args) -> Grid:
    return load(args.tier) if args.tier else load_file(args.grid)


def _options(group: str) -> set[str]:
    return {p.stem for p in (CONF / group).glob("*.yaml")}


def _need(mapping: dict, key: str, kind, where: str):
    if key not in mapping:
        raise SweepError(f"{where}: missing key '{key}'")
    value = mapping[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SweepError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")
    return value


def _task(name: str, spec: dict, defaults: tuple[str, ...], where: str) -> Task:
    where = f"{where}: task {name}"
    if not isinstance(spec, dict):
        raise SweepError(f"{where}: expected a mapping")
    experiment = _need(spec, "experiment", str, where)
    if experiment not in _options("experiment"):
        raise SweepError(f"{where}: no preset conf/experiment/{experiment}.yaml")
    optimizers = tuple(spec.get("optimizers", defaults))
    unknown = sorted(set(optimizers) - _options("optimizer"))
    if unknown:
        raise SweepError(f"{where}: unknown optimizer(s) {', '.join(unknown)}; known: {', '.join(sorted(_options('optimizer')))}")
    tune = {}
    for optimizer, lrs in (spec.get("tune") or {}).items():
        if optimizer not in optimizers:
            raise SweepError(f"{where}: tune.{optimizer} names an optimizer the task does not run ({', '.join(optimizers)})")
        if not isinstance(lrs, list) or not lrs or not all(isinstance(v, (int, float)) and v > 0 for v in lrs):
            raise SweepError(f"{where}: tune.{optimizer} must be a non-empty list of positive learning rates, got {lrs!r}")
        tune[optimizer] = tuple(float(v) for v in lrs)
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise SweepError(f"{where}: 'overrides' must be a mapping of config key -> value")
    return Task(name, experiment, optimizers, tune, dict(overrides), _need(spec, "train_examples", int, where),
                _need(spec, "step_cost_s", float, where), float(spec.get("run_overhead_s", 0.0)))


def _extensions(tuning: dict, where: str) -> int:
    value = tuning.get("max_extensions", 3)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SweepError(f"{where}: 'max_extensions' must be a non-negative integer, got {value!r}")
    return value


def load(tier: str) -> Grid:
    path = GRIDS / f"{tier}.yaml"
    if not path.exists():
        raise SweepError(f"unknown tier '{tier}': no {path.relative_to(REPO)}; tiers: {', '.join(tiers())}")
    return load_file(path)


def load_file(path: Path) -> Grid:
    if not path.is_file():
        raise SweepError(f"grid file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SweepError(f"{path}: not valid YAML ({e})") from None
    where = str(path)
    if not isinstance(raw, dict):
        raise SweepError(f"{where}: expected a mapping at the top level")
    seeds = tuple(raw.get("seeds") or ())
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds):
        raise SweepError(f"{where}: 'seeds' must be a list of distinct integers, got {raw.get('seeds')!r}")
    defaults = tuple(_need(raw, "optimizers", list, where))
    tasks = _need(raw, "tasks", dict, where)
    grid_tasks = {name: _task(name, spec, defaults, where) for name, spec in tasks.items()}
    launcher = _need(raw, "launcher", str, where)
    if launcher not in _options("hydra/launcher"):
        raise SweepError(f"{where}: no launcher conf/hydra/launcher/{launcher}.yaml")
    cost = _need(raw, "optimizer_cost", dict, where)
    used = {o for t in grid_tasks.values() for o in t.optimizers}
    if used - set(cost):
        raise SweepError(f"{where}: optimizer_cost lacks {', '.join(sorted(used - set(cost)))}")
    tuning = _need(raw, "tuning", dict, where)
    slurm = raw.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise SweepError(f"{where}: 'slurm' must be a mapping of hydra.launcher setting -> value, e.g. {{gpus_per_node: 0}}")
    if tuning.get("metric") != SELECTION_METRIC:
        raise SweepError(f"{where}: tuning.metric must be {SELECTION_METRIC} (the validation loss analysis/selection.py "
                         f"selects on; never a test metric), got {tuning.get('metric')!r}")
    return Grid(tier=_need(raw, "tier", str, where), path=path, root=Path(_need(raw, "root", str, where)),
                out=Path(_need(raw, "out", str, where)), launcher=launcher, jobs=raw.get("jobs"), seeds=seeds,
                tuning_seed=_need(tuning, "seed", int, f"{where}: tuning"),
                tuning_metric=_need(tuning, "metric", str, f"{where}: tuning"),
                compute_unit=_need(raw, "compute_unit", str, where), optimizer_cost=dict(cost),
                max_extensions=_extensions(tuning, f"{where}: tuning"),
                tasks=grid_tasks, env={k: str(v) for k, v in (raw.get("env") or {}).items()},
                slurm={k: str(v) for k, v in slurm.items()}, scope=str(raw.get("scope") or "").strip())
