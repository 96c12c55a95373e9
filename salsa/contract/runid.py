"""A run's identity: the sha256 of its resolved config, less the keys that cannot change its numbers, and its
directory <paths.runs>/<first 12 hex digits>. run.py, the sweep's plan and the failure callback all ask `identify`.
A table cell's runs share their config but for CELL_FREE: `cell_config` is what they share."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from salsa.contract.catalogue import LABELS

# Config keys that cannot change the numbers of a run, so they do not enter its id. The optimizer catalogue's
# labels and its `_target_` among them: the entry's name fixes its class and labels (the command line cannot set
# them, salsa/train/identity.py; schema.validate refuses another class), and the id, like every run id, does not
# follow the code of that class.
NOT_HASHED = ("paths", "logger", "download", "trainer.allow_numerics_change",
              *(f"optimizer.{key}" for key in ("_target_", *LABELS)))


# The largest seed: torch.manual_seed takes [-2**63, 2**64 - 1] (a negative seed is mapped onto a positive one, so
# seeds from 0 keep one run id per stream of random numbers); 2**53 is the largest of the integers a float64 holds
# exactly, as the analysis reads them (a column with a missing value turns float) and JSON readers elsewhere do.
LARGEST_SEED = 2**53

# The keys in which the runs of one table cell may differ: the seed, and the lr, which the analysis compares
# itself (a cell holds one; a tuning grid's runs differ in it, on one seed).
CELL_FREE = ("seed", "optimizer.lr")


def _less(config: dict, keys) -> dict:
    for key in keys:
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return config


def config_hash(cfg) -> str:
    resolved = _less(OmegaConf.to_container(cfg, resolve=True), NOT_HASHED)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def flat(node, prefix: str = "") -> dict:
    """A nested config as {dotted key: leaf value}."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {key: value for name, child in node.items() for key, value in flat(child, f"{prefix}{name}.").items()}


def cell_config(cfg) -> dict:
    """What the runs of a table cell share, as {dotted key: value}: the hashed config less CELL_FREE."""
    return flat(_less(OmegaConf.to_container(cfg, resolve=True), (*NOT_HASHED, *CELL_FREE)))


def cell_hash(config: dict) -> str:
    """The first 12 hex digits of the sha256 of a cell_config: equal for the runs of one cell."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunId:
    """A run's identity: the sha256 of its config (less NOT_HASHED) and its directory, <paths.runs>/<id>."""
    config_hash: str
    path: Path

    @property
    def id(self) -> str:
        return self.config_hash[:12]


def identify(cfg) -> RunId:
    full = config_hash(cfg)
    return RunId(full, Path(cfg.paths.runs) / full[:12])
