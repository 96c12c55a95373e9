"""Checks every config value right after composition, before anything is written: that each interpolation
resolves, types and ranges (the model options' from what the models accept), one clear line for the first bad value
(`<key>=<value>: <what is allowed>`). A rule whose key the chosen option does not have
(e.g. optimizer.c for adam) is skipped: run.py refuses such a key on the command line before composing
(salsa/train/keys.py); the optimizer constructors check their own arguments again for library users."""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NamedTuple

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from salsa.contract.catalogue import FAMILIES, SOURCES, catalogue
from salsa.contract.runid import LARGEST_SEED
from salsa.registry import UserError


class Rule(NamedTuple):
    ok: Callable[[object], bool]
    allowed: str


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def integer(low: int, high: int | None = None, *, optional: bool = False, note: str = "") -> Rule:
    return Rule(lambda v: (optional and v is None) or (_is_int(v) and low <= v and (high is None or v <= high)),
                f"an integer {f'>= {low}' if high is None else f'from {low} to {high}'}{' or null' if optional else ''}{note}")


def number(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = True,
           optional: bool = False) -> Rule:
    def ok(v):
        return (optional and v is None) or (_is_number(v) and (v > low if low_open else v >= low)
                                             and (v < high if high_open else v <= high))
    span = (f"{'>' if low_open else '>='} {low:g}" if high == math.inf else
            f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")
    return Rule(ok, f"a number {span}{' or null' if optional else ''}")


def choice(*options: str, pattern: str | None = None) -> Rule:
    return Rule(lambda v: isinstance(v, str) and (v in options or bool(pattern and re.fullmatch(pattern, v))),
                " | ".join(options))


BOOLEAN = Rule(lambda v: isinstance(v, bool), "true or false")
FRACTION = number(0, 1)                       # [0, 1): momentum-like averages
PAIR = Rule(lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(FRACTION.ok(b) for b in v),
            "two numbers in [0, 1), e.g. [0.9,0.999]")
BLOCKS = Rule(lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(integer(1).ok(b) for b in v),
              "a list of integers >= 1 (residual blocks per stage), e.g. [2,2,2,2]")
TEXT = Rule(lambda v: isinstance(v, str) and v.strip() != "", "a name or a path")
MOMENTUM = Rule(lambda v: FRACTION.ok(v) or (isinstance(v, (list, tuple)) and all(FRACTION.ok(b) for b in v)),
                "a number in [0, 1) (release_salsa: a list of them, e.g. [0.9,0.999,0.9])")

RULES: dict[str, Rule] = {
    "seed": integer(0, LARGEST_SEED, note=" (2**53: the seeds a float64 holds exactly, as the analysis reads them)"),
    "download": BOOLEAN,
    "trainer.epochs": integer(1),
    "trainer.batch_size": integer(1),
    "trainer.eval_batch_size": integer(1),
    "trainer.log_every": integer(1),
    "trainer.checkpoint_every": integer(0, note=" (0: at epoch ends only)"),
    "trainer.checkpoint_interval_s": number(0),
    "trainer.max_steps": integer(1, optional=True, note=" (null: no limit)"),
    "trainer.limit": integer(1, optional=True, note=" (examples per split; null: the whole split)"),
    "trainer.device": choice("auto", "cpu", "cuda", "cuda:N", pattern=r"cuda:\d+"),
    "trainer.precision": choice("fp32", "bf16", "fp64"),
    "trainer.compile": BOOLEAN,
    "trainer.grad_clip": number(0, low_open=True, optional=True),
    "trainer.micro_batches": integer(1, note=" (and at most trainer.batch_size)"),
    "trainer.decay_2d_only": BOOLEAN,
    "trainer.allow_numerics_change": BOOLEAN,
    "dataset.val_fraction": FRACTION,
    "dataset.test_fraction": FRACTION,
    # the models' options (conf/model/*.yaml), as their builders (salsa/models) and the libraries under them accept
    "model.width": integer(1),
    "model.depth": integer(0, note=" (hidden layers; 0: a linear model)"),
    "model.dropout": number(0, 1),                  # nn.Dropout takes [0, 1]; at 1 every unit is dropped
    "model.hidden": integer(1),
    "model.layers": integer(1),
    "model.heads": integer(1),
    "model.intermediate": integer(1),
    "model.mlp": integer(1),
    "model.dim": integer(1),
    "model.patch_size": integer(1),
    "model.blocks": BLOCKS,
    "model.pretrained": Rule(lambda v: v is None or TEXT.ok(v), "a Hugging Face model name or a local path, or null"),
    "model.tokenizer.kind": choice("pretrained", "wordpiece", "bytes"),
    "model.tokenizer.vocab_size": integer(1),
    "model.tokenizer.pretrained_name": TEXT,
    "optimizer.lr": number(0, low_open=True),
    "optimizer.c": number(0, 1, low_open=True),
    "optimizer.beta3": FRACTION,
    "optimizer.betas": PAIR,
    "optimizer.beta_b": number(0, 1, low_open=True),
    "optimizer.momentum": MOMENTUM,
    "optimizer.beta": FRACTION,
    "optimizer.beta_s": FRACTION,
    "optimizer.eps": number(0),
    "optimizer.weight_decay": number(0),
    "optimizer.init_step_size": number(0, low_open=True),
    "optimizer.growth": number(1),
    "optimizer.backtrack": number(0, 1, low_open=True),
    "optimizer.max_backtracks": integer(1),
    "optimizer.max_interval": integer(1),
    "optimizer.family": choice(*FAMILIES),
    "optimizer.source": choice(*SOURCES),
}
_ABSENT = object()


def shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(shown, value)) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _written(cfg, key: str):
    """The value of key as the config holds it, interpolations unresolved."""
    node = OmegaConf.to_container(cfg, resolve=False)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def check_resolves(cfg) -> None:
    """UserError naming the first value whose interpolation does not resolve (an unset ${oc.env:VAR}, a key that
    does not exist), with the reason."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "the config"
        raise UserError(f"{key}={_written(cfg, key)}: cannot be resolved ({str(e).splitlines()[0]}); set what it names "
                        f"or give {key} on the command line") from None


def check_heads(cfg) -> None:
    """Attention splits the hidden size into equal heads (BERT, GPT-2 and ViT refuse other sizes)."""
    hidden, heads = OmegaConf.select(cfg, "model.hidden"), OmegaConf.select(cfg, "model.heads")
    if hidden is not None and heads is not None and hidden % heads:
        raise UserError(f"model.hidden={hidden}: must be divisible by model.heads={heads} (attention splits it into "
                        "equal heads)")


def validate(cfg) -> None:
    """Raises UserError for the first value that does not resolve, then for the first outside RULES (keys in RULES
    order), then for the model's heads and the optimizer entry's class."""
    check_resolves(cfg)
    for key, rule in RULES.items():
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        except OmegaConfBaseException as e:
            raise UserError(f"{key}: cannot be resolved ({str(e).splitlines()[0]})") from None
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not rule.ok(value):
            raise UserError(f"{key}={shown(value)}: must be {rule.allowed}")
    check_heads(cfg)
    check_class(cfg)


def check_class(cfg) -> None:
    """A catalogue entry's name fixes its class (the run id leaves `_target_` out): another class needs its own
    entry."""
    entry = catalogue().get(cfg.optimizer.name)
    target = cfg.optimizer.get("_target_")
    if entry is not None and target != entry.target:
        raise UserError(f"optimizer._target_={target}: optimizer={entry.name} is {entry.target}; for another class add "
                        "an entry conf/optimizer/<new name>.yaml (docs/optimizers.md#adding-an-optimizer)")
