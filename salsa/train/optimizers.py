"""OPTIMIZERS (conf/optimizer/<name>.yaml -> builder) and the baselines' learning-rate schedules.

Every builder returns an object with the closure protocol of salsa.optim, so the loop has no special
case per optimizer. The YAML's fields other than name/baseline/lr/schedule are constructor arguments."""
from __future__ import annotations

import torch
from omegaconf import OmegaConf

from salsa.optim import SLS, ClosureOptimizer, SaLSa
from salsa.reference import AdamSLS, SaLSA
from salsa.registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
_NOT_ARGS = ("name", "baseline", "lr", "schedule")


def _kwargs(cfg) -> dict:
    args = OmegaConf.to_container(cfg, resolve=True)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if k not in _NOT_ARGS}


def _torch_optimizer(cls):
    return lambda cfg, params, model, steps_per_epoch: ClosureOptimizer(cls(params, lr=cfg.lr, **_kwargs(cfg)))


for _name, _cls in {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}.items():
    OPTIMIZERS.register(_name, _torch_optimizer(_cls))

for _name in ("salsa_adam", "salsa_sgd"):
    OPTIMIZERS.register(_name, lambda cfg, params, model, steps_per_epoch: SaLSa(params, model=model, **_kwargs(cfg)))

# The paper's four line-search columns: the authors' AdamSLS; n_batches_per_epoch is the YAML's (their 500).
# `salsa` is paper_salsa_adam with the frequency rule of the data set's paper settings (conf/optimizer/salsa.yaml).
for _name in ("paper_salsa_adam", "paper_salsa_sgd", "paper_sls_adam", "paper_sls_sgd", "salsa"):
    OPTIMIZERS.register(_name, lambda cfg, params, model, steps_per_epoch: AdamSLS(params, model=model, **_kwargs(cfg)))

OPTIMIZERS.register("release_salsa", lambda cfg, params, model, steps_per_epoch: SaLSA(params, model=model, **_kwargs(cfg)))

for _name in ("sls_adam", "sls_sgd"):
    OPTIMIZERS.register(_name, lambda cfg, params, model, steps_per_epoch: SLS(
        params, n_batches_per_epoch=steps_per_epoch, model=model, **_kwargs(cfg)))


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
