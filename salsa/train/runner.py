"""Builds a run from the composed config and owns its run directory: skip, resume, train, summarise."""
from __future__ import annotations

import resource
from pathlib import Path

import torch
from omegaconf import OmegaConf

from salsa.data import DATASETS
from salsa.data.splits import mix
from salsa.models import MODELS
from salsa.optim import NonFiniteError
from salsa.registry import UserError
from salsa.train import checkpoint, distributed
from salsa.train.distributed import SINGLE, Ranks
from salsa.train.loggers import LOGGERS
from salsa.train.loop import Progress, train
from salsa.train.optimizers import OPTIMIZERS, build_schedule
from salsa.train.rundir import MetricsLog, config_hash, environment, read_json, write_json


def check_compatible(cfg) -> None:
    """Fails before any data is loaded when the model cannot take the data set's inputs."""
    kind, accepts = cfg.dataset.kind, MODELS[cfg.model.name].accepts
    if kind not in accepts:
        fitting = [m for m in MODELS.names() if kind in MODELS[m].accepts]
        raise UserError(f"model={cfg.model.name} cannot train on dataset={cfg.dataset.name}: its inputs are {kind} data and "
                        f"{cfg.model.name} takes {'/'.join(sorted(accepts))} inputs. Models for {kind} data: {', '.join(fitting)}.")
    if cfg.trainer.grad_clip and "schedule" not in cfg.optimizer:
        raise UserError(f"trainer.grad_clip works with the torch baselines (adam, adamw, sgd) only: {cfg.optimizer.name} "
                        "calls backward inside its step, where the harness cannot clip. Leave trainer.grad_clip=null.")


def prepare_run_dir(cfg) -> tuple[Path, str]:
    full_hash = config_hash(cfg)
    run_dir = Path(cfg.paths.runs) / full_hash[:12]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write the run directory {run_dir} ({e.strerror}). Choose a writable place with "
                        f"paths.root=/some/writable/dir (runs go to <paths.root>/runs) or paths.runs=/some/writable/dir.") from e
    return run_dir, full_hash


def _on_rank0(ranks: Ranks, work, *, then_others: bool = False):
    """work() on rank 0; a UserError there is raised on every rank. then_others=False: every rank gets rank 0's
    result. then_others=True: the other ranks then run work() themselves (they find rank 0's downloads and
    caches) and each keeps its own result."""
    result, error = None, None
    if ranks.main:
        try:
            result = work()
        except UserError as e:
            error = str(e)
    if then_others:
        error = ranks.from_main(error)
    else:
        result, error = ranks.from_main((result, error))
    if error:
        raise UserError(error)
    return work() if then_others and not ranks.main else result


def _open_run_dir(cfg, ranks: Ranks) -> tuple[Path, str, dict | None, bool]:
    """Rank 0 prepares the run directory; every rank learns its previous summary and whether to resume."""
    def claim():
        run_dir, _ = prepare_run_dir(cfg)
        previous = read_json(run_dir / "summary.json")
        if not (previous and previous["status"] == "finished") and not (run_dir / "config.yaml").exists():
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        return previous, (run_dir / "checkpoint.pt").exists()

    full_hash = config_hash(cfg)
    previous, resume = _on_rank0(ranks, claim)
    return Path(cfg.paths.runs) / full_hash[:12], full_hash, previous, resume


def _resume(path: Path, ranks: Ranks, **state) -> Progress:
    """Every rank loads the checkpoint rank 0 found, and they agree on the step (or all stop with the reason)."""
    progress, error = Progress(), None
    try:
        progress = checkpoint.load(path, ranks=ranks, **state)
    except UserError as e:
        error = str(e)
    except OSError as e:
        error = f"cannot read {path} ({e}); under torchrun on several nodes paths.runs must be storage that every node sees"
    ranks.agree(error)
    steps = ranks.gather(progress.step)
    ranks.agree(None if len(set(steps)) == 1 else f"the ranks read different checkpoints (steps {steps}) from {path}")
    return progress


def _peak_memory(device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process peak RSS (Linux reports KiB)


def summarise(cfg, run_id, full_hash, status, progress: Progress, totals, final_train_loss, device, error=None,
              ranks: Ranks = SINGLE) -> dict:
    """The summary.json of docs/run-directory.md. Under torchrun every rank calls it (peak memory is the
    maximum over the ranks); the metrics are already all-reduced and the totals count global batches."""
    def last(split, key, best=None):
        values = [e[key] for e in progress.evals if e["split"] == split]
        return (best(values) if best else values[-1]) if values else None

    return {
        "schema": 1, "status": status, "run_id": run_id, "config_hash": full_hash, "task": cfg.task,
        "dataset": cfg.dataset.name, "model": cfg.model.name, "optimizer": cfg.optimizer.name,
        "baseline": cfg.optimizer.baseline, "lr": cfg.optimizer.get("lr"), "seed": cfg.seed, "epochs": cfg.trainer.epochs,
        "world_size": ranks.world_size,
        "metrics": {
            "final_train_loss": final_train_loss,
            "train_loss_running_mean": progress.loss_sum / progress.step if progress.step else None,
            "val_loss_final": last("val", "loss"), "val_acc_final": last("val", "acc"),
            "val_loss_best": last("val", "loss", min), "val_acc_peak": last("val", "acc", max),
            "test_loss_final": last("test", "loss"), "test_acc_final": last("test", "acc"),
        },
        "totals": {**totals, "wall_time_s": progress.wall_time_s,
                   "peak_memory_bytes": int(ranks.max(_peak_memory(device), device))},
        "env": environment(device), "error": error,
    }


def run(cfg) -> tuple[dict, Path, bool]:
    """Trains the configured run, or finds it finished; returns (summary, run directory, whether it trained now).
    Under torchrun (WORLD_SIZE > 1) every rank calls it; only rank 0 writes files and mirrors to W&B."""
    check_compatible(cfg)
    ranks, device = distributed.setup(cfg.trainer.device)
    distributed.check_batch_size(cfg.trainer.batch_size, ranks)
    run_dir, full_hash, previous, resume = _open_run_dir(cfg, ranks)
    run_id, summary_path, ckpt_path = full_hash[:12], run_dir / "summary.json", run_dir / "checkpoint.pt"
    if previous and previous["status"] == "finished":
        return previous, run_dir, False

    tcfg = cfg.trainer
    data = _on_rank0(ranks, lambda: DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=cfg.download,
                                                              tokenizer=cfg.model.get("tokenizer")).take(tcfg.limit),
                     then_others=True)
    distributed.check_last_batch(len(data.train), tcfg.batch_size, ranks)
    data.train, data.val = data.train.to(device), data.val.to(device)
    data.test = None if data.test is None else data.test.to(device)
    torch.manual_seed(cfg.seed)
    net = MODELS[cfg.model.name].build(cfg.model, data).to(device)
    if ranks.rank > 0:  # the same initial weights everywhere, but each rank its own dropout masks
        torch.manual_seed(mix(cfg.seed, ranks.rank))
    per_epoch = data.train.num_batches(tcfg.batch_size)
    opt = OPTIMIZERS[cfg.optimizer.name](cfg.optimizer, net.parameters(), net, per_epoch)
    schedule = build_schedule(cfg.optimizer, opt, min(tcfg.epochs * per_epoch, tcfg.max_steps or tcfg.epochs * per_epoch))
    if tcfg.grad_clip:  # the wrapped torch optimizer's pre-hook runs after the closure's backward (and DDP's all-reduce)
        def clip(*_):
            torch.nn.utils.clip_grad_norm_(net.parameters(), tcfg.grad_clip)
        opt.optimizer.register_step_pre_hook(clip)
    progress = Progress()
    if resume:
        progress = _resume(ckpt_path, ranks, model=net, opt=opt, schedule=schedule, config_hash=full_hash, device=device)
    model = distributed.wrap(net, ranks, device)

    metrics = MetricsLog(run_dir / "metrics.jsonl")
    mirror = LOGGERS[cfg.logger.name if ranks.main else "local"](cfg, run_dir, run_id)
    if ranks.main:
        metrics.keep_until(progress.step)

    def record(r: dict) -> None:
        if ranks.main:
            metrics.write(r)
            mirror.log(r)

    def save() -> None:
        checkpoint.save(ckpt_path, model=net, opt=opt, schedule=schedule, progress=progress, config_hash=full_hash, ranks=ranks)

    def write_summary(status, final_loss=None, error=None) -> dict:
        summary = summarise(cfg, run_id, full_hash, status, progress, opt.totals(), final_loss, device, error, ranks)
        if ranks.main:
            write_json(summary_path, summary)
            if status != "running":
                mirror.finish(summary)
        ranks.barrier()
        return summary

    write_summary("running")
    forward = torch.compile(model) if tcfg.compile else model
    evaluator = (torch.compile(net) if tcfg.compile else net) if ranks.active else forward
    try:
        final_loss = train(forward, data, opt, schedule, tcfg, seed=cfg.seed, device=device, progress=progress,
                           record=record, checkpoint=save, ranks=ranks, eval_model=evaluator)
    except NonFiniteError as e:
        write_summary("failed", error=str(e))
        raise UserError(f"run {run_dir} failed: {e}") from e
    return write_summary("finished", final_loss), run_dir, True
