"""The harness's entry: `run` checks a composed config, claims its run directory (ownership), builds the run
(build) and trains it as a Job, which ends it with a status in summary.json (summary); or finds it finished."""
from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path

from salsa.contract.files import CHECKPOINT
from salsa.contract.refusal import Fault, refusal
from salsa.contract.runid import identify
from salsa.contract.signals import pending, signals_held, stops_raise
from salsa.data import Data
from salsa.optim import NonFiniteError
from salsa.registry import UserError
from salsa.train import checkpoint, distributed
from salsa.train.build import RunContext, build
from salsa.train.distributed import on_rank0
from salsa.train.environment import numerics
from salsa.train.loop import Checkpoints, TrainingState, no_hook, train
from salsa.train.ownership import claim, clean_failed_start
from salsa.train.preflight import check_compatible, check_optimizer
from salsa.train.rundir import RunFiles, RunLock
from salsa.train.summary import write_summary


def run(cfg, *, on_phase=None, wait: bool = False) -> tuple[dict, Path, bool]:
    """Trains the configured run, or finds it finished; returns (summary, run directory, whether it trained now).
    `cfg` has passed salsa.train.schema.validate: the entry points (run.py, calibrate) check it once, before torch
    is imported. Under torchrun (WORLD_SIZE > 1) every rank calls it; only rank 0 writes files and mirrors to W&B.
    `on_phase`: the loop's phase hook (salsa.train.loop.no_hook; tests hand in fault injection there).
    `wait`: a run directory in use by another process is waited for (a sweep's runs: two identical sweeps then
    run each run once), instead of a UserError."""
    check_compatible(cfg)
    check_optimizer(cfg)
    ranks, device = distributed.setup(cfg.trainer.device)
    distributed.check_batch_size(cfg.trainer.batch_size, ranks)
    where = identify(cfg)
    lock = RunLock(where.path, wait=wait)
    with stops_raise():
        try:
            try:
                previous, resume, fresh = on_rank0(ranks, lambda: claim(cfg, where, lock))
            except OSError as e:
                raise fault(e, where.path) from None
            if previous:
                return previous, where.path, False
            with clean_failed_start(where.path, fresh=fresh, lock=lock):
                try:
                    context = RunContext(cfg, where, ranks, device, numerics(
                        device, precision=cfg.trainer.precision, world_size=ranks.world_size))
                    job = Job(context, *build(context, resume))
                    write_summary(context, job.state, job.files.mirror, "running")
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
    finished: bool = False   # summary.json says finished

    def train(self, on_phase=no_hook) -> dict:
        c, s, tcfg = self.context, self.state, self.context.cfg.trainer
        checkpoints = Checkpoints(self.save, every=tcfg.checkpoint_every, interval_s=tcfg.checkpoint_interval_s,
                                  ranks=c.ranks)
        try:
            final_loss = train(s, self.data, tcfg, seed=c.cfg.seed, device=c.device, files=self.files,
                               checkpoints=checkpoints, ranks=c.ranks, on_phase=on_phase)
            # a failure here leaves the final checkpoint to resume; a signal stops the process once the summary is whole
            with signals_held():
                summary = write_summary(c, s, self.files.mirror, "finished", final_loss)
                self.finished = True
            return summary
        except NonFiniteError as e:
            try:
                self.files.step_losses.flush()
                write_summary(c, s, self.files.mirror, "failed", error=str(e))
            except OSError as refused:
                raise fault(refused, c.where.path) from None
            raise UserError(f"run {c.where.path} failed: {e}") from e
        except KeyboardInterrupt as e:
            raise self.stopped(e.args[0] if e.args and isinstance(e.args[0], int) else signal.SIGINT) from None
        except OSError as e:
            error = fault(e, c.where.path)
            self.last_words("interrupted", str(error))
            raise error from None
        except Exception as e:
            if pending():  # a stop signal's KeyboardInterrupt that a library turned into its own error
                raise self.stopped(pending()) from None
            self.last_words("interrupted", f"{type(e).__name__}: {e}")
            raise

    def stopped(self, signum: int) -> Interrupted:
        """The run stopped by a signal: its summary says so (unless it has just said finished) and the line to print."""
        name, step = signal.Signals(signum).name, self.state.progress.step
        if self.finished:
            return Interrupted(f"stopped by {name} after the run finished at step {step} (summary.json says finished: "
                               "nothing to resume)", signum)
        message = f"stopped by {name} at step {step}; run the same command again to resume from the last checkpoint"
        self.last_words("interrupted", message)
        return Interrupted(message, signum)

    def last_words(self, status: str, error: str) -> None:
        """The summary of a run that stops on an error (this rank alone may have it): best effort, since a full
        disk may refuse it too (then it still says "running" and the same command resumes). A second stop signal
        meanwhile changes nothing: the run is stopping already."""
        with contextlib.suppress(OSError, KeyboardInterrupt), signals_held():
            write_summary(self.context, self.state, self.files.mirror, status, error=error, collective=False)

    def save(self) -> None:
        """The step losses and the checkpoint, as one write: a stop signal meanwhile is honoured once both are whole."""
        c, s = self.context, self.state
        with signals_held():
            self.files.step_losses.flush()  # before the checkpoint: the file always holds at least the checkpoint's steps
            checkpoint.write(c.where.path / CHECKPOINT, net=s.net, opt=s.opt, schedule=s.schedule,
                             progress=s.progress, config_hash=c.where.config_hash, numerics=c.numerics, ranks=c.ranks)


class Interrupted(UserError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM); its summary says "interrupted" and the same command resumes."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def fault(error: OSError, run_dir: Path) -> Fault:
    """One line: the file, the OS reason (its errno name and text) and the remedy."""
    return Fault(f"{refusal(error, run_dir)}, then run the same command again: it resumes from the last checkpoint")
