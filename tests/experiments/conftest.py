import os
from pathlib import Path

import pytest

for name, value in {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}.items():
    os.environ.setdefault(name, value)

TINY = Path(__file__).with_name("tiny_grid.yaml")


@pytest.fixture
def run_cli(capsys):
    """Runs `python -m experiments.reproduce ARGS` in this process; returns (exit status, stdout, stderr)."""
    from experiments.reproduce.cli import main

    def call(*args):
        status = main([str(a) for a in args])
        out = capsys.readouterr()
        return status, out.out, out.err
    return call
