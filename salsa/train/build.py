"""Builds a claimed run from its config: the data on the device, the network, its optimizer and schedule, the
training state resumed from the checkpoint, and the writers of the run's record files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from salsa.contract.files import CHECKPOINT, METRICS, move_aside, shortfalls, warn
from salsa.contract.runid import RunId
from salsa.data import DATASETS, Data
from salsa.data.splits import mix
from salsa.models import MODELS
from salsa.registry import UserError
from salsa.train import checkpoint, distributed
from salsa.train.distributed import Ranks, on_rank0
from salsa.train.loggers import LOGGERS
from salsa.train.loop import PRECISIONS, Progress, TrainingState, memory_format, step_budget
from salsa.train.optimizers import build_optimizer, build_schedule
from salsa.train.preflight import check_splits
from salsa.train.rundir import MetricsLog, RunFiles, StepLosses


@dataclass(frozen=True)
class RunContext:
    """What a run is and where it runs, fixed from its start to its end."""
    cfg: DictConfig
    where: RunId
    ranks: Ranks
    device: torch.device
    numerics: dict                 # the numerics settings a resume compares (environment.numerics)


def build(context: RunContext, resume: bool) -> tuple[Data, TrainingState, RunFiles]:
    """Loads the data, builds the network and its optimizer, and resumes from the checkpoint."""
    cfg, ranks, device, run_dir = context.cfg, context.ranks, context.device, context.where.path
    tcfg = cfg.trainer
    data = on_rank0(ranks, lambda: DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=cfg.download,
                                                             tokenizer=cfg.model.get("tokenizer")).take(tcfg.limit),
                    then_others=True)
    check_splits(cfg, data)
    distributed.check_last_batch(len(data.train), tcfg.batch_size, ranks)
    data.train, data.val = data.train.to(device), data.val.to(device)
    data.test = None if data.test is None else data.test.to(device)
    torch.manual_seed(cfg.seed)
    net = MODELS[cfg.model.name].build(cfg.model, data).to(device, PRECISIONS[tcfg.precision], memory_format=memory_format(tcfg, device))
    if ranks.rank > 0:  # the same initial weights everywhere, but each rank its own dropout masks
        torch.manual_seed(mix(cfg.seed, ranks.rank))
    per_epoch = data.train.num_batches(tcfg.batch_size)
    params = parameter_groups(net, cfg.optimizer.get("weight_decay") or 0.0, decay_2d_only=tcfg.decay_2d_only)
    opt = build_optimizer(cfg.optimizer, params, model=net, steps_per_epoch=per_epoch)
    schedule = build_schedule(cfg.optimizer, opt, step_budget(tcfg, per_epoch))
    progress = Progress()
    if resume:
        progress = _resume(run_dir / CHECKPOINT, ranks, device, net=net, opt=opt, schedule=schedule,
                           config_hash=context.where.config_hash, numerics=context.numerics,
                           allow_numerics_change=tcfg.allow_numerics_change)
    files = RunFiles(MetricsLog(run_dir / METRICS),
                     LOGGERS[cfg.logger.name if ranks.main else "local"](cfg, run_dir, context.where.id),
                     StepLosses(run_dir if ranks.main else None), ranks.main)
    if ranks.main:
        files.metrics.keep_until(progress.step, progress.records)
        files.step_losses.keep_until(progress.step)
    return data, TrainingState(net, opt, schedule, progress, distributed.wrap(net, ranks, device)), files


def parameter_groups(net, weight_decay: float, *, decay_2d_only: bool):
    """The optimizer's parameters: one group, or with decay_2d_only and a weight decay nanoGPT's two groups
    (matrices and embeddings decayed, biases and norms not)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if not (decay_2d_only and weight_decay):
        return params
    return [{"params": [p for p in params if p.dim() >= 2]},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def _resume(path: Path, ranks: Ranks, device, **restore) -> Progress:
    """Every rank reads the checkpoint rank 0 found, and they agree on the step (or all stop with the reason).
    A damaged checkpoint is moved aside (rank 0) and the run starts again from step 0."""
    state, error, damage = None, None, None
    try:
        state = checkpoint.read(path, device)
    except checkpoint.Damaged as e:
        damage = str(e)
    except OSError as e:
        error = f"cannot read {path} ({e}); under torchrun on several nodes paths.runs must be storage that every node sees"
    ranks.agree(error)
    damages = [d for d in ranks.gather(damage) if d]
    if damages:
        if ranks.main:
            aside = move_aside(path)
            warn(f"{path} is damaged ({damages[0]}); moved aside to {aside.name}. The run starts again from step 0; "
                 "delete the .corrupt file when you no longer need it.")
        ranks.barrier()
        return Progress()
    try:
        checkpoint.check_config(state, path, restore["config_hash"])
    except UserError as e:
        error = str(e)
    ranks.agree(error)
    if ranks.from_main(_restart_for_lost_records(path.parent, state["progress"]) if ranks.main else None):
        ranks.barrier()
        return Progress()
    progress = Progress()
    try:
        progress = checkpoint.restore(state, path, ranks=ranks, **restore)
    except UserError as e:
        error = str(e)
    ranks.agree(error)
    steps = ranks.gather(progress.step)
    ranks.agree(None if len(set(steps)) == 1 else f"the ranks read different checkpoints (steps {steps}) from {path}")
    return progress


def _restart_for_lost_records(run_dir: Path, saved: dict) -> bool:
    """Rank 0: whether metrics.jsonl or train_loss.f32 hold less than the checkpoint counts (the lost records cannot
    be made again from the checkpoint); then those files are moved aside with a warning and the run starts again."""
    short = shortfalls(run_dir, step=saved["step"], records=saved.get("records"))
    if not short:
        return False
    asides = [move_aside(run_dir / name).name for name in short if (run_dir / name).exists()]
    warn(f"{'; '.join(short.values())} (its checkpoint is at step {saved['step']}): the lost records cannot be "
         f"made again from the checkpoint, so the run starts again from step 0"
         + (f" ({', '.join(asides)} kept for you to look at)" if asides else ""))
    return True
