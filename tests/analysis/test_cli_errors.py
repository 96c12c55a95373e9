"""Clear errors (exit code 2, a message naming the problem, no traceback) and results never overwritten."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.cli import main

from .conftest import PAPER_CSV
from .runtree import write_run

REPO = Path(__file__).parents[2]


def run_cli(root: Path, out: Path) -> tuple[int, str]:
    process = subprocess.run([sys.executable, "-m", "analysis", "--root", str(root), "--out", str(out),
                              "--paper-csv", str(PAPER_CSV), "--no-figures"],
                             cwd=REPO, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return process.returncode, process.stderr


@pytest.fixture
def previous_results(tmp_path):
    """A results folder from an earlier good run, which a failing run must leave alone."""
    table = tmp_path / "results" / "tables" / "final_train_loss.md"
    table.parent.mkdir(parents=True)
    table.write_text("earlier results")
    return tmp_path / "results", table


def test_empty_root(tmp_path, previous_results):
    (tmp_path / "runs").mkdir()
    code, stderr = run_cli(tmp_path / "runs", previous_results[0])
    assert code == 2 and "error: no runs" in stderr and "Traceback" not in stderr
    assert previous_results[1].read_text() == "earlier results"


def test_corrupt_summary_is_named(tmp_path, previous_results):
    run_dir = write_run(tmp_path / "runs", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1)
    (run_dir / "summary.json").write_text('{"schema": 1, "status": "fini')
    code, stderr = run_cli(tmp_path / "runs", previous_results[0])
    assert code == 2 and f"corrupt file {run_dir / 'summary.json'}" in stderr and "Traceback" not in stderr
    assert previous_results[1].read_text() == "earlier results"


def test_corrupt_metrics_line_is_named(tmp_path, previous_results):
    run_dir = write_run(tmp_path / "runs", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1)
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write('{"kind": "step", "step": 1\n')
    code, stderr = run_cli(tmp_path / "runs", previous_results[0])
    assert code == 2 and "Traceback" not in stderr
    assert f"corrupt file {run_dir / 'metrics.jsonl'}, line 17" in stderr  # after 10 step, 5 eval, 1 final lines


def test_summary_missing_a_field_is_named(tmp_path):
    run_dir = write_run(tmp_path / "runs", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1)
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["seed"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    code = main(["--root", str(tmp_path / "runs"), "--out", str(tmp_path / "results"), "--paper-csv", str(PAPER_CSV)])
    assert code == 2 and not (tmp_path / "results").exists()


def test_only_unfinished_runs_write_nothing(tmp_path, previous_results, capsys):
    write_run(tmp_path / "runs", "digits-mlp", "paper_salsa_adam", "none", None, 0, 0.1, status="failed")
    write_run(tmp_path / "runs", "digits-mlp", "paper_salsa_adam", "none", None, 1, 0.1, status="running")
    code = main(["--root", str(tmp_path / "runs"), "--out", str(previous_results[0]), "--paper-csv", str(PAPER_CSV)])
    assert code == 2 and "no finished runs among 2 runs (statuses: failed, running)" in capsys.readouterr().err
    assert previous_results[1].read_text() == "earlier results"
    assert sorted(p.name for p in previous_results[0].rglob("*") if p.is_file()) == ["final_train_loss.md"]


def test_missing_root(tmp_path, capsys):
    code = main(["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "results"), "--paper-csv", str(PAPER_CSV)])
    assert code == 2 and "does not exist" in capsys.readouterr().err
