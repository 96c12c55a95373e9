"""run.py as a user runs it (subprocesses): the default run, idempotence, --multirun and the clear errors."""
import json
from pathlib import Path

from conftest import run_py


def summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "runs").glob("*/summary.json"))]


def test_default_run_prints_summary_and_is_idempotent(tmp_path):
    first = run_py(f"paths.root={tmp_path}")
    assert first.returncode == 0, first.stderr
    [summary] = summaries(tmp_path)
    assert (summary["status"], summary["task"], summary["optimizer"]) == ("finished", "digits-mlp", "ours_salsa_adam")
    run_dir = tmp_path / "runs" / summary["run_id"]
    assert str(run_dir) in first.stdout and "final train loss" in first.stdout
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    second = run_py(f"paths.root={tmp_path}")
    assert second.returncode == 0 and "nothing to do" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before


def test_multirun_sweeps_seeds_into_separate_run_dirs(tmp_path):
    out = run_py("--multirun", "seed=0,1", "trainer.epochs=1", f"paths.root={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert sorted(s["seed"] for s in summaries(tmp_path)) == [0, 1]
    assert len(list((tmp_path / "hydra").glob("multirun_*/[01]/.hydra/config.yaml"))) == 2


def test_unknown_option_lists_the_choices(tmp_path):
    out = run_py("optimizer=adamm", f"paths.root={tmp_path}")
    assert out.returncode != 0 and "Could not find 'optimizer/adamm'" in out.stderr
    assert "ours_salsa_adam" in out.stderr and "ours_sls_sgd" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_invalid_pair_missing_data_and_unwritable_dir_are_clear_errors(tmp_path):
    pair = run_py("model=bert", f"paths.root={tmp_path}")
    assert pair.returncode == 2 and "model=bert cannot train on dataset=digits" in pair.stderr
    missing = run_py("dataset=cifar10", "model=resnet18", "download=false", f"paths.data={tmp_path / 'nothing'}",
                     f"paths.root={tmp_path}")
    assert missing.returncode == 2 and "download=true" in missing.stderr and "Traceback" not in missing.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    unwritable = run_py(f"paths.root={tmp_path}", f"paths.runs={blocker}/runs")
    assert unwritable.returncode == 2 and "cannot write the run directory" in unwritable.stderr
    assert "paths.root=" in unwritable.stderr and "Traceback" not in unwritable.stderr
    unwritable_root = run_py(f"paths.root={blocker}/sub")  # Hydra's own log folder lives under paths.root
    assert unwritable_root.returncode == 2 and "cannot write to" in unwritable_root.stderr
    assert "Traceback" not in unwritable_root.stderr
    assert blocker.read_text() == "keep me"


def test_the_papers_cifar10_command_offline_is_a_clear_error(tmp_path):
    """`python run.py optimizer=salsa dataset=cifar10` without the data and without internet (conftest sends the
    download to a closed local port): exit 2, where to put the files, no traceback, no data written."""
    out = run_py("optimizer=salsa", "dataset=cifar10", f"paths.data={tmp_path / 'data'}", f"paths.root={tmp_path}")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "could not be downloaded" in out.stderr and "cifar-10-python.tar.gz" in out.stderr
    assert f"{tmp_path / 'data' / 'cifar10' / 'cifar-10-batches-py'}" in out.stderr
    assert not list((tmp_path / "data").rglob("data_batch_*"))


def test_nan_loss_marks_the_run_failed(tmp_path):
    out = run_py("optimizer=torch_sgd", "optimizer.lr=1e30", f"paths.root={tmp_path}")
    assert out.returncode == 2 and "failed" in out.stderr and "loss is nan" in out.stderr, out.stderr
    [summary] = summaries(tmp_path)
    assert summary["status"] == "failed" and summary["error"] and summary["metrics"]["final_train_loss"] is None
