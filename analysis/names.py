"""Table column names, read from the optimizer catalogue (conf/optimizer/<name>.yaml: column, family, source).

A run's column is its entry's `column`, qualified by the baseline's lr choice (`ADAM(paper)`, `ADAM(tuned)`) or,
for optimizers that are not the paper's, by their source (`ADAM_SaLSa(ours)`, `SaLSA(release)`), so an extra
column never stands in a paper column's place. The catalogue is read as files (salsa.contract.catalogue: omegaconf, no
torch): the analysis imports no training code.
"""
from __future__ import annotations

from salsa.contract.catalogue import FAMILIES, SOURCES, Entry, catalogue

PAPER_SOURCES = ("torch", "paper")                  # the paper's columns: its baselines and the authors' AdamSLS
BASELINES = ("paper", "tuned")                      # a baseline's lr: the data set's (paper) or a tuning grid's

# The paper's task names -> the dataset name a run file carries (compared lowercase, alphanumerics only).
PAPER_TASK_DATASET = {
    "MNLI": "mnli", "QNLI": "qnli", "MRPC": "mrpc", "SST2": "sst2",
    "GPT-2": "openwebtext", "CIFAR10": "cifar10", "CIFAR100": "cifar100", "ImageNet": "imagenet",
}


def label(entry: Entry, baseline: str | None = None) -> str:
    source = f"({entry.source})" if entry.source in ("release", "ours") else ""
    return entry.column + source + ("" if baseline in (None, "none") else f"({baseline})")


def labels(entry: Entry) -> list[str]:
    return [label(entry, b) for b in BASELINES] if entry.family == "baseline" else [label(entry)]


def order(entry: Entry) -> tuple:
    """The paper's columns, then the release, then ours; baselines, SLS, SaLSa; then by name (unknown values last)."""
    rank = {value: i for i, value in enumerate(SOURCES)}, {value: i for i, value in enumerate(FAMILIES)}
    return rank[0].get(entry.source, len(SOURCES)), rank[1].get(entry.family, len(FAMILIES)), entry.name


def _ordered_labels(entries) -> list[str]:
    return list(dict.fromkeys(name for entry in sorted(entries, key=order) for name in labels(entry)))


ENTRIES = catalogue().values()
PAPER_COLUMNS = _ordered_labels(e for e in ENTRIES if e.source in PAPER_SOURCES)
COLUMN_ORDER = _ordered_labels(ENTRIES)
SALSA_COLUMNS = tuple(_ordered_labels(e for e in ENTRIES if e.family == "salsa"))
LINE_SEARCH_COLUMNS = tuple(_ordered_labels(e for e in ENTRIES if e.family in ("sls", "salsa")))
# The paper's CSV columns are the catalogue's `column`s; its baselines ran at fixed ("paper") learning rates.
PAPER_TO_OURS = {e.column: label(e, "paper" if e.family == "baseline" else None)
                 for e in sorted(ENTRIES, key=order) if e.source in PAPER_SOURCES}
SALSA_FOR_BASELINE = {e.name: e.salsa_column for e in ENTRIES if e.salsa_column}
# The paper's claims compare each SaLSa column with the tuned baseline the catalogue pairs it with.
TUNED_PAIRS = tuple(dict.fromkeys((e.salsa_column, label(e, "tuned")) for e in sorted(ENTRIES, key=order)
                                  if e.salsa_column))
# How a column's line is drawn: a baseline's lr choice (paper, tuned), else its family (sls, salsa).
LINE_KIND = {**{label(e, b): b for e in ENTRIES if e.family == "baseline" for b in BASELINES},
             **{label(e): e.family for e in ENTRIES if e.family != "baseline"}}


def column_name(optimizer: str, baseline: str | None) -> str:
    """`adam` + `tuned` -> `ADAM(tuned)`, `ours_salsa_adam` -> `ADAM_SaLSa(ours)`. An optimizer the catalogue does not
    have keeps its own name, so it still shows up."""
    return label(catalogue().get(optimizer, Entry(optimizer, None, optimizer, "", "")), baseline)


def ordered_columns(columns) -> list[str]:
    """Known columns in the catalogue's order (the paper's, then the release, then ours; baselines, SLS, SaLSa),
    then any others alphabetically."""
    present = set(columns)
    return [c for c in COLUMN_ORDER if c in present] + sorted(present - set(COLUMN_ORDER))


def normalise(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())
