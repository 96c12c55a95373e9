"""The grid files compose into valid Hydra configs (the real conf/) for every (task, optimizer) pair."""
import math

import pytest
from hydra import compose, initialize_config_dir

from experiments.reproduce import jobs as J
from experiments.reproduce.errors import SweepError
from experiments.reproduce.grid import CONF, load, load_file, tiers
from experiments.reproduce.plan import Composer, plan
from salsa.contract.runid import config_hash

PAPER_LINE_SEARCHES = {"paper_sls_adam", "paper_sls_sgd", "salsa", "paper_salsa_sgd"}   # the paper's four columns
LINE_SEARCHES = PAPER_LINE_SEARCHES | {"release_salsa", "ours_salsa_adam"}                   # and the two extra ones


def test_the_tiers_are_the_paper_grid_and_the_cpu_tier():
    assert {"paper", "cpu"} <= set(tiers())
    paper = load("paper")
    assert {"mnli", "qnli", "mrpc", "sst2", "gpt2", "cifar10", "cifar100", "imagenet"} <= set(paper.tasks)
    assert paper.seeds == (0, 1, 2, 3, 4)
    for task in paper.tasks.values():
        assert len(task.optimizers) == 8 and LINE_SEARCHES == set(task.optimizers) - {"torch_adam", "torch_adamw", "torch_sgd"}
        assert set(task.tune) == set(task.optimizers) - LINE_SEARCHES      # every baseline is tuned too
        for lrs in task.tune.values():                                      # log-spaced: constant ratio
            ratios = [b / a for a, b in zip(lrs, lrs[1:])]
            assert all(r > 1 for r in ratios) and max(ratios) / min(ratios) < 1.2
    cpu = load("cpu")
    assert len(cpu.tasks) >= 4 and cpu.jobs == 2 and cpu.env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("tier", ["paper", "cpu"])
def test_every_task_and_optimizer_composes_with_the_papers_settings(tier):
    grid = load(tier)
    edges = {(j.task, j.optimizer, lr) for t in grid.tasks.values() for j_opt, lrs in t.tune.items()
             for lr in (lrs[0], lrs[-1]) for j in [J.Job("tune", t.name, j_opt, 0, lr, ())]}
    jobs = [j for j in J.main_jobs(grid) if j.seed == grid.seeds[-1]] + \
           [j for j in J.tune_jobs(grid) if (j.task, j.optimizer, j.lr) in edges]   # each pair; each grid's ends
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        presets = {t.name: compose("config", overrides=[f"experiment={t.experiment}"]) for t in grid.tasks.values()}
        for job in jobs:
            cfg = compose("config", overrides=job.args())
            preset = presets[job.task]
            assert cfg.optimizer.name == job.optimizer
            assert (cfg.dataset.name, cfg.model.name, cfg.trainer.batch_size, cfg.trainer.epochs) == \
                   (preset.dataset.name, preset.model.name, preset.trainer.batch_size, preset.trainer.epochs)
            if job.stage == "tune":
                assert cfg.optimizer.lr_choice == "tuned" and math.isclose(cfg.optimizer.lr, job.lr)
            elif job.optimizer in LINE_SEARCHES:
                assert cfg.optimizer.lr_choice == "none" and "lr" not in cfg.optimizer
            else:                                                           # the paper's fixed lr and schedule
                assert cfg.optimizer.lr_choice == "paper"
                assert cfg.optimizer.lr == cfg.dataset.paper_lr[job.optimizer.removeprefix("torch_")].lr


def test_paper_settings_of_section_4():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for task in ("mnli", "qnli", "mrpc", "sst2"):
            cfg = compose("config", overrides=[f"experiment=paper_{task}", "optimizer=torch_adam"])
            assert (cfg.model.name, cfg.trainer.batch_size, cfg.trainer.epochs, cfg.dataset.max_length) == ("bert", 32, 5, 256)
            assert cfg.optimizer.lr == 2e-5 and cfg.optimizer.schedule.name == "warmup_cosine"
        for task in ("cifar10", "cifar100"):
            cfg = compose("config", overrides=[f"experiment=paper_{task}", "optimizer=torch_sgd"])
            assert (cfg.model.name, cfg.trainer.batch_size, cfg.optimizer.lr) == ("resnet34", 128, 0.1)
        cfg = compose("config", overrides=["experiment=paper_gpt2", "optimizer=torch_adamw"])
        assert (cfg.optimizer.lr, list(cfg.optimizer.betas), cfg.optimizer.weight_decay) == (6e-4, [0.9, 0.95], 0.1)
        cfg = compose("config", overrides=["experiment=paper_imagenet", "optimizer=salsa"])
        assert (cfg.model.name, cfg.optimizer.c, cfg.optimizer.beta_s, cfg.optimizer.base_opt) == ("resnet50", 0.3, 0.99, "adam")


def test_the_fast_composition_gives_the_run_ids_of_a_full_one(tmp_path):
    grid = load("paper")
    jobs = [j for j in J.main_jobs(grid) + J.tune_jobs(grid) if j.task in ("cifar10", "sst2")][::7]
    with Composer(tmp_path) as composer:
        runs = plan(grid, jobs, composer)
        for run in runs:
            full = compose("config", overrides=[*run.job.args(), f"paths.root={tmp_path}"])
            assert run.run_id == config_hash(full)[:12]
            assert run.run_dir == tmp_path / "runs" / run.run_id
    assert len({r.run_id for r in runs}) == len(runs)


def test_five_seeds_are_five_different_runs(tmp_path):
    grid = load("paper")
    jobs = [j for j in J.main_jobs(grid) if j.task == "mrpc" and j.optimizer == "salsa"]
    with Composer(tmp_path) as composer:
        assert len({r.run_id for r in plan(grid, jobs, composer)}) == 5


@pytest.mark.parametrize("edit, message", [
    (lambda g: g["tasks"]["digits"].update(optimizers=["adamm"]), "unknown optimizer(s) adamm"),
    (lambda g: g["tasks"]["digits"].update(experiment="nope"), "no preset conf/experiment/nope.yaml"),
    (lambda g: g["tuning"].update(metric="test_loss_final"), "never a test metric"),
    (lambda g: g["tasks"]["digits"]["tune"].update(torch_sgd=[]), "non-empty list of positive learning rates"),
    (lambda g: g.update(seeds=[0, 0]), "distinct integers"),
    (lambda g: g.update(launcher="pbs"), "no launcher conf/hydra/launcher/pbs.yaml"),
])
def test_grid_mistakes_are_named(tmp_path, edit, message):
    import yaml

    from tests.experiments.conftest import TINY
    raw = yaml.safe_load(TINY.read_text())
    edit(raw)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SweepError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_file(path)


def test_user_mistakes_exit_2_without_a_traceback(run_cli):
    status, _, err = run_cli("--tier", "nosuchtier", "--dry-run")
    assert status == 2 and "unknown tier 'nosuchtier'" in err and "Traceback" not in err
    status, _, err = run_cli("--tier", "cpu", "--dry-run", "--launcher", "pbs")
    assert status == 2 and "unknown launcher 'pbs'" in err
