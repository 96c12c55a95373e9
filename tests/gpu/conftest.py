"""The CUDA tests (`make test-gpu`; at most 8 minutes on one GPU). Without CUDA every test here is skipped at
collection with the reason, before anything is built, so `make test` passes through them at once. `--device cpu` runs
the same tests on the CPU (`make gpu-checks DEVICE=cpu SMOKE=1`: the checks' own smoke run), with gloo for NCCL.
`device` is the device fixture (it skips too, for a test run on its own); `data_root` holds tiny files in the real
formats of every paper data set (tests/realformat.py). Nothing here needs wandb, datasets or submitit: a test that
does skips."""
import os

os.environ.update(WANDB_MODE="disabled", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  TOKENIZERS_PARALLELISM="false")

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.realformat import REPO, write_all

HERE = Path(__file__).resolve().parent
NO_CUDA = "no CUDA device (torch.cuda.is_available() is False): tests/gpu runs where a GPU is (make test-gpu)"


def pytest_addoption(parser):
    parser.addoption("--device", default="cuda", choices=("cuda", "cpu"), help="tests/gpu's device (default cuda)")


def chosen(config) -> torch.device:
    return torch.device(config.getoption("--device", default="cuda"))


def pytest_collection_modifyitems(config, items):
    if chosen(config).type == "cpu" or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture
def device(request) -> torch.device:
    device = chosen(request.config)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    return device


def need(module: str, why: str) -> None:
    """Skips with the reason when `module` is not installed (the GPU image lacks datasets, wandb and submitit)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed here: {why}")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return write_all(tmp_path_factory.mktemp("data"))


@pytest.fixture
def compose():
    """Composes the real conf/ with the given overrides."""
    need("hydra", "the harness composes its configs with Hydra")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def call(*overrides: str):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return hydra_compose("config", overrides=list(overrides))
    return call
