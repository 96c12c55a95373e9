"""The run directory (docs/run-directory.md): its id, atomic JSON, the metrics log, the environment record."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

# Config keys that cannot change the numbers of a run, so they do not enter its id.
NOT_HASHED = ("paths", "logger", "download")
VERSIONED = ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "scikit-learn", "transformers",
             "datasets", "tokenizers", "mnist1d", "mlxtend", "wandb")


def config_hash(cfg) -> str:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_HASHED:
        resolved.pop(key, None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def write_json(path: Path, obj) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


class MetricsLog:
    """metrics.jsonl: one record per line, flushed as written."""

    def __init__(self, path: Path):
        self.path = path

    def keep_until(self, step: int) -> None:
        """Drop the records written after `step` (the last checkpoint) so a resumed run appends exactly
        what an uninterrupted one would have written; a torn last line goes too."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if record["step"] > step or record["kind"] == "final":
                break
            kept.append(line + "\n")
        tmp = self.path.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")


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
            with open(self.path, "ab") as f:
                np.asarray(self._pending, dtype="<f4").tofile(f)
            self._pending.clear()

    def keep_until(self, step: int) -> None:
        if self.path is not None and self.path.exists() and self.path.stat().st_size > 4 * step:
            os.truncate(self.path, 4 * step)
        self._pending.clear()


def _git(*args: str) -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


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
