"""The optimizer catalogue: conf/optimizer/<name>.yaml, one entry per optimizer the harness runs.

An entry names its class (`_target_`, built with Hydra's instantiate) and describes itself for the tables:
`column` (the table column), `family` (FAMILIES) and `source` (SOURCES), and for a baseline `salsa_column`, the
SaLSa column it is compared with. Its other fields are the class's arguments. Read here as files (omegaconf only,
no torch): by the harness's validation, the analysis's column names and the benchmarks. How to add an entry:
docs/optimizers.md#adding-an-optimizer.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "conf" / "optimizer"
FAMILIES = ("baseline", "sls", "salsa")
SOURCES = ("torch", "paper", "release", "ours")   # torch.optim; the authors' AdamSLS as the table ran it; their release; ours
LABELS = ("column", "family", "source", "salsa_column")  # describe an entry; like `_target_`, not in the run id


class CatalogueError(ValueError):
    """An entry the catalogue cannot read."""


@dataclass(frozen=True)
class Entry:
    name: str
    target: str | None
    column: str
    family: str
    source: str
    salsa_column: str | None = None


def fields(path: Path) -> dict:
    """The entry's fields over those of the sibling entries its `defaults:` list names, in Hydra's order (`_self_`
    where the list has it, else last); interpolations are left as written (the baselines' lr comes from the data
    set)."""
    if not path.exists():
        raise CatalogueError(f"{path} not found")
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    defaults = own.pop("defaults", [])
    merged = {}
    for item in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        if item == "_self_":
            merged.update(own)
        elif isinstance(item, str) and "/" not in item and " " not in item:
            merged.update(fields(path.with_name(f"{item}.yaml")))
        else:
            raise CatalogueError(f"{path}: defaults entry {item!r}: an entry may only build on sibling entries")
    return merged


def read(path: Path) -> Entry:
    f = fields(path)
    name = str(f.get("name", path.stem))
    return Entry(name=name, target=f.get("_target_"), column=str(f.get("column", name)), family=str(f.get("family", "")),
                 source=str(f.get("source", "")), salsa_column=f.get("salsa_column"))


@cache
def catalogue() -> dict[str, Entry]:
    """Every entry by its `name` (the name a run's summary carries)."""
    entries = [read(path) for path in sorted(CATALOGUE_DIR.glob("*.yaml"))]
    return {entry.name: entry for entry in entries}
