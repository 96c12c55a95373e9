"""The optimizer catalogue (conf/optimizer/*.yaml): every entry builds through Hydra's instantiate and trains a
step, describes itself for the tables, and the analysis reads the same descriptions the harness composes."""
import pytest
import torch
from conftest import CONF, compose_cfg
from hydra.utils import get_object

import salsa.reference
from analysis.names import column_name
from salsa.contract.catalogue import FAMILIES, SOURCES, Entry, catalogue, read
from salsa.contract.runid import identify
from salsa.optim.base import ClosureLineSearch
from salsa.optim.closure import ClosureOptimizer
from salsa.registry import UserError
from salsa.train.optimizers import build_optimizer
from salsa.train.schema import validate

ENTRIES = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))


@pytest.mark.parametrize("name", ENTRIES)
def test_every_entry_builds_with_instantiate_and_takes_a_step(name):
    cfg = compose_cfg(f"optimizer={name}").optimizer
    assert cfg.family in FAMILIES and cfg.source in SOURCES
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
    entry = catalogue()[cfg.name]
    assert entry == Entry(cfg.name, cfg._target_, cfg.column, cfg.family, cfg.source, cfg.get("salsa_column"))
    assert column_name(name, cfg.lr_choice).startswith(cfg.column)


def test_columns_say_which_implementation_made_them():
    assert column_name("salsa", "none") == column_name("paper_salsa_adam", "none") == "ADAM_SaLSa"
    assert column_name("ours_salsa_adam", "none") == "ADAM_SaLSa(ours)"
    assert column_name("release_salsa", "none") == "SaLSA(release)"
    assert (column_name("torch_adam", "paper"), column_name("torch_adamw", "tuned")) == ("ADAM(paper)", "ADAM(tuned)")
    assert column_name("my_optimizer", "none") == "my_optimizer"


def test_the_release_class_has_one_name():
    assert not hasattr(salsa.reference, "SaLSA")


def test_the_labels_and_class_stay_out_of_the_run_id_and_the_name_fixes_the_class():
    base = identify(compose_cfg("optimizer=ours_salsa_adam")).id
    assert identify(compose_cfg("optimizer=ours_salsa_adam", "optimizer.column=Renamed", "optimizer.source=paper")).id == base
    other = compose_cfg("optimizer=ours_salsa_adam", "optimizer._target_=salsa.optim.SLS")
    assert identify(other).id == base  # so the same name may not name another class:
    with pytest.raises(UserError, match="optimizer=ours_salsa_adam is salsa.optim.SaLSa; for another class add an entry"):
        validate(other)
    with pytest.raises(UserError, match="optimizer.family=adaptive: must be baseline | sls | salsa"):
        validate(compose_cfg("optimizer=ours_salsa_adam", "optimizer.family=adaptive"))


def test_an_entry_builds_on_its_siblings_in_hydras_order(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\n_target_: torch.optim.SGD\ncolumn: B\nfamily: baseline\n"
                                        "source: torch\nlr: ${dataset.paper_lr.sgd.lr}\n")
    (tmp_path / "child.yaml").write_text("defaults:\n  - base\n  - _self_\nname: child\ncolumn: C\n")
    (tmp_path / "first.yaml").write_text("defaults:\n  - _self_\n  - base\nname: first\n")
    assert read(tmp_path / "child.yaml") == Entry("child", "torch.optim.SGD", "C", "baseline", "torch")
    assert read(tmp_path / "first.yaml").name == "base"   # _self_ first: the sibling's fields win, as in Hydra
