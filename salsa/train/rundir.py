"""The run directory (docs/run-directory.md): its id, its lock, atomic JSON, damaged files moved aside, the metrics
log, the environment and numerics record."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from salsa.catalogue import LABELS
from salsa.registry import UserError

# Config keys that cannot change the numbers of a run, so they do not enter its id. The optimizer catalogue's
# labels and its `_target_` among them: the entry's name fixes its class (schema.validate refuses another), and
# the id, like every run id, does not follow the code of that class.
NOT_HASHED = ("paths", "logger", "download", "trainer.allow_numerics_change",
              *(f"optimizer.{key}" for key in ("_target_", *LABELS)))
# Recorded in env.numerics but not compared on resume: their effect is torch_threads, which is compared.
RECORDED_ONLY = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
VERSIONED = ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "scikit-learn", "transformers",
             "datasets", "tokenizers", "mnist1d", "mlxtend", "wandb")


def config_hash(cfg) -> str:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_HASHED:
        *parents, leaf = key.split(".")
        node = resolved
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RunId:
    """A run's identity: the sha256 of its config (less NOT_HASHED) and its directory, <paths.runs>/<id>."""
    config_hash: str
    path: Path

    @property
    def id(self) -> str:
        return self.config_hash[:12]


def identify(cfg) -> RunId:
    full = config_hash(cfg)
    return RunId(full, Path(cfg.paths.runs) / full[:12])


def named(error: OSError, path: Path) -> OSError:
    """The error with the file it concerns (a failed write() carries no file name, a failed open() the temporary one)."""
    error.filename = str(path)
    return error


def atomic_write(path: Path, write, *, binary: bool = False) -> None:
    """write(file) into a temporary file, then os.replace: a reader sees the old file or the new one, never half
    of one; a failed write (an OSError with its errno, e.g. ENOSPC, naming `path`) leaves the old file and no
    temporary one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise named(e, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append(path: Path, data: bytes) -> None:
    """Appends data to path; an OSError (a full disk, a file-size limit) names path."""
    try:
        with open(path, "ab") as f:
            f.write(data)
    except OSError as e:
        raise named(e, path) from None


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, allow_nan=False))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def move_aside(path: Path) -> Path:
    """Renames a damaged file to <name>.corrupt.<n> (the first free n): kept for a person to look at, never deleted."""
    n = 1
    while (aside := path.with_name(f"{path.name}.corrupt.{n}")).exists():
        n += 1
    os.replace(path, aside)
    return aside


def read_summary(path: Path) -> dict | None:
    """summary.json, or None when there is none; a damaged one is moved aside (the run then writes a new one)."""
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        problem = None if isinstance(summary, dict) and "status" in summary else "not a summary: no status"
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problem = f"not valid JSON: {e}"
    if problem is None:
        return summary
    aside = move_aside(path)
    warn(f"{path} is damaged ({problem}); moved aside to {aside.name}. The run goes on from its checkpoint "
         "(or from the start) and writes a new summary.json; delete the .corrupt file when you no longer need it.")
    return None


class RunLock:
    """One owner per run directory: an flock on <run dir>/.lock. The kernel releases it when the process ends, so a
    killed run leaves no stale lock; the file names the last owner for the message a second command prints."""

    def __init__(self, run_dir: Path):
        self.path, self.file = run_dir / ".lock", None

    def acquire(self) -> None:
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise UserError(f"run directory {self.path.parent} is in use by {owner} (same config and seed); wait for "
                            "it to finish (then this command has nothing to do) or stop that process and run again") from None
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

    def records(self) -> int:
        """The whole JSON lines at the start of the file (a torn last line is not one)."""
        if not self.path.exists():
            return 0
        count = 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                json.loads(line)
            except json.JSONDecodeError:
                break
            count += 1
        return count

    def keep_until(self, step: int, records: int | None) -> None:
        """Keep the first `records` lines (those written before the last checkpoint) so a resumed run appends
        exactly what an uninterrupted one would have written (checkpoints without that count: the records up
        to `step`); a torn last line goes too."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
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

    FILE = "train_loss.f32"

    def __init__(self, run_dir: Path | None):
        self.path, self._pending = None if run_dir is None else run_dir / self.FILE, []

    def append(self, loss: float) -> None:
        if self.path is not None:
            self._pending.append(loss)

    def flush(self) -> None:
        if self._pending:
            # not ndarray.tofile: past a file-size limit it writes part of the data and raises nothing
            append(self.path, np.asarray(self._pending, dtype="<f4").tobytes())
            self._pending.clear()

    def keep_until(self, step: int) -> None:
        if self.path is not None and self.path.exists() and self.path.stat().st_size > 4 * step:
            os.truncate(self.path, 4 * step)
        self._pending.clear()


def shortfalls(run_dir: Path, *, step: int, records: int | None) -> dict[str, str]:
    """file name -> what it lacks of a checkpoint at `step` that counted `records` lines of metrics.jsonl (None:
    a checkpoint from before they were counted)."""
    short = {}
    lines = MetricsLog(run_dir / "metrics.jsonl").records()
    if records is not None and lines < records:
        short["metrics.jsonl"] = f"metrics.jsonl has {lines} records where the checkpoint counts {records}"
    losses = run_dir / StepLosses.FILE
    saved = losses.stat().st_size // 4 if losses.exists() else 0
    if saved < step:
        short[StepLosses.FILE] = f"{StepLosses.FILE} has {saved} steps' losses where the checkpoint counts {step}"
    return short


def _git(*args: str) -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def numerics(device: torch.device, *, precision: str, world_size: int) -> dict:
    """The settings outside the config that can change a run's numbers (kernels, summation order): recorded in
    summary.json and in every checkpoint, compared when a run resumes (checkpoint.check_numerics)."""
    settings = {
        "torch": str(torch.__version__), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(), "precision": precision, "world_size": world_size,
    }
    if device.type == "cuda":
        settings.update(cudnn_deterministic=torch.backends.cudnn.deterministic, cudnn_benchmark=torch.backends.cudnn.benchmark,
                        cudnn_allow_tf32=torch.backends.cudnn.allow_tf32)
    return {**settings, **{name: os.environ.get(name) for name in RECORDED_ONLY}}


def environment(device: torch.device) -> dict:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    hardware = f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    if device.type == "cuda":
        hardware += f"; gpu: {torch.cuda.get_device_name(device)}"
    status = _git("status", "--porcelain", "--untracked-files=no")
    # in the container (no .git) the commit comes from the image: docker build --build-arg GIT_COMMIT=...
    commit = _git("rev-parse", "HEAD") or os.environ.get("SALSA_GIT_COMMIT")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status),
            "versions": versions, "hardware": hardware, "argv": sys.argv}
