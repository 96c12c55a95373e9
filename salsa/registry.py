"""Name -> builder tables: one per config group built in code (dataset, model, logger), where each option
conf/<group>/<name>.yaml has exactly one entry, and for named values inside a config (a schedule's `name`, a
tokenizer). Optimizers have no table: an optimizer entry names its class itself (`_target_`, the catalogue)."""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Bad input from the user (config, data, paths) or a fault the user must fix (full disk): run.py prints the
    message, no traceback, and exits with exit_code."""
    exit_code = 2


class Registry(Generic[T]):
    def __init__(self, group: str):
        self.group = group
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None):
        """`REG.register("x", obj)` or `@REG.register("x")` over a function."""
        def add(value: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.group} {name!r} is registered twice")
            self._entries[name] = value
            return value
        return add if entry is None else add(entry)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise KeyError(f"unknown {self.group} {name!r}; known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

