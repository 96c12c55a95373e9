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

CATALOGUE_DIR = Path(__file__).resolve().parents[1] / "conf" / "optimizer"
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


def _fields(path: Path) -> dict:
    """The entry's fields over those of the sibling entries its `defaults:` list names, in Hydra's order (`_self_`
    where the list has it, else last)."""
    if not path.exists():
        raise CatalogueError(f"{path} not found")
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # the baselines' lr comes from the data set
    defaults = own.pop("defaults", [])
    fields = {}
    for item in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        if item == "_self_":
            fields.update(own)
        elif isinstance(item, str) and "/" not in item and " " not in item:
            fields.update(_fields(path.with_name(f"{item}.yaml")))
        else:
            raise CatalogueError(f"{path}: defaults entry {item!r}: an entry may only build on sibling entries")
    return fields


def read(path: Path) -> Entry:
    fields = _fields(path)
    name = str(fields.get("name", path.stem))
    return Entry(name=name, target=fields.get("_target_"), column=str(fields.get("column", name)),
                 family=str(fields.get("family", "")), source=str(fields.get("source", "")),
                 salsa_column=fields.get("salsa_column"))


@cache
def catalogue() -> dict[str, Entry]:
    """Every entry by its `name` (the name a run's summary carries)."""
    entries = [read(path) for path in sorted(CATALOGUE_DIR.glob("*.yaml"))]
    return {entry.name: entry for entry in entries}
