"""LOGGERS: mirrors of the run directory (which is always written and is the source of truth)."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from salsa.contract.files import STEP_LOSSES, named, warn
from salsa.registry import Registry, UserError
from salsa.train import wandb_log

LOGGERS = Registry("logger")


@LOGGERS.register("local")
class LocalOnly:
    def __init__(self, cfg, run_dir, run_id):
        pass

    def log(self, record: dict) -> None:
        pass

    def finish(self, summary: dict) -> str | None:
        return None


@LOGGERS.register("wandb")
class WandbMirror:
    """W&B run with id = run_id (a resumed run continues the same W&B run). WANDB_MODE, when set, wins over
    logger.mode (as everywhere in wandb). W&B only mirrors the run directory, so it never stops a run: when the
    service cannot be reached (or no API key is set) at start, the run is mirrored offline under the run
    directory's wandb/ and the command to upload it later is printed (`wandb sync <dir>`); an error while
    logging stops the mirror, not the run. The system refusing this process a write of the mirror's files (under
    the run directory's wandb/: a full disk, a read-only file system) stops the run like any other write failure,
    as an OSError naming that folder. wandb's service process writes the transaction log: a write it fails there
    is found when the mirror finishes (the log read back: salsa.train.wandb_log), and finish() returns what the
    mirror lacks, with one warning; the run's own files are whole and it finishes. Entity and project come from
    the config or WANDB_ENTITY / WANDB_PROJECT; the API key is left to wandb (env or `wandb login`);
    WANDB_INIT_TIMEOUT (s) bounds the wait. At the end the run's train_loss.f32 (every step's loss, the paper's
    metric) is saved as a W&B run file."""

    def __init__(self, cfg, run_dir, run_id):
        self.run_dir, self.stopped = Path(run_dir), None   # stopped: why the mirror stopped early
        try:
            import wandb
        except ImportError as e:
            raise UserError("logger=wandb needs the wandb package: pip install wandb") from e
        lcfg = cfg.logger
        mode = os.environ.get("WANDB_MODE") or lcfg.mode
        init = dict(project=lcfg.project or os.environ.get("WANDB_PROJECT"), entity=lcfg.entity or os.environ.get("WANDB_ENTITY"),
                    dir=str(run_dir), id=run_id, resume="allow", name=f"{cfg.task}-{cfg.optimizer.name}-s{cfg.seed}",
                    group=cfg.task, config=OmegaConf.to_container(cfg, resolve=True), settings=wandb.Settings(silent=True))
        try:
            self.run = wandb.init(mode=mode, **init)
        except Exception as e:  # wandb raises its CommError, UsageError (no API key) and others here
            if mode == "offline" or self._refused(e):
                raise (self._refused(e) or e) from None
            wandb.teardown()  # the failed attempt still holds the run id in wandb's service process
            try:
                self.run = wandb.init(mode="offline", **init)
            except Exception as offline:  # noqa: BLE001 - as above
                raise self._refused(offline) or offline from None
            warn(f"W&B is unreachable ({str(e).splitlines()[0]}); the run continues and is mirrored offline: upload it later "
                 f"with `wandb sync {Path(self.run.settings.sync_dir).resolve()}`")
        self.run.define_metric("*", step_metric="step")

    def log(self, record: dict) -> None:
        kind = record["kind"] if record["kind"] != "eval" else record["split"]
        self._call(self.run.log, {"step": record["step"], **{f"{kind}/{k}": v for k, v in record.items()
                                                            if k not in ("kind", "split", "step") and v is not None}})

    def finish(self, summary: dict) -> str | None:
        """Ends the W&B run; what the mirror lacks (None: it is whole)."""
        run = self.run
        if run is None or run.disabled:
            return self.stopped
        self._call(run.summary.update, {"status": summary["status"], **summary["metrics"], **summary["totals"]})
        if (self.run_dir / STEP_LOSSES).exists():
            self._call(run.save, str(self.run_dir / STEP_LOSSES), base_path=str(self.run_dir), policy="now")
        self._call(run.finish, exit_code=0 if summary["status"] == "finished" else 1)
        if self.stopped:
            return self.stopped
        import wandb
        wandb.teardown()  # waits for wandb's service to have written the log (finish returns before it has)
        log = Path(run.settings.sync_file)
        lacks = wandb_log.lacks(log)
        if lacks:
            warn(f"the W&B mirror could not write {log.parent}: {lacks}. The run directory {self.run_dir} is complete "
                 "and remains the source of truth (summary.json records that the mirror is incomplete); free space "
                 "there (or raise the file-size limit) before the next run")
        return lacks

    def _call(self, method, *args, **kwargs) -> None:
        """A failing W&B call stops the mirror (the run directory holds everything), with one warning."""
        if self.run is None:
            return
        try:
            method(*args, **kwargs)
        except Exception as e:  # whatever wandb raises: the run must go on, unless the system refused a write
            if self._refused(e):
                raise self._refused(e) from None
            warn(f"W&B mirror stopped ({e}); the run directory is complete, upload it later with "
                 f"`wandb sync {Path(self.run.settings.sync_dir).resolve()}`")
            self.run, self.stopped = None, f"stopped at {getattr(method, '__name__', 'a call')}: {e}"


    def _refused(self, error: BaseException) -> OSError | None:
        """The system's refusal behind a wandb error (wandb raises its own, e.g. "... is not writable", from the
        OSError with the errno), naming the mirror's folder; None when the system refused nothing."""
        while error is not None and not (isinstance(error, OSError) and error.errno is not None):
            error = error.__cause__ or error.__context__
        return error and named(error, self.run_dir / "wandb")

