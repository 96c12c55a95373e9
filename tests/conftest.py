"""Every test runs offline: no W&B uploads, no Hugging Face hub, and every other download (torchvision's CIFAR,
on by default in run.py) goes to a closed port on this machine, so it fails at once without touching the network."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# offline: W&B and the HF hub by their switches; any other download through a proxy on a closed local port
for name, value in {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
    os.environ.setdefault(name, value)
os.environ.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="127.0.0.1,localhost")


@pytest.fixture(scope="session")
def wandb_offline_runs(tmp_path_factory) -> Path:
    """paths.root of two runs (seeds 0, 1) made by `run.py logger=wandb` with WANDB_MODE=offline: each run
    directory holds its W&B offline run under wandb/. logger.mode stays online: the environment wins."""
    root = tmp_path_factory.mktemp("wandb_runs")
    from tests.wandb_offline import subprocess_env
    env = subprocess_env(WANDB_MODE="offline", WANDB_PROJECT="salsa-test", WANDB_DIR=str(root),
                         WANDB_CONFIG_DIR=str(root / "wandb-config"), WANDB_CACHE_DIR=str(root / "wandb-cache"))
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "--multirun", "seed=0,1", "logger=wandb", "trainer.epochs=2",
                          f"paths.root={root}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return root
