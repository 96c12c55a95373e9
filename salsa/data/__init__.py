"""Data set families, each registered by name in DATASETS (heavy libraries are imported inside the loaders)."""
from salsa.data import cifar, glue, imagenet, lm_text, offline, rotten_tomatoes  # noqa: F401  (they register themselves)
from salsa.data.registry import DATASETS
from salsa.data.splits import Data, TensorSplit, to_device

__all__ = ["DATASETS", "Data", "TensorSplit", "to_device"]
