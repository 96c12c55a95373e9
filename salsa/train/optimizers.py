"""Builds the optimizer a conf/optimizer/<name>.yaml (the optimizer catalogue, salsa/contract/catalogue.py) declares, and
the baselines' learning-rate schedules.

An entry's `_target_` is built with Hydra's `instantiate`; its fields but NOT_ARGUMENTS are the class's
constructor arguments. The harness also passes `model` (trial points restore its buffers) and
`n_batches_per_epoch` (the data set's) to a class whose constructor takes them, unless the entry sets them.
A torch.optim class is driven through ClosureOptimizer, so the loop has no special case per optimizer."""
from __future__ import annotations

import inspect

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from salsa.contract.catalogue import CATALOGUE_DIR, LABELS, fields
from salsa.optim import ClosureOptimizer
from salsa.optim.base import ClosureLineSearch
from salsa.registry import Registry

SCHEDULES = Registry("schedule")
# The entry's class, name and labels, and the baselines' lr choice: not constructor arguments.
NOT_ARGUMENTS = ("_target_", "name", *LABELS, "lr_choice", "schedule")


def catalogue_entry(name: str, **overrides) -> DictConfig:
    """conf/optimizer/<name>.yaml with overrides, to build a catalogue optimizer outside a run (the benchmarks). An
    entry that takes values from the data set (the baselines, `salsa`) needs the composed config instead."""
    return OmegaConf.merge(fields(CATALOGUE_DIR / f"{name}.yaml"), overrides)


def build_optimizer(cfg, params, *, model, steps_per_epoch: int):
    """The optimizer of the catalogue entry `cfg` over `params`, on the closure protocol."""
    args = {k: tuple(v) if isinstance(v, list) else v
            for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in NOT_ARGUMENTS}
    offered = {"model": model, "n_batches_per_epoch": steps_per_epoch}
    build = instantiate({"_target_": cfg._target_}, _partial_=True)
    takes = inspect.signature(build).parameters
    args.update({k: v for k, v in offered.items() if k in takes and k not in args})
    optimizer = build(params, **args)
    return optimizer if isinstance(optimizer, ClosureLineSearch) else ClosureOptimizer(optimizer)


@SCHEDULES.register("constant")
def constant(optimizer, total_steps, **_):
    return None


@SCHEDULES.register("warmup_cosine")
def warmup_cosine(optimizer, total_steps, warmup_frac: float, final_frac: float):
    """Linear warm-up over warmup_frac of the steps, then cosine decay to final_frac of the peak lr."""
    warmup = int(warmup_frac * total_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup), eta_min=final_frac * optimizer.param_groups[0]["lr"])
    if warmup == 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


def build_schedule(cfg, optimizer, total_steps: int):
    """The scheduler for a baseline with a `schedule` node (on its wrapped torch optimizer), else None."""
    if "schedule" not in cfg:
        return None
    schedule = OmegaConf.to_container(cfg.schedule, resolve=True)
    return SCHEDULES[schedule.pop("name")](optimizer.optimizer, total_steps, **schedule)
