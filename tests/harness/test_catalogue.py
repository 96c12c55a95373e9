"""The optimizer catalogue (conf/optimizer/*.yaml): every entry builds through Hydra's instantiate and trains a
step, describes itself for the tables, and the analysis reads the same descriptions the harness composes."""
import pytest
import torch
from conftest import CONF, compose_cfg
from hydra.utils import get_object

import salsa.reference
from analysis.names import FAMILY_ORDER, SOURCE_ORDER, catalogue, column_name
from salsa.optim.base import ClosureLineSearch
from salsa.optim.closure import ClosureOptimizer
from salsa.train.optimizers import build_optimizer
from salsa.train.rundir import identify

ENTRIES = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


@pytest.mark.parametrize("name", ENTRIES)
def test_every_entry_builds_with_instantiate_and_takes_a_step(name):
    cfg = compose_cfg(f"optimizer={name}").optimizer
    assert cfg.family in FAMILY_ORDER and cfg.source in SOURCE_ORDER
    target = get_object(cfg._target_)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    opt = build_optimizer(cfg, list(model.parameters()), model=model, steps_per_epoch=7)
    inner = opt.optimizer if isinstance(opt, ClosureOptimizer) else opt
    assert type(inner) is target
    assert isinstance(opt, ClosureLineSearch) or cfg.family == "baseline"
    if "n_batches_per_epoch" not in cfg and hasattr(inner, "n_batches_per_epoch"):
        assert inner.n_batches_per_epoch == 7  # the harness's, where the entry does not set it
    before = [p.detach().clone() for p in model.parameters()]
    opt.step(lambda: torch.nn.functional.cross_entropy(model(x), y))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", ENTRIES)
def test_the_analysis_reads_what_the_harness_composes(name):
    cfg = compose_cfg(f"optimizer={name}").optimizer
    entry = catalogue()[name]
    assert (entry.name, entry.column, entry.family, entry.source, entry.salsa_column) == (
        cfg.name, cfg.column, cfg.family, cfg.source, cfg.get("salsa_column"))
    assert column_name(name, cfg.baseline).startswith(cfg.column)


def test_columns_say_which_implementation_made_them():
    assert column_name("salsa", "none") == column_name("paper_salsa_adam", "none") == "ADAM_SaLSa"
    assert column_name("salsa_adam", "none") == "ADAM_SaLSa(ours)"
    assert column_name("release_salsa", "none") == "SaLSA(release)"
    assert (column_name("adam", "paper"), column_name("adamw", "tuned")) == ("ADAM(paper)", "ADAM(tuned)")
    assert column_name("my_optimizer", "none") == "my_optimizer"


def test_the_release_class_old_name_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="ReleaseSaLSA"):
        old = salsa.reference.SaLSA
    assert old is salsa.reference.ReleaseSaLSA


def test_the_labels_do_not_enter_the_run_id_but_the_class_does():
    base = identify(compose_cfg("optimizer=salsa_adam")).id
    assert identify(compose_cfg("optimizer=salsa_adam", "optimizer.column=Renamed", "optimizer.source=paper")).id == base
    assert identify(compose_cfg("optimizer=salsa_adam", "optimizer._target_=salsa.optim.SLS")).id != base
