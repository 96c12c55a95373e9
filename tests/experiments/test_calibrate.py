"""make calibrate: real cut-down runs of a tier's (task, optimizer, precision) on this machine -> a cost file that the
dry run's estimate then uses, line by line, with the machine and the date; the hand-recorded H200 figures."""
import json
from types import SimpleNamespace

from experiments.reproduce import costs as C
from experiments.reproduce import jobs as J
from experiments.reproduce.calibrate import main as calibrate
from experiments.reproduce.calibrate import slug
from experiments.reproduce.cli import summary_text
from experiments.reproduce.grid import load, load_file
from experiments.reproduce.plan import Composer, plan
from experiments.reproduce.report import estimate_lines

from .conftest import TINY


def test_calibration_times_real_steps_and_the_estimate_uses_them(tmp_path, capsys):
    status = calibrate(["--grid", str(TINY), "--steps", "3", "--warmup", "1", "--out", str(tmp_path)])
    assert status == 1                                                  # the broken task cannot start: listed, not fatal
    [path] = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["machine"] == C.machine() and path.stem == slug(C.machine())
    entries = {e["key"]["optimizer"]: e for e in doc["entries"]}
    assert set(entries) == {"torch_sgd", "ours_salsa_adam"} and all(e["task"] == "digits" for e in entries.values())
    for e in entries.values():
        assert e["steps_timed"] == 3 and 0 < e["step_s"] < 5 and e["key"]["precision"] == "fp32" and not e["includes_eval"]
        assert e["device"] == C.machine() and e["torch"] and e["date"].startswith("20")
    assert entries["ours_salsa_adam"]["forwards_per_step"] > entries["torch_sgd"]["forwards_per_step"] == 1   # trial forwards
    assert {e["task"] for e in doc["not_measured"]} == {"broken"} and "UserError" in doc["not_measured"][0]["error"]
    assert "| digits | mlp | 64 |" in path.with_suffix(".md").read_text()
    assert "2 of 4 measured" in capsys.readouterr().out

    grid = load_file(TINY)
    costs = C.Costs(C.load(tmp_path), C.machine())
    with Composer(tmp_path / "runs") as composer:
        runs = plan(grid, J.main_jobs(grid), composer, costs)
    digits = [r for r in runs if r.job.task == "digits"]
    assert all(r.measured and r.cost_s == r.steps * r.measured.step_s for r in digits)
    assert all(r.measured is None for r in runs if r.job.task == "broken")
    lines = "\n".join(estimate_lines(grid, {"main": runs}, [], C.machine(), 2))
    assert f"4 runs, {sum(r.cost_s for r in digits) / 3600:.4g} h: measured on {C.machine()}" in lines
    assert "assumed (tiny_grid.yaml)" in lines and "still assumed (task/optimizer): broken/ours_salsa_adam, broken/torch_sgd" in lines
    assert f"wall time on this machine ({C.machine()}): {sum(r.cost_s for r in digits) / 2 / 3600:.4g} h for the 4 of 8 runs" in lines


def test_a_second_calibration_replaces_the_same_keys_only(tmp_path):
    args = ["--grid", str(TINY), "--tasks", "digits", "--steps", "2", "--warmup", "0", "--out", str(tmp_path)]
    assert calibrate([*args, "--optimizers", "torch_sgd"]) == 0
    assert calibrate([*args, "--optimizers", "torch_sgd", "ours_salsa_adam"]) == 0
    [path] = tmp_path.glob("*.json")
    assert sorted(e["key"]["optimizer"] for e in json.loads(path.read_text())["entries"]) == ["ours_salsa_adam", "torch_sgd"]
    assert calibrate([*args, "--optimizers", "torch_adam"]) == 2                # selects nothing: a usage error


def test_the_gpu_tier_fits_a_day_on_an_h200_and_says_what_is_measured(tmp_path, run_cli):
    grid = load("gpu")
    assert {t.experiment for t in grid.tasks.values()} == {"paper_cifar10", "paper_cifar100", "paper_sst2", "paper_mrpc"}
    assert len(grid.seeds) == 5 and set(grid.tasks["cifar10"].optimizers) >= {"salsa", "ours_salsa_adam", "torch_adam", "torch_sgd"}
    status, out, _ = run_cli("--tier", "gpu", "--dry-run", "--root", tmp_path)
    assert status == 0
    total = float(out.split("compute estimate: ")[1].split(" H200-hours")[0])
    assert 5 < total < 24
    # the hand-recorded H200 figures are the measured lines: CIFAR-10 at the paper's batch in fp32
    assert "measured on NVIDIA H200 (results/calibration/h200-hand-recorded.json" in out
    measured = [line for line in out.splitlines() if line.startswith("  [") and "measured on NVIDIA H200" in line]
    assert measured and {line.split()[4] for line in measured} == {"torch_adam", "salsa", "ours_salsa_adam"}
    assert all(line.split()[3] == "cifar10" for line in measured)
    assert "still assumed (task/optimizer): cifar10/paper_salsa_sgd" in out and "wall time on this machine" in out
    assert "what this tier can and cannot test: Can test: claim 3" in out and "Cannot test: the other" in out
    report = summary_text(grid, {"main": []}, SimpleNamespace(launched=0), [], [], [], 1.0, "make reproduce-gpu", [])
    assert f"## What this tier can and cannot test\n\n{grid.scope}\n" in report
