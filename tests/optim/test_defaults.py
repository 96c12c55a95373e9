"""SaLSa's defaults are what the optimizer catalogue's entries for our SaLSa run (composed by Hydra as run.py composes
them), and its signature offers no switch back to a superseded behaviour."""
import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from salsa import SaLSa
from salsa.train.optimizers import build_optimizer

CONF = Path(__file__).resolve().parents[2] / "conf"
SETTINGS = ("c", "beta3", "growth", "backtrack", "max_backtracks", "adaptive_frequency", "frequency", "max_interval")


def from_catalogue(name: str, model: torch.nn.Module) -> SaLSa:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"optimizer={name}"]).optimizer
    return build_optimizer(cfg, list(model.parameters()), model=model, steps_per_epoch=7)


def described(opt: SaLSa) -> dict:
    return dict(
        defaults=opt.defaults, groups=[{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
        settings={name: getattr(opt, name) for name in SETTINGS}, preconditioner=type(opt.preconditioner),
        state=opt.line_search_state,
    )


@pytest.mark.parametrize("name, options", [
    ("ours_salsa_adam", {}),
    ("ours_salsa_sgd", dict(preconditioner="sgd")),
    ("ours_salsa_adam_paper_frequency", dict(frequency="paper")),
])
def test_the_catalogue_entry_builds_what_the_defaults_build(name, options):
    model = torch.nn.Linear(4, 2)
    assert described(from_catalogue(name, model)) == described(SaLSa(model.parameters(), model=model, **options))


def test_the_signature_offers_no_superseded_behaviour():
    parameters = inspect.signature(SaLSa).parameters
    assert not {"resolution_aware", "debiased_frequency", "unresolved_backoff"} & set(parameters)
    assert (parameters["c"].default, parameters["beta3"].default) == (0.3, 0.99)
    model = torch.nn.Linear(4, 2)
    for preconditioner in ("adam", "sgd"):
        opt = SaLSa(model.parameters(), preconditioner=preconditioner)
        assert (opt.frequency, opt.max_interval) == ("doubling", 20)
    assert SaLSa(model.parameters(), frequency="paper").max_interval == 10
