"""LOGGERS: mirrors of the run directory (which is always written and is the source of truth)."""
from __future__ import annotations

import os

from omegaconf import OmegaConf

from salsa.registry import Registry, UserError

LOGGERS = Registry("logger")


@LOGGERS.register("local")
class LocalOnly:
    def __init__(self, cfg, run_dir, run_id):
        pass

    def log(self, record: dict) -> None:
        pass

    def finish(self, summary: dict) -> None:
        pass


@LOGGERS.register("wandb")
class WandbMirror:
    """W&B run with id = run_id (a resumed run continues the same W&B run). Offline runs are written under
    the run directory's wandb/ and uploaded later with `wandb sync <dir>`. Entity and project come from the
    config or WANDB_ENTITY / WANDB_PROJECT; the API key is left to wandb (env or `wandb login`)."""

    def __init__(self, cfg, run_dir, run_id):
        try:
            import wandb
        except ImportError as e:
            raise UserError("logger=wandb needs the wandb package: pip install wandb") from e
        lcfg = cfg.logger
        self.run = wandb.init(
            project=lcfg.project or os.environ.get("WANDB_PROJECT"), entity=lcfg.entity or os.environ.get("WANDB_ENTITY"),
            mode=lcfg.mode, dir=str(run_dir), id=run_id, resume="allow", name=f"{cfg.task}-{cfg.optimizer.name}-s{cfg.seed}",
            group=cfg.task, config=OmegaConf.to_container(cfg, resolve=True), settings=wandb.Settings(silent=True))
        self.run.define_metric("*", step_metric="step")

    def log(self, record: dict) -> None:
        kind = record["kind"] if record["kind"] != "eval" else record["split"]
        self.run.log({"step": record["step"], **{f"{kind}/{k}": v for k, v in record.items()
                                                 if k not in ("kind", "split", "step") and v is not None}})

    def finish(self, summary: dict) -> None:
        self.run.summary.update({"status": summary["status"], **summary["metrics"], **summary["totals"]})
        self.run.finish(exit_code=0 if summary["status"] == "finished" else 1)
