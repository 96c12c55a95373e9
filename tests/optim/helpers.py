"""Small models and data shared by the optimizer tests."""
import pytest
import torch
from torch import nn

from experiments.overhead.release import load_release


def make_mlp(seed: int = 0, dropout: float = 0.0, batchnorm: bool = False, width: int = 32) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(8, width)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(width))
    layers += [nn.Tanh(), nn.Dropout(dropout), nn.Linear(width, 3)]
    return nn.Sequential(*layers)


def batches(n: int, seed: int = 1, size: int = 16):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 8, generator=g), torch.randint(0, 3, (size,), generator=g)) for _ in range(n)]


def train(model: nn.Module, opt, data) -> list[float]:
    losses = []
    for x, y in data:
        losses.append(opt.step(lambda: nn.functional.cross_entropy(model(x), y)).item())
    return losses


def load_release_or_skip(tmp_path):
    """The authors' release (experiments/overhead/release.py), or a skip saying how to get its wheel."""
    try:
        return load_release(tmp_path)
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
