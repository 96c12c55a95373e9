"""CIFAR-10/100 from the python-version pickle batches in torchvision's layout
(<paths.data>/<subdir>/cifar-10-batches-py/ or cifar-100-python/). The whole set lives on the training
device as uint8; crop+flip and normalisation run there per batch. Splits as the paper used them:
train = the 50,000 training images, val = the 10,000 test images (the paper's "validation"), no test."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from salsa.data.augment import crop_flip
from salsa.data.registry import DATASETS
from salsa.data.splits import Data, TensorSplit
from salsa.registry import UserError

MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
LAYOUT = {  # folder, training files, test files, label key, torchvision class
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", "CIFAR10"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", "CIFAR100"),
}


def read_batches(files: list[Path], label_key: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for file in files:
        with open(file, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(entry[label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _normalizer(name: str):
    mean, std = torch.tensor(MEAN[name]).view(1, 3, 1, 1), torch.tensor(STD[name]).view(1, 3, 1, 1)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - mean.to(x.device)) / std.to(x.device)
    return normalize


def load_cifar(cfg, *, data_root: Path, download: bool, **_) -> Data:
    folder, train_files, test_files, label_key, tv_class = LAYOUT[cfg.name]
    root = data_root / cfg.subdir
    missing = [f for f in train_files + test_files if not (root / folder / f).is_file()]
    where = (f"unpack the CIFAR python-version archive ({tv_class.lower().replace('cifar', 'cifar-')}-python.tar.gz) so that "
             f"{root / folder} holds its files, or point paths.data=<dir> at the folder that holds {cfg.subdir}/")
    if missing and download:
        import torchvision

        try:
            getattr(torchvision.datasets, tv_class)(str(root), download=True)
        except OSError as e:  # no network (URLError), a refused connection, a full disk
            raise UserError(f"{cfg.name} is not at {root / folder} and could not be downloaded ({e}). On a machine without "
                            f"internet, {where}.") from e
    elif missing:
        raise UserError(f"{cfg.name} is not at {root / folder} (missing {', '.join(missing)}) and download=false: "
                        f"{where}, or run with download=true where there is internet.")
    x_train, y_train = read_batches([root / folder / f for f in train_files], label_key)
    x_test, y_test = read_batches([root / folder / f for f in test_files], label_key)
    normalize = _normalizer(cfg.name)
    augment = (lambda x, g: crop_flip(x, g, cfg.crop_padding)) if cfg.augment else None
    return Data(TensorSplit(x_train, y_train, normalize, augment), TensorSplit(x_test, y_test, normalize), None,
                kind="image", num_classes=cfg.num_classes, input_shape=(3, 32, 32))


DATASETS.register("cifar10", load_cifar)
DATASETS.register("cifar100", load_cifar)
