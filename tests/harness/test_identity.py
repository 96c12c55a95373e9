"""A run is what its config says, and what can be checked is checked before anything starts: the keys that name a
run cannot be overridden on the command line, text that is not what it shows, deleted keys, unset environment
variables, output directories where nothing can be made and model options outside what the models accept end in
one line (exit 2) with nothing written; the largest legal seed goes through the analysis; calibrate refuses what
run.py refuses; a table cell averages only runs of one config, the seed apart."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONF, compose_cfg, run_py
from omegaconf import OmegaConf

from analysis.cli import main as analysis_main
from analysis.collect import collect_runs
from analysis.selection import differences, select_cells
from experiments.reproduce.calibrate import main as calibrate
from salsa.contract.runid import cell_config, flat, identify
from salsa.data.tokenizers import TOKENIZERS
from salsa.registry import UserError
from salsa.train.keys import check_command_line
from salsa.train.schema import RULES, validate
from tests.experiments.conftest import TINY

REPO_HYDRA = CONF.parent / ".hydra"  # where an empty hydra.run.dir would have put Hydra's files
FAST = ["trainer.max_steps=2", "trainer.epochs=1", "trainer.limit=64", "trainer.device=cpu"]


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_root(tmp_path_factory) -> Path:
    """A root holding one finished run: every refusal below must leave it byte-identical."""
    root = tmp_path_factory.mktemp("root")
    out = run_py(*FAST, f"paths.root={root}")
    assert out.returncode == 0, out.stderr
    return root


REFUSED = [
    # a run's identity: the option to choose instead
    (["optimizer=torch_adam", "optimizer.name=torch_adamw", "optimizer._target_=torch.optim.AdamW"],
     "optimizer.name=torch_adamw: optimizer=torch_adam's name is torch_adam; choose the entry instead: optimizer=torch_adamw"),
    (["optimizer=torch_adam", "optimizer._target_=torch.optim.AdamW"],
     "optimizer._target_=torch.optim.AdamW: optimizer=torch_adam is torch.optim.Adam; choose the entry "
     "instead: optimizer=torch_adamw"),
    (["optimizer.column=ADAM"], "optimizer.column=ADAM: optimizer=ours_salsa_adam's column is ADAM_SaLSa; choose the "
                                "entry instead: optimizer=torch_adam or optimizer=torch_adamw"),
    (["optimizer.family=baseline", "optimizer.source=torch"], "optimizer.family=baseline: optimizer=ours_salsa_adam's family is salsa"),
    (["+optimizer.salsa_column=ADAM_SaLSa"], "optimizer.salsa_column=ADAM_SaLSa: optimizer=ours_salsa_adam has no salsa_column"),
    (["optimizer._target_=my.Optimizer"], "no entry has _target_ my.Optimizer: add an entry conf/optimizer/<new name>.yaml"),
    (["task=mnist5k-cnn"], "task=mnist5k-cnn: the task label is ${dataset.name}-${model.name}, set by the options: "
                           "choose dataset=mnist5k model=cnn"),
    (["dataset.name=mnist5k"], "dataset.name=mnist5k: the name follows the dataset option (it chooses the data set's "
                               "loader and the task label): choose dataset=mnist5k"),
    (["model.name=cnn"], "model.name=cnn: the name follows the model option (it chooses the model's builder and the "
                         "task label): choose model=cnn"),
    (["optimizer=torch_adam,torch_sgd", "optimizer.name=torch_adamw", "--multirun"], "optimizer.name=torch_adamw"),
    # text that is not what it shows
    (["seed=1\u200b"], "seed=1\\u200b: character 7 is U+200B (ZERO WIDTH SPACE), which does not show on screen"),
    (["paths.data=/data\u00a0x"], "paths.data=/data\\u00a0x: character 17 is U+00A0 (NO-BREAK SPACE)"),
    (["paths.data=/tmp/\udcff\udcfe"], "paths.data=/tmp/\\xff\\xfe: byte \\xff (character 17) is not UTF-8"),
    (["seed=[1"], "seed=[1: not an override Hydra can parse (no viable alternative at input '[1')"),
    (["paths.data=/données"], "paths.data=/données: not an override Hydra can parse (token recognition error at: 'é'); "
                              "write key=value, quoting a value of other characters than letters, digits and"),
    # deleted keys, variables not set, output directories nothing can be made in
    (["~seed"], "~seed: the harness reads every key of its config, so none can be deleted; set a value instead (seed=...)"),
    (["~dataset"], "~dataset: the harness reads every key of its config, so none can be deleted; choose another option"),
    (["paths.data=${oc.env:SALSA_TEST_UNSET_VARIABLE}"], "the environment variable SALSA_TEST_UNSET_VARIABLE is not set"),
    (["hydra.run.dir=/proc/salsa"], "hydra.run.dir=/proc/salsa: no directory can be made there"),
    (["hydra.run.dir=/dev/null/x"], "hydra.run.dir=/dev/null/x: no directory can be made there (/dev/null: not a directory)"),
    (["hydra.run.dir="], "hydra.run.dir='': empty, so Hydra would write its logs into the current directory"),
    # model options outside what the models accept
    (["model.dropout=1.5"], "model.dropout=1.5: must be a number in [0, 1)"),
    (["model.width=0"], "model.width=0: must be an integer >= 1"),
    (["model.depth=-1"], "model.depth=-1: must be an integer >= 0 (hidden layers; 0: a linear model)"),
    (["model=cnn", "model.width=-3"], "model.width=-3: must be an integer >= 1"),
    (["dataset=rotten_tomatoes", "model=bert_tiny", "model.hidden=65"], "model.hidden=65: must be divisible by model.heads=2"),
    (["dataset=rotten_tomatoes", "model=bow", "model.tokenizer.vocab_size=0"], "model.tokenizer.vocab_size=0: must be an integer >= 1"),
    (["model=resnet18", "model.blocks=[2,0]"], "model.blocks=[2,0]: must be a list of integers >= 1"),
    ([f"seed={2**53 + 1}"], f"seed={2**53 + 1}: must be an integer from 0 to {2**53}"),
]


@pytest.mark.parametrize("args, line", REFUSED, ids=[" ".join(a).encode("ascii", "backslashreplace").decode() for a, _ in REFUSED])
def test_refused_in_one_line_before_anything_is_written(finished_root, args, line):
    before = digest(finished_root / "runs")
    out = run_py(*FAST, f"paths.root={finished_root}", *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert [text for text in out.stderr.splitlines() if text.strip()] == [out.stderr.strip()]
    assert out.stderr.startswith("error: ") and line in out.stderr, out.stderr
    assert digest(finished_root / "runs") == before and not REPO_HYDRA.exists()



def test_what_stays_allowed():
    """The refusals take nothing that works: an optional group deleted, a variable with a default or one that is
    set, a writable output directory, non-ASCII text that shows."""
    for args in (["~experiment"], ["paths.data=${oc.env:SALSA_TEST_UNSET_VARIABLE,/data}"], ["paths.data=${oc.env:HOME}"],
                 ["hydra.run.dir=/tmp/salsa-output/x"], ["paths.data='/données/é'"], ["optimizer=torch_adam"],
                 ["optimizer.lr=0.5", "optimizer=torch_sgd"]):
        check_command_line(args, CONF)
    assert not Path("/tmp/salsa-output").exists()  # the output directory was tried, not made


def test_every_model_option_has_a_rule_and_validates_as_shipped():
    for option in sorted(p.stem for p in (CONF / "model").glob("*.yaml")):
        cfg = compose_cfg(f"model={option}")
        validate(cfg)
        leaves = {f"model.{k}" for k, v in OmegaConf.to_container(cfg.model).items() if not isinstance(v, dict)}
        leaves |= {f"model.{k}.{j}" for k, v in OmegaConf.to_container(cfg.model).items() if isinstance(v, dict) for j in v}
        assert leaves - {"model.name"} <= set(RULES), (option, leaves - set(RULES))
    assert set(RULES["model.tokenizer.kind"].allowed.split(" | ")) == set(TOKENIZERS.names())


def test_the_model_bounds_are_what_the_models_accept():
    """At each bound the model builds (depth 0 is a linear model; a dropout just under 1); past it torch refuses
    (dropout above 1, heads that do not divide the width) or the model has no units (width 0)."""
    from transformers import BertConfig, BertModel

    from salsa.models.registry import MODELS
    from salsa.models.small import mlp

    class Data:
        input_shape, num_classes = (1, 8, 8), 10
    validate(compose_cfg("model.depth=0", "model.width=1", "model.dropout=0.999"))
    net = mlp(compose_cfg("model.depth=0").model, Data)
    assert [type(m).__name__ for m in net] == ["Flatten", "Linear"]
    assert MODELS["cnn"].build(compose_cfg("model=cnn", "model.width=1").model, Data)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError):
        torch.nn.Dropout(1.5)
    with pytest.raises(ValueError, match="not a multiple of the number of attention heads"):
        BertModel(BertConfig(hidden_size=65, num_attention_heads=2, num_hidden_layers=1, intermediate_size=4, vocab_size=10))
    with pytest.raises(UserError, match="model.hidden=65: must be divisible by model.heads=2"):
        validate(compose_cfg("dataset=rotten_tomatoes", "model=bert_tiny", "model.hidden=65"))
    with pytest.warns(UserWarning, match="zero-element tensors"):  # what width 0 would train: no units
        assert mlp(compose_cfg("model.width=0").model, Data)[1].weight.numel() == 0


def test_the_largest_seed_goes_through_the_analysis(tmp_path, capsys):
    """2**53, the largest seed the schema takes, comes out of the analysis exactly, also beside a run directory
    without a summary (whose missing seed turns the column to floats); 2**53 + 1 would come out as 2**53."""
    for seed in (0, 2**53):
        out = run_py(*FAST, f"seed={seed}", f"paths.root={tmp_path}")
        assert out.returncode == 0, out.stderr
    lone = tmp_path / "runs" / "no-summary"
    lone.mkdir()
    (lone / "metrics.jsonl").write_text("")
    runs = collect_runs([tmp_path / "runs"])
    assert sorted(runs["seed"].dropna().tolist()) == [0, 2**53]
    assert float(2**53 + 1) == 2**53  # why the schema stops there
    # a summary with a seed past it (written before the bound, or edited) is one line, not a pandas traceback
    [big] = runs.loc[runs["seed"] == 2**53, "run_dir"]
    summary = json.loads((Path(big) / "summary.json").read_text())
    (Path(big) / "summary.json").write_text(json.dumps({**summary, "seed": 2**64 - 1}))
    assert analysis_main(["--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-figures"]) == 2
    assert f"summary.json's seed is {2**64 - 1}, not an integer from 0 to {2**53}" in capsys.readouterr().err


def test_calibrate_refuses_what_run_py_refuses(tmp_path, capsys):
    base = ["--grid", str(TINY), "--tasks", "digits", "--steps", "1", "--warmup", "0", "--out", str(tmp_path / "out")]
    for override in ("+trainer.lr=0.1", "optimizer.name=torch_adamw", "~seed", "seed=1\u200b"):
        with pytest.raises(UserError) as refused:
            check_command_line([override], CONF)
        assert calibrate([*base, override]) == 2
        assert capsys.readouterr().err == f"error: {refused.value}\n"
    assert calibrate([*base, "model.width=0"]) == 2  # validated before the first measurement
    assert capsys.readouterr().err == "error: digits torch_sgd fp32: model.width=0: must be an integer >= 1\n"
    assert not (tmp_path / "out").exists()



def test_a_cell_averages_only_runs_of_one_config(tmp_path):
    """Real runs filed under one cell with other configs (as a careless sweep or a copied results root leaves them:
    another step budget, a deeper model, another lr at lr_choice paper): none of the cell's runs is averaged, each is
    listed in missing_cells with the difference named; a cell of one config beside them is averaged as before."""
    root = f"paths.root={tmp_path}"
    for args in (["seed=0,1", "trainer.max_steps=3"], ["seed=2", "trainer.max_steps=2"],        # ADAM_SaLSa(ours)
                 ["optimizer=torch_adam", "seed=0,1"], ["optimizer=torch_adam", "seed=2", "optimizer.lr=0.01"],
                 ["optimizer=torch_sgd", "seed=0,1,2"],
                 ["optimizer=ours_sls_adam", "seed=0"], ["optimizer=ours_sls_adam", "seed=1", "model.depth=1"]):
        out = run_py("--multirun", *FAST, root, *args)
        assert out.returncode == 0, out.stderr
    runs = collect_runs([tmp_path / "runs"])
    refused = runs.set_index(["column", "seed"])["refused"]
    for seed in (0, 1, 2):
        assert refused[("ADAM_SaLSa(ours)", seed)].startswith(
            "its cell holds runs of 2 configs (trainer.max_steps 3 vs 2), so none is averaged"), refused
        assert "its cell holds runs of 2 configs (optimizer.lr 0.001 vs 0.01)" in refused[("ADAM(paper)", seed)]
        assert refused[("SGD(paper)", seed)] == ""
    assert all("(model.depth 2 vs 1)" in refused[("ADAM_SLS(ours)", seed)] for seed in (0, 1))
    cells, _ = select_cells(runs)
    assert set(cells["column"]) == {"SGD(paper)"} and len(cells) == 3

    out = subprocess.run([sys.executable, "-m", "analysis", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "results"),
                          "--no-figures", "--planned-seeds", "3"], cwd=CONF.parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    missing = (tmp_path / "results" / "tables" / "missing_cells.csv").read_text()
    assert missing.count("trainer.max_steps 3 vs 2") == 3 and missing.count("optimizer.lr 0.001 vs 0.01") == 3


def test_differences_name_each_key_and_count_the_rest():
    assert differences([{"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3]}, {"a": 2}]) == "a 1 vs 1 vs 2; b [1, 2] vs [1, 3] vs absent"
    many = [{f"k{i}": i for i in range(7)}, {f"k{i}": -i for i in range(7)}]
    assert differences(many) == "k1 1 vs -1; k2 2 vs -2; k3 3 vs -3; k4 4 vs -4; and 2 more keys"
    assert differences([{"a": 1}, None]) == "config.yaml missing or unreadable in 1 of them"


def test_the_cell_config_leaves_out_the_seed_and_lr_only():
    """Two configs that differ in the seed and the lr share a cell_config; any other key tells them apart, and the
    run id is the hash it always was (the run ids of unchanged configs stay)."""
    base = compose_cfg("optimizer=torch_adam", "seed=0")
    same = compose_cfg("optimizer=torch_adam", "seed=7", "optimizer.lr=0.5")
    assert cell_config(base) == cell_config(same) and "optimizer.lr" in flat(OmegaConf.to_container(base, resolve=True))
    assert "seed" not in cell_config(base) and "paths.root" not in cell_config(base)
    assert cell_config(compose_cfg("optimizer=torch_adam", "trainer.max_steps=5")) != cell_config(base)
    assert identify(base).id == "1962ce770140"  # as before these checks (the CPU tier's results/ name their runs so)
    assert identify(compose_cfg("experiment=cpu_tier_digits_mlp", "optimizer=salsa", "seed=3")).id == "9d4a18f9ea19"


def test_a_value_that_does_not_resolve_is_named_by_the_schema():
    """What the command line's check cannot see (an interpolation written in a config file, a composition from code)
    the schema names with its key before anything starts."""
    with pytest.raises(UserError, match=r"^paths\.data=\$\{oc\.env:SALSA_TEST_UNSET_VARIABLE\}: cannot be resolved \(.*"
                                        r"SALSA_TEST_UNSET_VARIABLE.*\); set what it names or give paths\.data on the command line$"):
        validate(compose_cfg("paths.data=${oc.env:SALSA_TEST_UNSET_VARIABLE}"))
    with pytest.raises(UserError, match=r"^trainer\.limit=\$\{trainer\.nothing\}: cannot be resolved"):
        validate(compose_cfg("trainer.limit=${trainer.nothing}"))
