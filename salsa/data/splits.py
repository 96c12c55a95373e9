"""What every data set returns: splits that yield (x, y) batches in a seeded order that a resumed run
can re-enter at any batch (the order of epoch e depends only on (seed, e), never on earlier draws)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

Batch = tuple["torch.Tensor | dict[str, torch.Tensor]", torch.Tensor]


def mix(*values: int) -> int:
    """A 63-bit seed from integers (seed, epoch, batch): independent streams, no arithmetic collisions."""
    digest = hashlib.sha256(",".join(map(str, values)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def rank_share(n: int, rank: int, world_size: int) -> slice:
    """The contiguous, balanced part of n items that rank `rank` of `world_size` takes (sizes differ by at most 1)."""
    return slice(n * rank // world_size, n * (rank + 1) // world_size)


def to_device(x, device, dtype: torch.dtype | None = None):
    """x (a tensor or a dict of tensors) on `device`; floating-point tensors also cast to `dtype` if given."""
    if isinstance(x, dict):
        return {k: to_device(v, device, dtype) for k, v in x.items()}
    return x.to(device, dtype=dtype if x.is_floating_point() else None, non_blocking=True)


def _index(x, idx):
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


class TensorSplit:
    """A split held as tensors (on the training device once `.to()` was called).

    `augment(x, generator)` runs on whole training batches (before `transform`) with a generator seeded
    by (seed, epoch, batch index); `transform(x)` (e.g. uint8 -> normalised float) runs on every batch.
    """

    def __init__(self, x, y: torch.Tensor, transform: Callable | None = None, augment: Callable | None = None):
        self.x, self.y, self.transform, self.augment = x, y, transform, augment

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> TensorSplit:
        return type(self)(to_device(self.x, device), self.y.to(device), self.transform, self.augment)

    def take(self, n: int) -> TensorSplit:
        return type(self)(_index(self.x, slice(0, n)), self.y[:n], self.transform, self.augment)

    def gather(self, idx: torch.Tensor) -> Batch:
        return _index(self.x, idx), self.y[idx]

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int, *, train: bool = False, seed: int = 0, epoch: int = 0,
                start: int = 0, rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
        """Training batches are a fresh permutation per epoch, with augmentation; others in order.

        With world_size > 1, batch_size is the global batch and this yields rank `rank`'s share of each
        (`rank_share`; a rank whose share is empty skips that batch). Augmentation runs on the whole global
        batch on every rank, so the examples, their crops and flips are those of a single process."""
        n = len(self)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(mix(seed, epoch))) if train else torch.arange(n)
        device = self.y.device
        for i in range(start, self.num_batches(batch_size)):
            idx = order[i * batch_size:(i + 1) * batch_size]
            share = rank_share(len(idx), rank, world_size)
            if share.start == share.stop:
                continue
            augment = train and self.augment is not None
            x, y = self.gather((idx if augment else idx[share]).to(device))
            if augment:
                x = _index(self.augment(x, torch.Generator(device).manual_seed(mix(seed, epoch, i))), share)
                y = y[share]
            yield (self.transform(x) if self.transform else x), y


@dataclass
class Data:
    """A data set as the runner sees it. `kind` decides which models accept it: image (C, H, W),
    vector (D,), text (token ids with attention mask) or lm (next-token prediction)."""
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit | None
    kind: str
    num_classes: int
    input_shape: tuple[int, ...]
    extra: dict = field(default_factory=dict)  # e.g. vocab_size, pad_id for text

    def take(self, n: int | None) -> Data:
        """At most n examples per split (smoke tests)."""
        if n is None:
            return self
        def cut(s):
            return None if s is None else (s.take(n) if len(s) > n else s)

        return Data(cut(self.train), cut(self.val), cut(self.test), self.kind, self.num_classes,
                    self.input_shape, self.extra)


def split_indices(n: int, fractions: tuple[float, ...], split_seed: int) -> list[torch.Tensor]:
    """Disjoint random index sets of the given fractions (the rest goes to the first), fixed by split_seed
    so that the split does not change with the run's seed."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(mix(split_seed, n)))
    sizes = [int(round(f * n)) for f in fractions[1:]]
    first = n - sum(sizes)
    bounds = [0, first]
    for s in sizes:
        bounds.append(bounds[-1] + s)
    return [order[a:b].sort().values for a, b in zip(bounds[:-1], bounds[1:])]
