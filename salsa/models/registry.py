"""MODELS: name -> ModelEntry(build(cfg, data) -> nn.Module mapping a batch's x to logits, accepted data kinds)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from salsa.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    build: Callable
    accepts: frozenset[str]  # data kinds: image, vector, text, lm


MODELS: Registry[ModelEntry] = Registry("model")


def register(name: str, accepts: set[str]):
    def add(build: Callable) -> Callable:
        MODELS.register(name, ModelEntry(build, frozenset(accepts)))
        return build
    return add
