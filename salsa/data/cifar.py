"""CIFAR-10/100 from the python-version pickle batches in torchvision's layout
(<paths.data>/<subdir>/cifar-10-batches-py/ or cifar-100-python/). The whole set lives on the training
device as uint8; crop+flip and normalisation run there per batch. Splits as the paper used them:
train = the 50,000 training images, val = the 10,000 test images (the paper's "validation"), no test.

A batch file is a pickle, so it is never read as one blindly: its md5 is checked against the one torchvision
publishes before anything is unpickled, and a file as large as a real batch (10,000 or 50,000 images) that does
not match is refused as damaged. A smaller file (local data in CIFAR's format, e.g. the tests' small files) is read
unverified, with a warning. Every file, verified or not, is unpickled by BatchUnpickler, which builds only what a
CIFAR batch holds (dicts, lists, bytes, text, numbers and numpy arrays) and refuses anything else, so a malicious
pickle runs no code and a garbage file is one line."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import torch

from salsa.contract.files import warn
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
IMAGE_BYTES = 3 * 32 * 32
IMAGES = {"train": 50000}  # images in a published batch file (CIFAR-100's train); every other file holds 10,000
# the only objects a CIFAR batch pickle names: numpy's array reconstruction (under numpy 1's and 2's module
# names) and, in protocol 2 pickles written by Python 3, bytes as _codecs.encode(text, "latin1")
ALLOWED = {("numpy.core.multiarray", "_reconstruct"): np.array(0).__reduce__()[0],
           ("numpy._core.multiarray", "_reconstruct"): np.array(0).__reduce__()[0],
           ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): __import__("_codecs").encode}


class BatchUnpickler(pickle.Unpickler):
    """Builds what a CIFAR batch holds and nothing else: any other global a pickle names is refused, unloaded."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds")
        return ALLOWED[(module, name)]


def _md5s(tv_class: str) -> dict[str, str]:
    """The md5 of every batch file as torchvision publishes it (its CIFAR10/CIFAR100 train_list and test_list)."""
    import torchvision

    dataset = getattr(torchvision.datasets, tv_class)
    return dict(dataset.train_list + dataset.test_list)


def read_batch(file: Path, label_key: bytes, md5: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """One batch file's images and labels, and whether it is the published file; a UserError naming the file and
    what to do when it is not a batch."""
    again = f"delete {file} and download it again (download=true) or unpack the CIFAR archive again"
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):  # a device or FIFO would never end
            raise UserError(f"{file} is not a plain file; {again}")
        data = file.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {file} ({e.strerror}); {again}") from None
    published = hashlib.md5(data).hexdigest() == md5
    if not published and len(data) >= IMAGES.get(file.name, 10000) * IMAGE_BYTES:  # checked before it is unpickled
        raise UserError(f"{file} does not match the md5 torchvision publishes for it ({md5}): it is damaged or not "
                        f"CIFAR's; {again}")
    try:
        entry = BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
        x = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(entry[label_key], dtype=np.int64).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"{len(x)} images but {len(y)} labels")
    except Exception as e:  # noqa: BLE001 - whatever a file that is not a batch raises, it is that file's damage
        raise UserError(f"{file} is not a CIFAR batch ({type(e).__name__}: {str(e)[:120]}); {again}") from None
    return x, y, published


def read_batches(files: list[Path], label_key: bytes, md5s: dict[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys, published = zip(*(read_batch(file, label_key, md5s[file.name]) for file in files))
    if not all(published):
        warn(f"{files[0].parent}: {published.count(False)} of {len(files)} files are not the published CIFAR batches "
             "(smaller than one): read as local data, unverified")
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
    md5s = _md5s(tv_class)
    x_train, y_train = read_batches([root / folder / f for f in train_files], label_key, md5s)
    x_test, y_test = read_batches([root / folder / f for f in test_files], label_key, md5s)
    normalize = _normalizer(cfg.name)
    augment = (lambda x, g: crop_flip(x, g, cfg.crop_padding)) if cfg.augment else None
    return Data(TensorSplit(x_train, y_train, normalize, augment), TensorSplit(x_test, y_test, normalize), None,
                kind="image", num_classes=cfg.num_classes, input_shape=(3, 32, 32))


DATASETS.register("cifar10", load_cifar)
DATASETS.register("cifar100", load_cifar)
