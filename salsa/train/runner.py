"""Builds a run from the composed config and owns its run directory: skip, resume, train, summarise."""
from __future__ import annotations

import resource
from pathlib import Path

import torch
from omegaconf import OmegaConf

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.optim import NonFiniteError
from salsa.registry import UserError
from salsa.train import checkpoint
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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but no CUDA device is visible; use trainer.device=cpu or auto")
    return torch.device(name)


def _peak_memory(device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process peak RSS (Linux reports KiB)


def summarise(cfg, run_id, full_hash, status, progress: Progress, totals, final_train_loss, device, error=None) -> dict:
    def last(split, key, best=None):
        values = [e[key] for e in progress.evals if e["split"] == split]
        return (best(values) if best else values[-1]) if values else None

    return {
        "schema": 1, "status": status, "run_id": run_id, "config_hash": full_hash, "task": cfg.task,
        "dataset": cfg.dataset.name, "model": cfg.model.name, "optimizer": cfg.optimizer.name,
        "baseline": cfg.optimizer.baseline, "lr": cfg.optimizer.get("lr"), "seed": cfg.seed, "epochs": cfg.trainer.epochs,
        "metrics": {
            "final_train_loss": final_train_loss,
            "train_loss_running_mean": progress.loss_sum / progress.step if progress.step else None,
            "val_loss_final": last("val", "loss"), "val_acc_final": last("val", "acc"),
            "val_loss_best": last("val", "loss", min), "val_acc_peak": last("val", "acc", max),
            "test_loss_final": last("test", "loss"), "test_acc_final": last("test", "acc"),
        },
        "totals": {**totals, "wall_time_s": progress.wall_time_s, "peak_memory_bytes": _peak_memory(device)},
        "env": environment(device), "error": error,
    }


def run(cfg) -> tuple[dict, Path, bool]:
    """Trains the configured run, or finds it finished; returns (summary, run directory, whether it trained now)."""
    check_compatible(cfg)
    run_dir, full_hash = prepare_run_dir(cfg)
    run_id, summary_path, ckpt_path = full_hash[:12], run_dir / "summary.json", run_dir / "checkpoint.pt"
    previous = read_json(summary_path)
    if previous and previous["status"] == "finished":
        return previous, run_dir, False
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    device, tcfg = _device(cfg.trainer.device), cfg.trainer
    data = DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=cfg.download,
                                      tokenizer=cfg.model.get("tokenizer")).take(tcfg.limit)
    data.train, data.val = data.train.to(device), data.val.to(device)
    data.test = None if data.test is None else data.test.to(device)
    torch.manual_seed(cfg.seed)
    model = MODELS[cfg.model.name].build(cfg.model, data).to(device)
    per_epoch = data.train.num_batches(tcfg.batch_size)
    opt = OPTIMIZERS[cfg.optimizer.name](cfg.optimizer, model.parameters(), model, per_epoch)
    schedule = build_schedule(cfg.optimizer, opt, min(tcfg.epochs * per_epoch, tcfg.max_steps or tcfg.epochs * per_epoch))
    if tcfg.grad_clip:  # the wrapped torch optimizer's pre-hook runs after the closure's backward
        def clip(*_):
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.optimizer.register_step_pre_hook(clip)
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    progress = Progress()
    if ckpt_path.exists():
        progress = checkpoint.load(ckpt_path, model=model, opt=opt, schedule=schedule, config_hash=full_hash, device=device)
    metrics.keep_until(progress.step)

    mirror = LOGGERS[cfg.logger.name](cfg, run_dir, run_id)
    record = lambda r: (metrics.write(r), mirror.log(r))  # noqa: E731
    save = lambda: checkpoint.save(ckpt_path, model=model, opt=opt, schedule=schedule, progress=progress, config_hash=full_hash)  # noqa: E731
    write_json(summary_path, summarise(cfg, run_id, full_hash, "running", progress, opt.totals(), None, device))
    forward = torch.compile(model) if tcfg.compile else model
    try:
        final_loss = train(forward, data, opt, schedule, tcfg, seed=cfg.seed, device=device, progress=progress, record=record, checkpoint=save)
    except NonFiniteError as e:
        summary = summarise(cfg, run_id, full_hash, "failed", progress, opt.totals(), None, device, error=str(e))
        write_json(summary_path, summary)
        mirror.finish(summary)
        raise UserError(f"run {run_dir} failed: {e}") from e
    summary = summarise(cfg, run_id, full_hash, "finished", progress, opt.totals(), final_loss, device)
    write_json(summary_path, summary)
    mirror.finish(summary)
    return summary, run_dir, True
