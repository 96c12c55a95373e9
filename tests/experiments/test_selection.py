"""The tuned baselines' selection: lowest VALIDATION loss on the tuning seed; the record traces the grid."""
import csv
import json
from pathlib import Path

from experiments.reproduce.grid import load_file
from experiments.reproduce.jobs import Job
from experiments.reproduce.plan import PlannedRun
from experiments.reproduce.selection import select, winners, write
from tests.experiments.conftest import TINY


def grid_run(lr, status, val_loss, test_loss, tmp_path):
    job = Job("tune", "digits", "sgd", 0, lr, ())
    run = PlannedRun(job, f"id{lr:g}", tmp_path / f"id{lr:g}", steps=12, cost_s=3.6)
    run.status = status
    run.summary = {"metrics": {"val_loss_final": val_loss, "test_loss_final": test_loss},
                   "totals": {"steps": 12, "wall_time_s": 2.0}}
    return run


def test_the_lowest_validation_loss_wins_never_the_test_loss(tmp_path):
    grid = load_file(TINY)
    runs = [grid_run(0.03, "finished", 0.9, 0.1, tmp_path),    # best on test, not on val
            grid_run(0.3, "finished", 0.5, 0.8, tmp_path),
            grid_run(1e30, "diverged", None, None, tmp_path)]
    [record] = [r for r in select(grid, runs) if r["optimizer"] == "sgd"]
    assert record["winner_lr"] == 0.3 and record["winner_run_id"] == "id0.3" and record["winner_val_loss_final"] == 0.5
    assert [row["status"] for row in record["grid_runs"]] == ["finished", "finished", "diverged"]
    assert record["tuning_cost"]["runs"] == 3 and record["tuning_cost"]["steps"] == 36
    assert abs(record["tuning_cost"]["estimated_cpu_core_hours"] - 3 * 3.6 / 3600) < 1e-12
    assert winners([record]) == {("digits", "sgd"): 0.3}
    written = write([record], tmp_path / "out", "test")
    data = json.loads(Path(written[0]).read_text())
    assert data["selections"][0]["lr_grid"] == [0.03, 0.3, 1e30]
    rows = list(csv.DictReader(line for line in Path(written[1]).read_text().splitlines() if not line.startswith("#")))
    assert rows[0]["winner_lr"] == "0.3" and rows[0]["val_loss_per_lr"] == "0.9 0.5 diverged"


def test_no_winner_while_the_grid_is_incomplete(tmp_path):
    grid = load_file(TINY)
    runs = [grid_run(0.03, "finished", 0.9, 0.1, tmp_path), grid_run(0.3, "missing", None, None, tmp_path)]
    [record] = select(grid, runs)
    assert record["winner_lr"] is None and "lr 0.3 missing" in record["not_selected_because"]
    assert winners([record]) == {}
