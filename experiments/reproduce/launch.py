"""One cartesian block of runs -> one `python run.py --multirun` through the grid's Hydra launcher."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .grid import REPO


def command(block: list[str], grid, sweep_dir: Path, launcher: str, jobs: int | None) -> list[str]:
    args = [sys.executable, str(REPO / "run.py"), "--multirun", f"hydra/launcher={launcher}",
            f"hydra.sweep.dir={sweep_dir}", f"paths.root={grid.root.resolve()}", *block]
    if jobs is not None and launcher == "local":
        args.append(f"hydra.launcher.n_jobs={jobs}")
    return args


def sweep_dir(grid, stage: str, number: int) -> Path:
    return grid.root.resolve() / "sweeps" / f"{time.strftime('%Y%m%d-%H%M%S')}-{stage}-{number}"


def run(args: list[str], grid) -> int:
    """Streams the multirun's output; returns its exit status (non-zero when any of its runs failed)."""
    env = {**os.environ, **grid.env}
    return subprocess.run(args, cwd=REPO, env=env).returncode
