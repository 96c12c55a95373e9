"""summary.json (docs/run-directory.md): what a run says of itself, "running" from its start, and at its end its
status, metrics, totals and environment, with the files a finished run vouches for."""
from __future__ import annotations

import resource

import torch

from salsa.contract.files import SUMMARY, write_json
from salsa.contract.verify import sealed, vouch
from salsa.train.build import RunContext
from salsa.train.distributed import SINGLE
from salsa.train.environment import environment
from salsa.train.loop import Progress, TrainingState


def write_summary(context: RunContext, state: TrainingState, mirror, status: str, final_loss=None, error=None, *,
                  collective: bool = True) -> dict:
    """Rank 0 writes summary.json (a finished run's with its "files"), sealed with the digest of its content, and
    the W&B mirror ends with it unless the run is still running (a mirror that could not write all of the run adds
    "mirror": {"wandb": "incomplete: <what it lacks>"}); collective: every rank takes part (see summarise)."""
    ranks, run_dir = context.ranks, context.where.path
    summary = summarise(context, state.progress, status=status, totals=state.opt.totals(),
                        final_train_loss=final_loss, error=error, collective=collective)
    if ranks.main:
        if status == "finished":
            summary["files"] = vouch(run_dir)
        summary = sealed(summary)
        write_json(run_dir / SUMMARY, summary)
        lacks = mirror.finish(summary) if status != "running" else None
        if lacks:  # the mirror could not write all of the run: the summary says so
            summary = sealed({**summary, "mirror": {"wandb": f"incomplete: {lacks}"}})
            write_json(run_dir / SUMMARY, summary)
    if collective:
        ranks.barrier()
    return summary


def summarise(context: RunContext, progress: Progress, *, status: str, totals: dict, final_train_loss=None,
              error=None, collective: bool = True) -> dict:
    """The summary.json of docs/run-directory.md. Under torchrun every rank calls it (peak memory is the
    maximum over the ranks) unless not collective (a failure on one rank); the metrics are already all-reduced
    and the totals count global batches."""
    cfg, ranks = context.cfg, context.ranks

    def last(split, key, best=None):
        values = [e[key] for e in progress.evals if e["split"] == split]
        return (best(values) if best else values[-1]) if values else None

    return {
        "schema": 1, "status": status, "run_id": context.where.id, "config_hash": context.where.config_hash,
        "task": cfg.task, "dataset": cfg.dataset.name, "model": cfg.model.name, "optimizer": cfg.optimizer.name,
        "lr_choice": cfg.optimizer.lr_choice, "lr": cfg.optimizer.get("lr"), "seed": cfg.seed, "epochs": cfg.trainer.epochs,
        "world_size": ranks.world_size,
        "metrics": {
            "final_train_loss": final_train_loss,
            "train_loss_running_mean": progress.loss_sum / progress.step if progress.step else None,
            "val_loss_final": last("val", "loss"), "val_acc_final": last("val", "acc"),
            "val_loss_best": last("val", "loss", min), "val_acc_peak": last("val", "acc", max),
            "test_loss_final": last("test", "loss"), "test_acc_final": last("test", "acc"),
        },
        "totals": {**totals, "wall_time_s": progress.wall_time_s,
                   "peak_memory_bytes": int((ranks if collective else SINGLE).max(_peak_memory(context.device), context.device))},
        "env": {**environment(context.device), "numerics": context.numerics, "numerics_changes": progress.numerics_changes},
        "error": error,
    }


def _peak_memory(device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process peak RSS (Linux reports KiB)
