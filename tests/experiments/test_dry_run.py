"""--dry-run: every run listed with its status, the counts, the commands for what is missing, the estimate."""
import json
import math
import re

from omegaconf import OmegaConf

from experiments.reproduce import jobs as J
from experiments.reproduce.grid import load
from experiments.reproduce.plan import Composer, plan
from salsa.contract.runid import identify


def numbers(out: str) -> dict:
    planned = int(re.search(r"planned runs: (\d+)", out).group(1))
    done = re.search(r"already finished: (\d+), diverged \(terminal\): (\d+), to resume: (\d+), to run: (\d+)", out)
    total, left = map(float, re.search(r"compute estimate: ([\d.e+]+) A100-hours in all, ([\d.e+]+) A100-hours left", out).groups())
    return {"planned": planned, "finished": int(done.group(1)), "diverged": int(done.group(2)),
            "to_run": int(done.group(4)), "total": total, "left": total and left}


def fake_summary(run, status="finished", val_loss=1.0):
    """A summary (and the config.yaml that names the directory, as run.py writes it) of a run that did not train."""
    with Composer(run.run_dir.parents[1]) as composer:
        cfg = composer.compose(run.job.args())
    where = identify(cfg)
    assert where.path == run.run_dir
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (run.run_dir / "summary.json").write_text(json.dumps({
        "schema": 1, "status": status, "run_id": where.id, "config_hash": where.config_hash,
        "error": None if status == "finished" else "SGD step 3: the loss is nan.",
        "metrics": {"val_loss_final": val_loss if status == "finished" else None}, "totals": {"steps": run.steps, "wall_time_s": 1.0}}))


def test_paper_dry_run_counts_lists_and_estimates(tmp_path, run_cli):
    grid = load("paper")
    status, out, _ = run_cli("--tier", "paper", "--dry-run", "--root", tmp_path)
    assert status == 0
    main = sum(len(t.optimizers) for t in grid.tasks.values()) * 5
    tune = sum(len(lrs) for t in grid.tasks.values() for lrs in t.tune.values())
    tuned = sum(len(t.tune) for t in grid.tasks.values()) * 4          # the tuning seed's run is the grid's
    n = numbers(out)
    assert n == {**n, "planned": main + tune + tuned, "finished": 0, "to_run": main + tune + tuned}
    assert out.count("[  to run]") == main + tune
    assert "experiment=paper_cifar10" in out and "hydra/launcher=local" in out
    # the estimate: steps x step cost x optimizer factor, summed; check it independently
    with Composer(tmp_path) as composer:
        runs = plan(grid, J.main_jobs(grid) + J.tune_jobs(grid), composer)
    cifar = next(r for r in runs if r.job.task == "cifar10" and r.job.optimizer == "torch_adam")
    assert cifar.steps == math.ceil(50000 / 128) * 100
    assert next(r for r in runs if r.job.task == "gpt2").steps == 600000
    per_tuned = {(t.name, o): sum(r.cost_s for r in runs if r.job.stage == "tune" and r.job.task == t.name and r.job.optimizer == o)
                 / len(lrs)
                 for t in grid.tasks.values() for o, lrs in t.tune.items()}
    expected = (sum(r.cost_s for r in runs) + 4 * sum(per_tuned.values())) / 3600
    # printed with 4 significant digits: off by at most half a unit in the 4th digit, i.e. 5e-4 relative
    assert math.isclose(n["total"], expected, rel_tol=5e-4) and math.isclose(n["left"], expected, rel_tol=5e-4)


def test_dry_run_counts_finished_runs_and_leaves_them_out(tmp_path, run_cli):
    grid = load("paper")
    with Composer(tmp_path) as composer:
        main = plan(grid, J.main_jobs(grid), composer)
        tune = plan(grid, J.tune_jobs(grid), composer)
    done = [r for r in main if r.job.task == "mrpc"]                    # a whole task finished
    for run in done:
        fake_summary(run)
    adam_grid = [r for r in tune if r.job.task == "mrpc" and r.job.optimizer == "torch_adam"]
    for i, run in enumerate(adam_grid):                                  # the grid finished: lowest val loss at i == 1
        fake_summary(run, "diverged_as_failed" if i == 4 else "finished", val_loss=abs(i - 1) + 0.5)
    (adam_grid[4].run_dir / "summary.json").write_text(
        (adam_grid[4].run_dir / "summary.json").read_text().replace("diverged_as_failed", "failed"))
    status, out, _ = run_cli("--tier", "paper", "--dry-run", "--root", tmp_path)
    n = numbers(out)
    assert status == 0 and n["finished"] == len(done) + 4 and n["diverged"] == 1
    assert n["to_run"] == n["planned"] - len(done) - 5
    assert n["left"] < n["total"]
    commands = [line for line in out.splitlines() if "run.py --multirun" in line]
    assert commands and not [c for c in commands if "-main-" in c and "paper_mrpc" in c]   # mrpc's main is done
    assert [c for c in commands if "-tune-" in c and "paper_mrpc" in c and "optimizer=torch_sgd" in c]  # its SGD grid is not
    winner = adam_grid[1].job.lr
    tuned_lines = [line for line in out.splitlines() if "mrpc" in line and f"lr={winner:g} " in line and "[  to run]" in line]
    assert len(tuned_lines) == 4                                         # the winner on the 4 other seeds
