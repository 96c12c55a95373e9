"""One cartesian block of runs -> one `python run.py --multirun` through the grid's Hydra launcher."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from .grid import REPO


def command(block: list[str], grid, sweep_dir: Path, launcher: str, jobs: int | None, slurm: dict) -> list[str]:
    """slurm: hydra.launcher settings of a SLURM launcher (the grid's, then --slurm's)."""
    args = [sys.executable, str(REPO / "run.py"), "--multirun", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={sweep_dir}", f"paths.root={grid.root.resolve()}", *block]
    if jobs is not None and launcher == "local":
        args.append(f"hydra.launcher.n_jobs={jobs}")
    if is_slurm(launcher):
        args += [f"hydra.launcher.{key}={value}" for key, value in slurm.items()]
    return args


def is_slurm(launcher: str) -> bool:
    return launcher.startswith("slurm")


def slurm_keys() -> set[str]:
    """The settings of hydra-submitit-launcher's SLURM config (hydra.launcher.<key>)."""
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    return {f.name for f in dataclasses.fields(SlurmQueueConf)} - {"_target_"}


def sweep_dir(grid, stage: str, number: int) -> Path:
    return grid.root.resolve() / "sweeps" / f"{time.strftime('%Y%m%d-%H%M%S')}-{stage}-{number}"


def start(args: list[str], grid) -> subprocess.Popen:
    """The multirun, its output streamed; its exit status is non-zero when any of its runs failed."""
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, **grid.env})
