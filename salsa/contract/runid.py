"""A run's identity: the sha256 of its resolved config, less the keys that cannot change its numbers, and its
directory <paths.runs>/<first 12 hex digits>. run.py, the sweep's plan and the failure callback all ask `identify`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from salsa.contract.catalogue import LABELS

# Config keys that cannot change the numbers of a run, so they do not enter its id. The optimizer catalogue's
# labels and its `_target_` among them: the entry's name fixes its class (schema.validate refuses another), and
# the id, like every run id, does not follow the code of that class.
NOT_HASHED = ("paths", "logger", "download", "trainer.allow_numerics_change",
              *(f"optimizer.{key}" for key in ("_target_", *LABELS)))


def config_hash(cfg) -> str:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_HASHED:
        *parents, leaf = key.split(".")
        node = resolved
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


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
