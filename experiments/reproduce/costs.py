"""Measured step costs: the cost files under results/calibration/ (`make calibrate` writes them, one per machine) and
the key that matches a planned run to a measurement. A run whose key has no measurement keeps the grid's assumed cost."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from .grid import REPO

CALIBRATION = REPO / "results" / "calibration"
# What sets a step's cost besides the machine: the data (shapes, sequence lengths), the model, the batch and its
# micro-batches, the numerics and the optimizer. Epochs, seeds and learning rates do not.
KEY = ("dataset", "model", "batch_size", "micro_batches", "precision", "compile", "channels_last", "optimizer")


def key(cfg) -> dict:
    t = cfg.trainer
    return {"dataset": cfg.dataset.name, "model": cfg.model.name, "batch_size": t.batch_size, "micro_batches": t.micro_batches,
            "precision": t.precision, "compile": t.compile, "channels_last": t.channels_last, "optimizer": cfg.optimizer.name}


def machine() -> str:
    """The accelerator a run on this machine trains on: the GPU's name, else the CPU and its cores."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.machine()}, {os.cpu_count()} cores"


@dataclass(frozen=True)
class Measured:
    step_s: float                 # seconds per optimizer step (evaluation included when includes_eval)
    device: str
    date: str                     # ISO date of the measurement
    torch: str
    includes_eval: bool
    source: str                   # the file it came from, relative to the repository

    def label(self) -> str:
        return f"measured on {self.device} {self.date[:10]}"

    def describe(self) -> str:
        return (f"measured on {self.device} ({self.source}, {self.date[:10]}, torch {self.torch}, "
                f"{'evaluation included' if self.includes_eval else 'training steps only'})")


def load(folder: Path = CALIBRATION) -> list[tuple[dict, Measured]]:
    """Every entry of every cost file as (key, Measured)."""
    pairs = []
    for path in sorted(folder.glob("*.json")):
        for e in json.loads(path.read_text(encoding="utf-8"))["entries"]:
            shown = path.relative_to(REPO) if REPO in path.parents else path
            pairs.append((e["key"], Measured(e["step_s"], e["device"], e["date"], e["torch"], e["includes_eval"], str(shown))))
    return pairs


class Costs:
    """The measurements a plan uses: for a key, the one made on this machine, else the newest."""

    def __init__(self, pairs: list, here: str | None = None):
        self.pairs, self.here = pairs, here

    def lookup(self, k: dict) -> Measured | None:
        found = [m for kk, m in self.pairs if kk == k]
        return max(found, key=lambda m: (m.device == self.here, m.date), default=None)

    def on_this_machine(self, k: dict) -> Measured | None:
        m = self.lookup(k)
        return m if m is not None and m.device == self.here else None
