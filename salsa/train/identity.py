"""A run is what its options say: the keys that name it are refused on the command line, each with the option to
choose instead. The optimizer entry's name, class (`_target_`) and labels (salsa.contract.catalogue.LABELS) file
its runs under a column of the tables; the data set's and the model's names choose their loaders and make the task
label, `${dataset.name}-${model.name}` (conf/config.yaml), by which the analysis groups runs. Overriding one would
file the run under another entry's or task's name while it trains what its options say."""
from __future__ import annotations

from pathlib import Path

from salsa.contract.catalogue import LABELS, catalogue

OPTIMIZER_IDENTITY = ("name", "_target_", *LABELS)
IDENTITY_KEYS = ("task", "dataset.name", "model.name", *(f"optimizer.{key}" for key in OPTIMIZER_IDENTITY))
ADDING = "docs/optimizers.md#adding-an-optimizer"
CHOOSES = {"dataset": "the data set's loader", "model": "the model's builder"}


def _options(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def _task_options(value: str, conf_dir: Path) -> str:
    pairs = [f"dataset={d} model={m}" for d in _options(conf_dir, "dataset") for m in _options(conf_dir, "model")
             if f"{d}-{m}" == value]
    return pairs[0] if pairs else "dataset=<name> model=<name> (conf/dataset/, conf/model/)"


def _entry_field(entry, key: str):
    return entry.target if key == "_target_" else getattr(entry, key)


def _optimizer_refusal(key: str, value: str, chosen: str | None) -> str:
    entry = catalogue().get(chosen) if chosen else None
    if entry is None:
        fixed = f"the entry fixes its {key}"
    else:
        has = _entry_field(entry, key)
        fixed = (f"optimizer={chosen} has no {key}" if has is None else f"optimizer={chosen} is {has}" if key == "_target_"
                 else f"optimizer={chosen}'s {key} is {has}")
    matches = [e.name for e in catalogue().values() if str(_entry_field(e, key)) == value]
    if matches:
        return f"{fixed}; choose the entry instead: optimizer={' or optimizer='.join(matches)}"
    return f"{fixed}; no entry has {key} {value}: add an entry conf/optimizer/<new name>.yaml ({ADDING})"


def refusal(key: str, value: str, conf_dir: Path, chosen_optimizer: str | None = None) -> str | None:
    """The one line refusing `key=value` on the command line, or None where key does not name the run."""
    if key not in IDENTITY_KEYS:
        return None
    shown = f"{key}={value}: "
    if key == "task":
        return shown + f"the task label is ${{dataset.name}}-${{model.name}}, set by the options: choose {_task_options(value, conf_dir)}"
    if key in ("dataset.name", "model.name"):
        group = key.split(".")[0]
        option = value if value in _options(conf_dir, group) else f"<one of {', '.join(_options(conf_dir, group))}>"
        return shown + f"the name follows the {group} option (it chooses {CHOOSES[group]} and the task label): choose {group}={option}"
    return shown + _optimizer_refusal(key.split(".", 1)[1], value, chosen_optimizer)
