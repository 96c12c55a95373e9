"""The training side's writers into the run directory (docs/run-directory.md; the file names and rules are
salsa.contract's): its lock, the metrics log, the step losses, and RunFiles, the loop's writers on rank 0."""
from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from salsa.contract.files import LOCK, STEP_LOSSES, atomic_write, check_plain, named, open_plain, read_plain, warn
from salsa.contract.signals import signals_held
from salsa.registry import UserError
from salsa.train.loggers import LocalOnly, WandbMirror


def append(path: Path, data: bytes) -> None:
    """Appends data to path (a plain file: never through a link); an OSError (a full disk, a file-size limit)
    names path. A stop signal meanwhile is honoured once the data are written (salsa.contract.signals)."""
    try:
        with signals_held(), open_plain(path, "ab") as f:
            f.write(data)
    except OSError as e:
        raise named(e, path) from None


class RunLock:
    """One owner per run directory: an flock on <run dir>/.lock. The kernel releases it when the process ends, so a
    killed run leaves no stale lock; the file names the last owner for the message a second command prints.
    wait: a lock held by another process is waited for, with one line saying so (the runs of a sweep started twice)."""

    def __init__(self, run_dir: Path, *, wait: bool = False):
        self.path, self.file, self.wait = run_dir / LOCK, None, wait

    def acquire(self) -> None:
        f = open_plain(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            if self.wait:
                warn(f"run directory {self.path.parent} is in use by {owner} (same config and seed): waiting for it to finish")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX)
                except BaseException:
                    f.close()
                    raise
                if not os.path.samestat(os.fstat(f.fileno()), os.stat(self.path)):  # its start failed: lock removed
                    f.close()
                    return self.acquire()
                return self._own(f)
            f.close()
            raise UserError(f"run directory {self.path.parent} is in use by {owner} (same config and seed); wait for "
                            "it to finish (then this command has nothing to do) or stop that process and run again") from None
        self._own(f)

    def _own(self, f) -> None:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now().isoformat(timespec='seconds')}\n")
        f.flush()
        self.file = f

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class MetricsLog:
    """metrics.jsonl: one record per line, flushed as written."""

    def __init__(self, path: Path):
        self.path = path

    def keep_until(self, step: int, records: int | None) -> None:
        """Keep the first `records` lines (those written before the last checkpoint) so a resumed run appends
        exactly what an uninterrupted one would have written (checkpoints without that count: the records up
        to `step`); a torn last line goes too."""
        if not check_plain(self.path):
            return
        kept = []
        for line in read_plain(self.path).decode("utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if len(kept) == records or (records is None and (record["step"] > step or record["kind"] == "final")):
                break
            kept.append(line + "\n")
        atomic_write(self.path, lambda f: f.write("".join(kept)))

    def write(self, record: dict) -> None:
        append(self.path, (json.dumps(record, allow_nan=False) + "\n").encode())


class StepLosses:
    """train_loss.f32: the training-mode mini-batch loss of every step, as the optimizer's step returned it (the
    curve the authors logged), one little-endian float32 per step (4 bytes a step). Appended before every
    checkpoint, so after a resume the file is cut back to the checkpoint's step and continues from there."""

    def __init__(self, run_dir: Path | None):
        self.path, self._pending = None if run_dir is None else run_dir / STEP_LOSSES, []

    def append(self, loss: float) -> None:
        if self.path is not None:
            self._pending.append(loss)

    def flush(self) -> None:
        if self._pending:
            # not ndarray.tofile: past a file-size limit it writes part of the data and raises nothing
            append(self.path, np.asarray(self._pending, dtype="<f4").tobytes())
            self._pending.clear()

    def keep_until(self, step: int) -> None:
        if self.path is not None and check_plain(self.path) and self.path.stat().st_size > 4 * step:
            with open_plain(self.path, "r+b") as f:
                f.truncate(4 * step)
        self._pending.clear()


@dataclass
class RunFiles:
    """Rank 0's writers into the run directory (on other ranks they write nothing): the loop's RecordFiles."""
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
