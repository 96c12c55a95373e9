"""The command line, checked before Hydra composes and before anything is written: each refusal is one line that
names the value and what to do (UserError, exit 2). Refused here:
- text that is not what it shows: a character that does not show on screen (U+200B, a control character) or a
  byte that is not UTF-8 (Hydra's grammar stops at it with a lexer trace; an override it cannot parse is one line);
- a deleted key (`~seed`): the harness reads every key of its config (an optional group, experiment, may go);
- a key that names the run (salsa/train/identity.py), with the option to choose instead;
- `${oc.env:VAR}` without a default where VAR is not set;
- a hydra.run.dir or hydra.sweep.dir where no directory can be made (Hydra writes its log there first);
- a key no config has, with the nearest keys that exist. Hydra's own refusal ("not in struct") lists none and
  suggests `+key=value`, which it then accepts: a key nothing reads, which only changes the run id (a second run
  with the same numbers)."""
from __future__ import annotations

import difflib
import itertools
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from salsa.registry import UserError
from salsa.train.identity import refusal

HIDDEN = {"Cc", "Cf", "Co", "Cn", "Zl", "Zp"}  # control, format (U+200B, U+FEFF), private, unassigned, separators
ENV = re.compile(r"\$\{oc\.env:([^,}]+)\}")     # an oc.env interpolation without a default
OUTPUT_DIRS = ("hydra.run.dir", "hydra.sweep.dir")


def _unseen(char: str) -> bool:
    category = unicodedata.category(char)
    return category in HIDDEN or category == "Cs" or (category == "Zs" and char != " ")


def _shown(text: str) -> str:
    """text with each character that does not show (or is a byte that is not UTF-8) written as its code."""
    def code(char):
        if unicodedata.category(char) == "Cs":  # argv's bytes that are not UTF-8 (surrogateescape)
            return f"\\x{ord(char) - 0xDC00:02x}"
        return f"\\u{ord(char):04x}"
    return "".join(code(c) if _unseen(c) else c for c in text)


def check_text(args: list[str]) -> None:
    """UserError for the first argument holding a byte that is not UTF-8 or a character that does not show."""
    for arg in args:
        for i, char in enumerate(arg):
            if unicodedata.category(char) == "Cs":
                raise UserError(f"{_shown(arg)}: byte {_shown(char)} (character {i + 1}) is not UTF-8; config values "
                                "are UTF-8 text: type the value again")
            if _unseen(char):
                name = unicodedata.name(char, "a control character")
                raise UserError(f"{_shown(arg)}: character {i + 1} is U+{ord(char):04X} ({name}), which does not show "
                                "on screen: type the value again without it")


def parse(args: list[str]) -> list:
    """The overrides of a command line, each parsed as Hydra parses it; UserError names one Hydra cannot parse."""
    parser = OverridesParser.create()
    parsed = []
    for line in get_args_parser().parse_args(args).overrides:
        try:
            parsed.append(parser.parse_override(line))
        except Exception as e:  # noqa: BLE001 - Hydra's grammar errors share no class but HydraException's base
            raise UserError(f"{line}: not an override Hydra can parse ({str(e).splitlines()[0]}); write key=value, "
                            "quoting a value of other characters than letters, digits and ./-_: key='value' "
                            "(https://hydra.cc/docs/advanced/override_grammar/basic/)") from None
    return parsed


def _optional_groups(conf_dir: Path) -> set[str]:
    """The groups whose default is null in config.yaml (experiment): the only things a command line may delete."""
    defaults = OmegaConf.to_container(OmegaConf.load(conf_dir / "config.yaml")).get("defaults", [])
    return {group for item in defaults if isinstance(item, dict) for group, option in item.items() if option is None}


def _refuse_deletion(o, conf_dir: Path) -> None:
    key = o.key_or_group
    if key.startswith("hydra") or key in _optional_groups(conf_dir):
        return
    what = f"choose another option ({key}=<name>)" if (conf_dir / key).is_dir() else f"set a value instead ({key}=...)"
    raise UserError(f"~{key}: the harness reads every key of its config, so none can be deleted; {what}")


def _refuse_unset_variable(o) -> None:
    value = o.input_line.split("=", 1)[-1]
    for name in ENV.findall(value):
        if name not in os.environ:
            raise UserError(f"{o.input_line}: the environment variable {name} is not set; set it (export {name}=...), "
                            f"give it a default (${{oc.env:{name},<default>}}) or give the value itself")


def _refuse_output_dir(o) -> None:
    """hydra.run.dir / hydra.sweep.dir given as a plain path: a directory must be possible there. Tried in its
    nearest existing parent with a temporary directory, removed at once (one with interpolations Hydra resolves)."""
    value = o.value()
    if not isinstance(value, str) or "${" in value:
        return
    if not value.strip():
        raise UserError(f"{o.key_or_group}='{value}': empty, so Hydra would write its logs into the current directory; "
                        "give a directory, or leave it out (its default lies under paths.root)")
    parent = Path(value).absolute()
    while not os.path.lexists(parent):
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(20, "not a directory")
        shutil.rmtree(tempfile.mkdtemp(prefix=".write_probe_", dir=parent))
    except OSError as e:
        raise UserError(f"{o.key_or_group}={value}: no directory can be made there ({parent}: {e.strerror}); "
                        "choose a writable place, e.g. under paths.root") from None


def _compositions(conf_dir: Path, choice_sets) -> list | None:
    """The config for each combination of the group choices (unresolved containers); None if one does not compose
    (Hydra then reports that itself, e.g. an unknown option)."""
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            return [OmegaConf.to_container(compose("config", overrides=list(choices)), resolve=False)
                    for choices in itertools.product(*choice_sets)]
    except Exception:  # noqa: BLE001 - whatever Hydra raises, its own run reports it
        return None


def _keys(config: dict) -> set[str]:
    """Every dotted path of a config, nodes included (model.tokenizer and model.tokenizer.kind)."""
    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            if isinstance(value, dict):
                yield from walk(value, f"{path}.")
    return set(walk(config, ""))


def _nearest(key: str, known: set[str]) -> str:
    near = difflib.get_close_matches(key, sorted(known), n=5, cutoff=0.6)
    if not near:
        near = sorted(k for k in known if k.split(".")[0] == key.split(".")[0] and k.count(".") == key.count("."))[:8]
    return (f"; the nearest keys: {', '.join(near)}" if near else "") + " (`python run.py --cfg job` prints every key)"


def _refuse_unknown(o, composed: list[set[str]], conf_dir: Path) -> None:
    """A plain key must exist in the composed config (for every option a sweep chooses); an added one (+key) in
    some option of its group (e.g. +model.tokenizer.vocab_size, which bow's tokenizer has)."""
    key = o.key_or_group
    if o.is_add() or o.is_force_add():
        group = key.split(".")[0]
        options = sorted(p.stem for p in (conf_dir / group).glob("*.yaml")) if (conf_dir / group).is_dir() else []
        per_option = [_compositions(conf_dir, [[f"{group}={name}"]]) or [] for name in options]
        known = set().union(*composed, *(_keys(config) for found in per_option for config in found))
        if key not in known:
            raise UserError(f"+{key}: no config has this key, so nothing would read it{_nearest(key, known)}")
    elif missing := [keys for keys in composed if key not in keys]:
        raise UserError(f"{key}: not a key of this config{_nearest(key, missing[0])}")


def check_command_line(args: list[str], conf_dir: Path) -> None:
    """UserError for the first argument the harness cannot honour (the module's list, in that order per override);
    config groups and hydra.* keys are left to Hydra but for the output directories."""
    check_text(args)
    overrides = parse(args)
    is_group = [(conf_dir / o.key_or_group.split("@")[0]).is_dir() for o in overrides]
    for o in overrides:
        if o.is_delete():
            _refuse_deletion(o, conf_dir)
        _refuse_unset_variable(o)
        if o.key_or_group in OUTPUT_DIRS:
            _refuse_output_dir(o)
    values = [o for o, g in zip(overrides, is_group) if not g and not o.key_or_group.startswith("hydra.")]
    if not values:
        return
    choice_sets = [[f"{o.get_key_element()}={c}" for c in o.sweep_string_iterator()] if o.is_sweep_override()
                   else [o.input_line] for o, g in zip(overrides, is_group) if g]
    configs = _compositions(conf_dir, choice_sets)
    if configs is None:
        return
    for o in values:
        line = refusal(o.key_or_group, o.input_line.split("=", 1)[-1], conf_dir, configs[0].get("optimizer", {}).get("name"))
        if line:
            raise UserError(line)
    composed = [_keys(config) for config in configs]
    for o in values:
        _refuse_unknown(o, composed, conf_dir)
