"""Builds a run from the composed config and owns its run directory: skip, resume, train, summarise."""
from __future__ import annotations

import contextlib
import errno
import resource
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from salsa.contract.files import move_aside, read_summary, shortfalls, warn, write_json
from salsa.contract.runid import RunId, identify
from salsa.contract.verify import damage, vouch
from salsa.data import DATASETS, Data
from salsa.data.splits import mix
from salsa.models import MODELS
from salsa.optim import NonFiniteError
from salsa.registry import UserError
from salsa.train import checkpoint, distributed
from salsa.train.distributed import SINGLE, Ranks
from salsa.train.environment import environment, numerics
from salsa.train.loggers import LOGGERS, LocalOnly, WandbMirror
from salsa.train.loop import (
    PRECISIONS,
    Checkpoints,
    Progress,
    TrainingState,
    memory_format,
    no_hook,
    step_budget,
    train,
)
from salsa.train.optimizers import build_optimizer, build_schedule
from salsa.train.rundir import MetricsLog, RunLock, StepLosses


def check_compatible(cfg) -> None:
    """Fails before any data is loaded when the model cannot take the data set's inputs."""
    kind, accepts = cfg.dataset.kind, MODELS[cfg.model.name].accepts
    if kind not in accepts:
        fitting = [m for m in MODELS.names() if kind in MODELS[m].accepts]
        raise UserError(f"model={cfg.model.name} cannot train on dataset={cfg.dataset.name}: its inputs are {kind} data and "
                        f"{cfg.model.name} takes {'/'.join(sorted(accepts))} inputs. Models for {kind} data: {', '.join(fitting)}.")
    micro, batch = cfg.trainer.micro_batches, cfg.trainer.batch_size
    if not isinstance(micro, int) or not 1 <= micro <= batch:
        raise UserError(f"trainer.micro_batches={micro} must be an integer from 1 to trainer.batch_size={batch} "
                        "(the micro-batches a step's batch is cut into)")


def check_optimizer(cfg) -> None:
    """The optimizer's constructor checks its own arguments (for library users); its ValueError or TypeError, or
    a `_target_` that cannot be imported, becomes the harness's one-line error here, before anything is written."""
    probe = torch.nn.Parameter(torch.zeros(1))
    try:
        build_optimizer(cfg.optimizer, [probe], model=None, steps_per_epoch=1)
    except InstantiationException:
        raise UserError(f"optimizer={cfg.optimizer.name}: optimizer._target_={cfg.optimizer._target_} cannot be imported; "
                        "it must name an optimizer class (module.Class)") from None
    except (ValueError, TypeError) as e:
        raise UserError(f"optimizer={cfg.optimizer.name}: {e}; fix the optimizer.* values "
                        f"(conf/optimizer/{cfg.optimizer.name}.yaml lists them)") from None


def check_splits(cfg, data) -> None:
    """An empty split would divide by zero in the loop or in evaluation."""
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        if split is not None and len(split) == 0:
            raise UserError(f"the {name} split of dataset={cfg.dataset.name} is empty: check dataset.val_fraction, "
                            "dataset.test_fraction and the files under paths.data")


def check_writable(where: RunId) -> None:
    try:
        where.path.mkdir(parents=True, exist_ok=True)
        probe = where.path / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write the run directory {where.path} ({e.strerror}). Choose a writable place with "
                        f"paths.root=/some/writable/dir (runs go to <paths.root>/runs) or paths.runs=/some/writable/dir.") from e


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


class Interrupted(UserError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM); its summary says "interrupted" and the same command resumes."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class Fault(UserError):
    """The machine refused (a full disk, an I/O error): a clear message and exit 1, no traceback."""
    exit_code = 1


# what a write failure means, and what to do before running the same command again
REMEDIES = {
    errno.ENOSPC: ("the disk is full", "free space (or choose paths.root on another disk)"),
    errno.EDQUOT: ("the disk quota is used up", "free space within the quota (or choose paths.root elsewhere)"),
    errno.EFBIG: ("the file is larger than allowed", "raise the file-size limit (ulimit -f) or choose a file system "
                  "that takes larger files"),
    errno.EROFS: ("the file system is read-only", "make it writable (or choose paths.root elsewhere)"),
}


def fault(error: OSError, run_dir: Path) -> Fault:
    """One line: the file, the OS reason (its errno name and text) and the remedy."""
    where = error.filename or run_dir
    reason = f"{errno.errorcode.get(error.errno, 'no errno')}: {error.strerror or error}"
    if error.errno in REMEDIES:
        what, remedy = REMEDIES[error.errno]
        problem = f"{what}: cannot write {where} ({reason}); {remedy}"
    else:
        problem = f"{where}: {reason}; fix that"
    return Fault(f"{problem}, then run the same command again: it resumes from the last checkpoint")


def _trusted(run_dir: Path, previous: dict | None) -> bool:
    """A finished run whose files match its summary. One whose files do not is done again: the damaged files and
    the summary are moved aside (never deleted) with a warning, and the run resumes from what is left."""
    if not (previous and previous["status"] == "finished"):
        return False
    problems = damage(run_dir, previous)
    if not problems:
        return True
    asides = [move_aside(run_dir / name).name for name in (*problems, "summary.json") if (run_dir / name).exists()]
    warn(f"{run_dir} finished, but its files do not match summary.json ({'; '.join(problems.values())}); moved aside "
         f"to {', '.join(asides)}. The run is done again from what is left.")
    return False


def _claim(cfg, where: RunId, lock: RunLock) -> tuple[dict | None, bool, bool]:
    """Rank 0: (the summary of a finished run whose files match it, else None; whether to resume; whether the
    directory is new). A finished run is left as it is; otherwise this process takes the lock and writes config.yaml."""
    check_writable(where)
    run_dir = where.path
    previous = read_summary(run_dir / "summary.json")
    if previous and previous["status"] == "finished" and not damage(run_dir, previous):
        return previous, False, False
    lock.acquire()
    previous = read_summary(run_dir / "summary.json")  # as the owner now
    if _trusted(run_dir, previous):  # finished by another process meanwhile
        return previous, False, False
    fresh = not any((run_dir / name).exists() for name in ("summary.json", "metrics.jsonl", "checkpoint.pt"))
    if not (run_dir / "config.yaml").exists():
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return None, (run_dir / "checkpoint.pt").exists(), fresh


@contextlib.contextmanager
def _clean_failed_start(run_dir: Path, *, fresh: bool, lock: RunLock):
    """A run that fails before its first summary leaves no directory holding only config.yaml behind."""
    try:
        yield
    except BaseException:
        if fresh and lock.file is not None:
            (run_dir / "config.yaml").unlink(missing_ok=True)
            lock.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM (a scheduler or `kill` asking the run to stop) interrupts the loop like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise KeyboardInterrupt(signum)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def parameter_groups(net, weight_decay: float, *, decay_2d_only: bool):
    """The optimizer's parameters: one group, or with decay_2d_only and a weight decay nanoGPT's two groups
    (matrices and embeddings decayed, biases and norms not)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if not (decay_2d_only and weight_decay):
        return params
    return [{"params": [p for p in params if p.dim() >= 2]},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def _peak_memory(device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process peak RSS (Linux reports KiB)


@dataclass(frozen=True)
class RunContext:
    """What a run is and where it runs, fixed from its start to its end."""
    cfg: DictConfig
    where: RunId
    ranks: Ranks
    device: torch.device
    numerics: dict                 # the numerics settings a resume compares (rundir.numerics)


@dataclass
class RunFiles:
    """Rank 0's writers into the run directory (on other ranks they write nothing): the loop's Records."""
    metrics: MetricsLog
    mirror: LocalOnly | WandbMirror   # the W&B mirror of the files, or nothing
    step_losses: StepLosses
    main: bool

    def record(self, r: dict) -> None:
        if self.main:
            self.metrics.write(r)
            self.mirror.log(r)

    def step_loss(self, loss: float) -> None:
        self.step_losses.append(loss)


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


def run(cfg, *, on_phase=None) -> tuple[dict, Path, bool]:
    """Trains the configured run, or finds it finished; returns (summary, run directory, whether it trained now).
    `cfg` has passed salsa.train.schema.validate: the entry points (run.py, calibrate) check it once, before torch
    is imported. Under torchrun (WORLD_SIZE > 1) every rank calls it; only rank 0 writes files and mirrors to W&B.
    `on_phase`: the loop's phase hook (salsa.train.loop.no_hook; tests hand in fault injection there)."""
    check_compatible(cfg)
    check_optimizer(cfg)
    ranks, device = distributed.setup(cfg.trainer.device)
    distributed.check_batch_size(cfg.trainer.batch_size, ranks)
    where = identify(cfg)
    lock = RunLock(where.path)
    with _sigterm_raises():
        try:
            try:
                previous, resume, fresh = _on_rank0(ranks, lambda: _claim(cfg, where, lock))
            except OSError as e:
                raise fault(e, where.path) from None
            if previous:
                return previous, where.path, False
            with _clean_failed_start(where.path, fresh=fresh, lock=lock):
                try:
                    job = _start(RunContext(cfg, where, ranks, device, numerics(
                        device, precision=cfg.trainer.precision, world_size=ranks.world_size)), resume)
                except OSError as e:
                    raise fault(e, where.path) from None
            return job.train(on_phase or no_hook), where.path, True
        finally:
            lock.release()


@dataclass
class Job:
    """A started run: its summary is written, and train() ends it with a status: finished; failed (the loss
    diverged: terminal, the same command fails again); interrupted (a signal, a full disk, a crash: the same
    command resumes from the last checkpoint)."""
    context: RunContext
    data: Data
    state: TrainingState
    files: RunFiles

    def write_summary(self, status: str, final_loss=None, error=None, *, collective: bool = True) -> dict:
        ranks, run_dir = self.context.ranks, self.context.where.path
        summary = summarise(self.context, self.state.progress, status=status, totals=self.state.opt.totals(),
                            final_train_loss=final_loss, error=error, collective=collective)
        if ranks.main:
            if status == "finished":
                summary["files"] = vouch(run_dir)
            write_json(run_dir / "summary.json", summary)
            if status != "running":
                self.files.mirror.finish(summary)
        if collective:
            ranks.barrier()
        return summary

    def last_words(self, status: str, error: str) -> None:
        """The summary of a run that stops on an error (this rank alone may have it): best effort, since a full
        disk may refuse it too (then it still says "running" and the same command resumes)."""
        with contextlib.suppress(OSError):
            self.write_summary(status, error=error, collective=False)

    def save(self) -> None:
        self.files.step_losses.flush()  # before the checkpoint: the file always holds at least the checkpoint's steps
        c, s = self.context, self.state
        checkpoint.save(c.where.path / "checkpoint.pt", model=s.net, opt=s.opt, schedule=s.schedule,
                        progress=s.progress, config_hash=c.where.config_hash, numerics=c.numerics, ranks=c.ranks)

    def train(self, on_phase=no_hook) -> dict:
        c, s, tcfg = self.context, self.state, self.context.cfg.trainer
        checkpoints = Checkpoints(self.save, every=tcfg.checkpoint_every, interval_s=tcfg.checkpoint_interval_s,
                                  ranks=c.ranks)
        try:
            final_loss = train(s, self.data, tcfg, seed=c.cfg.seed, device=c.device, records=self.files,
                               checkpoints=checkpoints, ranks=c.ranks, on_phase=on_phase)
            return self.write_summary("finished", final_loss)  # a failure here leaves the final checkpoint to resume
        except NonFiniteError as e:
            try:
                self.files.step_losses.flush()
                self.write_summary("failed", error=str(e))
            except OSError as refused:
                raise fault(refused, c.where.path) from None
            raise UserError(f"run {c.where.path} failed: {e}") from e
        except KeyboardInterrupt as e:
            signum = e.args[0] if e.args and isinstance(e.args[0], int) else signal.SIGINT
            message = (f"stopped by {signal.Signals(signum).name} at step {s.progress.step}; run the same command "
                       "again to resume from the last checkpoint")
            self.last_words("interrupted", message)
            raise Interrupted(message, signum) from None
        except OSError as e:
            error = fault(e, c.where.path)
            self.last_words("interrupted", str(error))
            raise error from None
        except Exception as e:
            self.last_words("interrupted", f"{type(e).__name__}: {e}")
            raise


def _start(context: RunContext, resume: bool) -> Job:
    """Loads the data, builds the model and optimizer, resumes from the checkpoint and writes the "running" summary."""
    cfg, ranks, device, run_dir = context.cfg, context.ranks, context.device, context.where.path
    tcfg = cfg.trainer
    data = _on_rank0(ranks, lambda: DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=cfg.download,
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
        progress = _resume(run_dir / "checkpoint.pt", ranks, device, model=net, opt=opt, schedule=schedule,
                           config_hash=context.where.config_hash, numerics=context.numerics,
                           allow_numerics_change=tcfg.allow_numerics_change)
    files = RunFiles(MetricsLog(run_dir / "metrics.jsonl"),
                     LOGGERS[cfg.logger.name if ranks.main else "local"](cfg, run_dir, context.where.id),
                     StepLosses(run_dir if ranks.main else None), ranks.main)
    if ranks.main:
        files.metrics.keep_until(progress.step, progress.records)
        files.step_losses.keep_until(progress.step)
    job = Job(context, data, TrainingState(net, opt, schedule, progress, distributed.wrap(net, ranks, device)), files)
    job.write_summary("running")
    return job
