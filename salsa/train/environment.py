"""What a run records of where it ran: the numerics settings a resume compares, and the environment (versions,
hardware, git commit, command line) in summary.json."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

# Recorded in env.numerics but not compared on resume: their effect is torch_threads, which is compared.
RECORDED_ONLY = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
VERSIONED = ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "scikit-learn", "transformers",
             "datasets", "tokenizers", "mnist1d", "mlxtend", "wandb")


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
