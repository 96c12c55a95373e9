"""The analysis averages only what should be averaged: runs not finished, with files that do not match their summary,
with zero training steps, or in a cell that holds runs of several configs are left out of every mean and listed with the reason."""
import json
import shutil

from omegaconf import OmegaConf

from analysis.cli import main
from salsa.contract.runid import config_hash
from salsa.contract.verify import vouch

from .conftest import PAPER_CSV, read_csv
from .runtree import write_run


def edit_summary(run_dir, **changes):
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = summary
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    path.write_text(json.dumps(summary))


def test_zero_step_unfinished_and_duplicate_runs_are_refused_with_the_reason(tmp_path):
    root = tmp_path / "runs"
    for seed, final in enumerate((0.1, 0.2, 0.3)):
        write_run(root, "digits-mlp", "torch_adam", "paper", 1e-3, seed, final)
        write_run(root, "digits-mlp", "ours_salsa_adam", "none", None, seed, final / 10)
    untrained = write_run(root, "digits-mlp", "torch_sgd", "paper", 0.1, 0, 2.3)
    edit_summary(untrained, **{"totals.steps": 0, "epochs": 0})
    write_run(root, "digits-mlp", "torch_sgd", "paper", 0.1, 1, 0.5, status="running")
    # the same (task, optimizer, lr, seed) as `original` under another config (e.g. other epochs): another run id
    [seed0_adam] = [d for d in root.iterdir()
                    if json.loads((d / "summary.json").read_text())["optimizer"] == "torch_adam"
                    and json.loads((d / "summary.json").read_text())["seed"] == 0]
    config = OmegaConf.load(seed0_adam / "config.yaml")
    config.epochs = 7
    twin = root / config_hash(config)[:12]
    shutil.copytree(seed0_adam, twin)
    (twin / "config.yaml").write_text(OmegaConf.to_yaml(config))
    edit_summary(twin, run_id=twin.name, config_hash=config_hash(config), epochs=7, **{"metrics.final_train_loss": 9.0})

    out = tmp_path / "results"
    assert main(["--root", str(root), "--out", str(out), "--planned-seeds", "3", "--paper-csv", str(PAPER_CSV)]) == 0
    table = read_csv(out / "tables" / "final_train_loss.csv").set_index(["task", "column"])
    assert ("digits-mlp", "ADAM(paper)") not in table.index  # its cell holds runs of two configs: none averaged, 9.0 nowhere
    assert ("digits-mlp", "SGD(paper)") not in table.index  # its 0-step run and its running one
    report = read_csv(out / "tables" / "missing_cells.csv")
    problems = dict(zip(report["run_id"].fillna(""), report["problem"]))
    assert problems[untrained.name] == "0 training steps: its metrics are those of the untrained model (not averaged)"
    assert problems[twin.name].startswith("its cell holds runs of 2 configs (epochs ") and "7" in problems[twin.name]
    assert problems[seed0_adam.name] == problems[twin.name]
    assert any(p == "run running (not averaged)" for p in problems.values())
    runs = read_csv(out / "tables" / "runs.csv").set_index("run_id")
    assert runs["refused"].fillna("").eq("").sum() == 3  # the 3 salsa runs


def test_only_zero_step_runs_is_a_clear_error(tmp_path, capsys):
    run_dir = write_run(tmp_path / "runs", "digits-mlp", "ours_salsa_adam", "none", None, 0, 0.1)
    edit_summary(run_dir, **{"totals.steps": 0})
    assert main(["--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--paper-csv", str(PAPER_CSV)]) == 2
    assert "finished but refused: 0 training steps" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_runs_whose_files_do_not_match_their_summary_are_refused_with_the_command_to_rerun(tmp_path):
    """A finished summary vouches for its files (salsa.contract.verify.vouch, as run.py writes it); a run whose
    metrics.jsonl was emptied or whose train_loss.f32 changed after it finished is listed, never averaged."""
    root = tmp_path / "runs"
    runs = [write_run(root, "digits-mlp", "torch_adam", "paper", 1e-3, seed, final) for seed, final in enumerate((0.1, 0.2, 0.3))]
    (runs[2] / "train_loss.f32").write_bytes(bytes(40))
    for seed, run_dir in enumerate(runs):
        edit_summary(run_dir, files=vouch(run_dir), **{"env.argv": ["run.py", "optimizer=torch_adam", f"seed={seed}"]})
    (runs[1] / "metrics.jsonl").write_text("")
    (runs[2] / "train_loss.f32").write_bytes(bytes(39) + b"\x01")  # same size, other contents

    out = tmp_path / "results"
    assert main(["--root", str(root), "--out", str(out), "--planned-seeds", "3", "--paper-csv", str(PAPER_CSV)]) == 0
    adam = read_csv(out / "tables" / "final_train_loss.csv").set_index(["task", "column"]).loc[("digits-mlp", "ADAM(paper)")]
    assert (adam["n"], adam["mean"]) == (1, 0.1)
    problems = dict(zip(read_csv(out / "tables" / "missing_cells.csv")["run_id"].fillna(""),
                        read_csv(out / "tables" / "missing_cells.csv")["problem"]))
    assert problems[runs[1].name].startswith("files do not match summary.json: metrics.jsonl has 0 lines, 0 bytes")
    assert problems[runs[1].name].endswith("run it again with: python run.py optimizer=torch_adam seed=1 (not averaged)")
    assert problems[runs[2].name].startswith("files do not match summary.json: train_loss.f32 has 40 bytes, sha256 ")
    assert runs[0].name not in problems
