"""Refuses a command line's unknown config keys before Hydra composes (and before anything is written), with the
nearest keys that exist. Hydra's own refusal ("not in struct") lists none and suggests `+key=value`, which it
then accepts: a key nothing reads, which only changes the run id (a second run with the same numbers)."""
from __future__ import annotations

import difflib
import itertools
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from salsa.registry import UserError


def _keys(cfg) -> set[str]:
    """Every dotted path of a composed config, nodes included (model.tokenizer and model.tokenizer.kind)."""
    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            if isinstance(value, dict):
                yield from walk(value, f"{path}.")
    return set(walk(OmegaConf.to_container(cfg, resolve=False), ""))


def _composed_keys(conf_dir: Path, choice_sets) -> list[set[str]] | None:
    """The keys of the config for each combination of the group choices; None if one does not compose (Hydra then
    reports that itself, e.g. an unknown option)."""
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return [_keys(compose("config", overrides=list(choices))) for choices in itertools.product(*choice_sets)]
    except Exception:  # noqa: BLE001 - whatever Hydra raises, its own run reports it
        return None


def _nearest(key: str, known: set[str]) -> str:
    near = difflib.get_close_matches(key, sorted(known), n=5, cutoff=0.6)
    if not near:
        near = sorted(k for k in known if k.split(".")[0] == key.split(".")[0] and k.count(".") == key.count("."))[:8]
    return (f"; the nearest keys: {', '.join(near)}" if near else "") + " (`python run.py --cfg job` prints every key)"


def refuse_unknown_keys(args: list[str], conf_dir: Path) -> None:
    """UserError for the first key=value (or +key=value) of the command line that no config has: a plain key must
    exist in the composed config (for every option a sweep chooses); an added one (+key) in some option of its
    group (e.g. +model.tokenizer.vocab_size, which bow's tokenizer has). Config groups and hydra.* keys pass."""
    try:
        overrides = OverridesParser.create().parse_overrides(get_args_parser().parse_args(args).overrides)
    except Exception:  # noqa: BLE001 - a malformed command line: Hydra's own error says what is wrong
        return
    is_group = [(conf_dir / o.key_or_group.split("@")[0]).is_dir() for o in overrides]
    groups = [o for o, g in zip(overrides, is_group) if g]
    values = [o for o, g in zip(overrides, is_group) if not g and not o.key_or_group.startswith("hydra.")
              and not o.is_delete()]
    if not values:
        return
    choice_sets = [[f"{o.get_key_element()}={c}" for c in o.sweep_string_iterator()] if o.is_sweep_override()
                   else [o.input_line] for o in groups]
    composed = _composed_keys(conf_dir, choice_sets)
    if composed is None:
        return
    for o in values:
        key = o.key_or_group
        if o.is_add() or o.is_force_add():
            group = key.split(".")[0]
            options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml")) if (conf_dir / group).is_dir() else []
            per_option = [_composed_keys(conf_dir, [[f"{group}={name}"]]) or [] for name in options]
            known = set().union(*composed, *(keys for found in per_option for keys in found))
            if key not in known:
                raise UserError(f"+{key}: no config has this key, so nothing would read it{_nearest(key, known)}")
        elif missing := [keys for keys in composed if key not in keys]:
            raise UserError(f"{key}: not a key of this config{_nearest(key, missing[0])}")
