"""Table column names, read from the optimizer catalogue (conf/optimizer/<name>.yaml: column, family, source).

A run's column is its entry's `column`, qualified by the baseline's lr choice (`ADAM(paper)`, `ADAM(tuned)`) or,
for optimizers that are not the paper's, by their source (`ADAM_SaLSa(ours)`, `SaLSA(release)`), so an extra
column never stands in a paper column's place. The catalogue is read as files: the analysis imports no
training code.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

CATALOGUE = Path(__file__).resolve().parents[1] / "conf" / "optimizer"
PAPER_SOURCES = ("torch", "paper")                  # the paper's columns: its baselines and the authors' AdamSLS
SOURCE_ORDER = ("torch", "paper", "release", "ours")
FAMILY_ORDER = ("baseline", "sls", "salsa")
BASELINES = ("paper", "tuned")                      # a baseline's lr: the data set's (paper) or a tuning grid's

# The paper's task names -> the dataset name a run file carries (compared lowercase, alphanumerics only).
PAPER_TASK_DATASET = {
    "MNLI": "mnli", "QNLI": "qnli", "MRPC": "mrpc", "SST2": "sst2",
    "GPT-2": "openwebtext", "CIFAR10": "cifar10", "CIFAR100": "cifar100", "ImageNet": "imagenet",
}


@dataclass(frozen=True)
class Entry:
    name: str
    column: str
    family: str
    source: str
    salsa_column: str | None = None   # baselines: the SaLSa column their tuning cost is counted in

    def label(self, baseline: str | None = None) -> str:
        source = "" if self.source in PAPER_SOURCES else f"({self.source})"
        return self.column + source + ("" if baseline in (None, "none") else f"({baseline})")

    def labels(self) -> list[str]:
        return [self.label(b) for b in BASELINES] if self.family == "baseline" else [self.label()]

    def order(self) -> tuple:
        return (SOURCE_ORDER.index(self.source), FAMILY_ORDER.index(self.family), self.name)


def _fields(path: Path) -> dict:
    """The entry's own fields over those of the entries its `defaults:` list names (conf/optimizer/salsa.yaml)."""
    node = OmegaConf.load(path)
    fields = {}
    for parent in node.get("defaults", []):
        if parent != "_self_":
            fields.update(_fields(path.with_name(f"{parent}.yaml")))
    fields.update({k: node[k] for k in Entry.__dataclass_fields__ if k in node})
    return fields


@cache
def catalogue() -> dict[str, Entry]:
    return {path.stem: Entry(**_fields(path)) for path in sorted(CATALOGUE.glob("*.yaml"))}


def _ordered_labels(entries) -> list[str]:
    return list(dict.fromkeys(label for entry in sorted(entries, key=Entry.order) for label in entry.labels()))


ENTRIES = catalogue().values()
PAPER_COLUMNS = _ordered_labels(e for e in ENTRIES if e.source in PAPER_SOURCES)
COLUMN_ORDER = _ordered_labels(ENTRIES)
SALSA_COLUMNS = tuple(_ordered_labels(e for e in ENTRIES if e.family == "salsa"))
LINE_SEARCH_COLUMNS = tuple(_ordered_labels(e for e in ENTRIES if e.family in ("sls", "salsa")))
# The paper's CSV columns are the catalogue's `column`s; its baselines ran at fixed ("paper") learning rates.
PAPER_TO_OURS = {e.column: e.label("paper" if e.family == "baseline" else None)
                 for e in sorted(ENTRIES, key=Entry.order) if e.source in PAPER_SOURCES}
SALSA_FOR_BASELINE = {e.name: e.salsa_column for e in ENTRIES if e.salsa_column}
# The paper's claims compare each SaLSa column with the tuned baseline the catalogue pairs it with.
TUNED_PAIRS = tuple(dict.fromkeys((e.salsa_column, e.label("tuned")) for e in sorted(ENTRIES, key=Entry.order)
                                  if e.salsa_column))
# How a column's line is drawn: a baseline's lr choice (paper, tuned), else its family (sls, salsa).
LINE_KIND = {**{e.label(b): b for e in ENTRIES if e.family == "baseline" for b in BASELINES},
             **{e.label(): e.family for e in ENTRIES if e.family != "baseline"}}


def column_name(optimizer: str, baseline: str | None) -> str:
    """`adam` + `tuned` -> `ADAM(tuned)`, `salsa_adam` -> `ADAM_SaLSa(ours)`. An optimizer the catalogue does not
    have keeps its own name, so it still shows up."""
    entry = catalogue().get(optimizer, Entry(optimizer, optimizer, "baseline", "paper"))
    return entry.label(baseline)


def ordered_columns(columns) -> list[str]:
    """Known columns in the catalogue's order (the paper's, then the release, then ours; baselines, SLS, SaLSa),
    then any others alphabetically."""
    present = set(columns)
    return [c for c in COLUMN_ORDER if c in present] + sorted(present - set(COLUMN_ORDER))


def normalise(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())
