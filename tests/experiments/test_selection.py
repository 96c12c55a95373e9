"""The tuned baselines' selection: lowest VALIDATION loss on the tuning seed; the record traces the grid."""
import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from analysis.collect import collect_runs
from analysis.selection import select_cells
from experiments.reproduce.grid import load_file
from experiments.reproduce.jobs import Job, extension_jobs, tune_jobs
from experiments.reproduce.plan import Composer, PlannedRun, plan
from experiments.reproduce.selection import select, winners, write
from tests.experiments.conftest import TINY

EDGE = Path(__file__).with_name("edge_grid.yaml")


def grid_run(lr, status, val_loss, test_loss, tmp_path):
    job = Job("tune", "digits", "torch_sgd", 0, lr, ())
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
    [record] = [r for r in select(grid, runs) if r["optimizer"] == "torch_sgd"]
    assert record["winner_lr"] == 0.3 and record["winner_run_id"] == "id0.3" and record["winner_val_loss_final"] == 0.5
    assert [row["status"] for row in record["grid_runs"]] == ["finished", "finished", "diverged"]
    assert record["tuning_cost"]["runs"] == 3 and record["tuning_cost"]["steps"] == 36
    assert abs(record["tuning_cost"]["estimated_cpu_core_hours"] - 3 * 3.6 / 3600) < 1e-12
    assert winners([record]) == {("digits", "torch_sgd"): 0.3}
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


def test_a_winner_at_the_edge_extends_the_grid_on_that_side_until_it_is_interior(tmp_path):
    grid = load_file(TINY)
    grid = dataclasses.replace(grid, max_extensions=3, tasks={"digits": dataclasses.replace(
        grid.tasks["digits"], tune={"torch_sgd": (0.1, 0.3, 1.0)})})
    runs = [grid_run(0.1, "finished", 0.9, None, tmp_path), grid_run(0.3, "finished", 0.6, None, tmp_path),
            grid_run(1.0, "finished", 0.5, None, tmp_path)]
    [record] = select(grid, runs)
    assert record["winner_at_grid_edge"] and record["extensions"] == []
    [job] = extension_jobs(grid, [record])
    assert job.stage == "tune" and job.lr == pytest.approx(1.0 / 0.3) and ("optimizer.lr", job.lr) in job.overrides
    runs.append(grid_run(job.lr, "finished", 0.7, None, tmp_path))     # worse than lr 1: the winner is interior
    [record] = select(grid, runs)
    assert record["winner_lr"] == 1.0 and not record["winner_at_grid_edge"]
    assert record["extensions"] == [job.lr] and record["lr_grid"] == [0.1, 0.3, 1.0, job.lr]
    assert extension_jobs(grid, [record]) == []
    low = [grid_run(lr, "finished", v, None, tmp_path) for lr, v in ((0.1, 0.2), (0.3, 0.6), (1.0, 0.9))]
    [job] = extension_jobs(grid, select(grid, low))                     # the bottom edge extends downwards
    assert job.lr == pytest.approx(0.1 / 3)


def test_the_sweep_extends_an_edge_winner_at_most_max_extensions_times_and_reports_it(tmp_path, run_cli):
    root, out = tmp_path / "outputs", tmp_path / "results"
    status, text, _ = run_cli("--grid", EDGE, "--root", root, "--out", out, "--no-analysis")
    assert status == 0, text
    [record] = json.loads((out / "tuning_selection.json").read_text())["selections"]
    assert record["lr_grid"] == pytest.approx([1e-3, 3e-3, 9e-3, 2.7e-2])   # two extensions of x3, then the limit
    assert record["extensions"] == pytest.approx([9e-3, 2.7e-2]) and record["winner_lr"] == pytest.approx(2.7e-2)
    assert record["winner_at_grid_edge"] and record["max_extensions"] == 2
    report = (out / "reproduce_report.md").read_text()
    assert "Grids extended because the winner sat at an edge: digits/torch_sgd + lr 0.009, 0.027" in report
    assert "Winner still at an edge after 2 extensions" in report
    # the winner then runs on the other seed; a second invocation launches nothing
    status, text, _ = run_cli("--grid", EDGE, "--root", root, "--out", out, "--no-analysis")
    assert status == 0 and "\n== " not in text


def test_the_sweep_and_the_analysis_choose_the_same_lr_from_the_same_run_directories(tmp_path, run_cli):
    spec = yaml.safe_load(TINY.read_text())             # the tiny grid's digits task alone: SGD, a grid with a diverging lr
    del spec["tasks"]["broken"]
    spec.update(optimizers=["torch_sgd"], optimizer_cost={"torch_sgd": 1.0})
    path, root = tmp_path / "grid.yaml", tmp_path / "outputs"
    path.write_text(yaml.safe_dump(spec))
    status, text, _ = run_cli("--grid", path, "--root", root, "--out", tmp_path / "results", "--no-analysis")
    assert status == 0, text
    grid = dataclasses.replace(load_file(path), root=root)

    def both():
        with Composer(root.resolve()) as composer:
            [sweep] = select(grid, plan(grid, tune_jobs(grid), composer))
        cells, record = select_cells(collect_runs([root / "runs"]))
        [analysis] = record.to_dict("records")
        return sweep, analysis, sorted(cells.loc[cells["lr_choice"] == "tuned", "seed"])

    sweep, analysis, seeds = both()                     # complete: the grid's 1e30 diverged, the winner ran on seed 1
    assert sweep["winner_lr"] in (0.03, 0.3) and analysis["winner_lr"] == sweep["winner_lr"]
    assert analysis["grid_seed"] == sweep["grid_seed"] == 0 and seeds == [0, 1]
    summary = root / "runs" / sweep["winner_run_id"] / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "interrupted"}))
    sweep, analysis, seeds = both()                     # the winner's grid run interrupted: neither chooses
    assert sweep["winner_lr"] is None and "grid incomplete" in sweep["not_selected_because"]
    assert math.isnan(analysis["winner_lr"]) and analysis["grid_seed"] == 0 and seeds == []
