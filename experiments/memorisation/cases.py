"""Memorisation cases: tiny models that drive the training loss of a small fixed data set to ~0 and keep going.

Each case is a model, a fixed list of mini-batches of real data (sklearn's digits) cycled in order, and the
loss (cross entropy). Used by the long benchmark (experiments/memorisation/bench.py) and, with fewer steps,
by tests/optim/test_memorisation.py.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from torch import nn

EXAMPLES, BATCH = 256, 32  # 8 fixed mini-batches: every model here memorises them in a few hundred steps


@dataclass(frozen=True)
class Case:
    name: str
    model: nn.Module
    batches: list[tuple[torch.Tensor, torch.Tensor]]

    def loss(self, step: int) -> torch.Tensor:
        """The mini-batch loss of the given step (0-based), batches cycled in order."""
        x, y = self.batches[step % len(self.batches)]
        return nn.functional.cross_entropy(self.model(x), y)


class Transformer(nn.Module):
    """The 8 rows of a digit as 8 tokens; a 2-layer pre-norm encoder, no dropout (deterministic)."""

    def __init__(self, width: int = 32, layers: int = 2):
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.position = nn.Parameter(torch.zeros(8, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x.view(-1, 8, 8)) + self.position).mean(1))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "mlp": lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
    "cnn_bn": lambda: nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 16, 10),
    ),
    "transformer": Transformer,
}


def digits_batches(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    features, labels = load_digits(return_X_y=True)
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:EXAMPLES]
    x = torch.tensor(features / 16.0, dtype=torch.float32)[chosen]
    y = torch.tensor(labels)[chosen]
    return list(zip(x.split(BATCH), y.split(BATCH)))


def make_case(name: str, seed: int) -> Case:
    """The model (initialised from `seed`) and the data (a subset drawn from `seed`) of one case."""
    if name not in MODELS:
        raise ValueError(f"unknown memorisation case {name!r}; the cases are {', '.join(MODELS)}")
    torch.manual_seed(seed)
    return Case(name, MODELS[name](), digits_batches(seed))
