"""Config groups map 1:1 to registries, presets compose, baselines take the paper's settings, and the run
directory and its W&B mirror follow docs/run-directory.md."""
import json

import pytest
import torch
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.registry import UserError
from salsa.train.loggers import LOGGERS
from salsa.train.optimizers import SCHEDULES
from salsa.train.runner import run

REGISTRIES = {"dataset": DATASETS, "model": MODELS, "logger": LOGGERS}  # optimizers: tests/harness/test_catalogue.py


@pytest.mark.parametrize("group", REGISTRIES)
def test_each_option_is_one_yaml_named_like_its_registry_entry(group):
    files = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert files == REGISTRIES[group].names()
    for name in files:
        assert compose_cfg(f"{group}={name}")[group].name == name


def test_presets_and_every_optimizer_dataset_combination_resolve():
    for preset in sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")):
        OmegaConf.to_container(compose_cfg(f"experiment={preset}"), resolve=True)
    for optimizer in sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml")):
        for dataset in DATASETS.names():
            OmegaConf.to_container(compose_cfg(f"optimizer={optimizer}", f"dataset={dataset}").optimizer, resolve=True)
    assert compose_cfg("experiment=paper_cifar10").model.name == "resnet34"
    assert compose_cfg("optimizer=ours_salsa_adam").optimizer.c == 0.3 and compose_cfg("optimizer=ours_sls_sgd").optimizer.c == 0.1


def test_baselines_take_the_papers_lr_and_schedule_per_dataset():
    sst2 = compose_cfg("optimizer=torch_adam", "dataset=sst2").optimizer
    assert (sst2.lr, sst2.schedule.name, sst2.schedule.warmup_frac) == (2e-5, "warmup_cosine", 0.1)
    assert compose_cfg("optimizer=torch_sgd", "dataset=cifar10").optimizer.lr == 0.1
    owt = compose_cfg("optimizer=torch_adamw", "dataset=openwebtext").optimizer
    assert (owt.lr, list(owt.betas), owt.weight_decay) == (6e-4, [0.9, 0.95], 0.1)


def test_warmup_cosine_goes_up_linearly_then_down_to_the_final_fraction():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = SCHEDULES["warmup_cosine"](opt, 100, warmup_frac=0.1, final_frac=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 10
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def small(tmp_path, *overrides):
    return compose_cfg("trainer.epochs=2", "trainer.log_every=5", "trainer.device=cpu", f"paths.root={tmp_path}", *overrides)


def test_run_directory_contract_and_reproducibility(tmp_path):
    summary, run_dir, _ = run(small(tmp_path / "a", "optimizer=torch_adam"))
    again, _, _ = run(small(tmp_path / "b", "optimizer=torch_adam"))
    other_seed, _, _ = run(small(tmp_path / "c", "optimizer=torch_adam", "seed=1"))
    assert again["metrics"] == summary["metrics"] and other_seed["metrics"] != summary["metrics"]
    assert (summary["optimizer"], summary["lr_choice"], summary["lr"], summary["seed"], summary["task"]) == \
           ("torch_adam", "paper", 1e-3, 0, "digits-mlp")
    assert summary["run_id"] == run_dir.name == summary["config_hash"][:12] and summary["schema"] == 1
    assert set(summary["metrics"]) == {"final_train_loss", "train_loss_running_mean", "val_loss_final", "val_acc_final",
                                       "val_loss_best", "val_acc_peak", "test_loss_final", "test_acc_final"}
    assert {"steps", "wall_time_s", "forwards", "backwards", "line_searches", "peak_memory_bytes"} <= set(summary["totals"])
    assert {"git_commit", "git_dirty", "versions", "hardware"} <= set(summary["env"]) and summary["env"]["versions"]["torch"]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if r["kind"] == "step"]
    assert set(steps[0]) == {"kind", "step", "epoch", "loss", "step_size", "line_search", "backtracks", "forwards",
                             "backwards", "step_time_s", "samples_per_s"} and steps[0]["step_size"] == 1e-3
    evals = [r for r in lines if r["kind"] == "eval"]
    assert [(r["epoch"], r["split"]) for r in evals] == [(1, "val"), (1, "test"), (2, "val"), (2, "test")]
    assert lines[-1]["kind"] == "final" and lines[-1]["final_train_loss"] == summary["metrics"]["final_train_loss"]
    assert OmegaConf.load(run_dir / "config.yaml").optimizer.lr == 1e-3
    torch.load(run_dir / "checkpoint.pt", weights_only=True)


def test_bf16_autocast_runs_and_clipping_and_micro_batches_work_for_every_optimizer(tmp_path):
    summary, _, _ = run(small(tmp_path, "trainer.precision=bf16", "trainer.epochs=1"))
    assert summary["status"] == "finished"
    # the closure owns backward, so SaLSa's gradient is clipped too: a tiny max norm changes the run
    plain = run(small(tmp_path / "plain", "trainer.epochs=1"))[0]
    clipped = run(small(tmp_path / "clip", "trainer.grad_clip=1e-3", "trainer.micro_batches=2", "trainer.epochs=1"))[0]
    assert clipped["status"] == "finished" and clipped["metrics"] != plain["metrics"]
    assert run(small(tmp_path, "optimizer=torch_sgd", "trainer.grad_clip=1.0", "trainer.epochs=1"))[0]["status"] == "finished"
    with pytest.raises(UserError, match="trainer.micro_batches=65 must be an integer from 1 to trainer.batch_size=64"):
        run(small(tmp_path, "trainer.micro_batches=65"))


def test_wandb_offline_mirror_lives_in_the_run_dir_without_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "local-test-key-0123456789abcdef01234567")
    summary, run_dir, _ = run(small(tmp_path, "logger=wandb", "logger.mode=offline", "trainer.epochs=1"))
    [offline] = list((run_dir / "wandb").glob(f"offline-run-*-{summary['run_id']}"))
    assert any(offline.rglob("*.wandb"))
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or b"local-test-key-0123456789abcdef01234567" not in path.read_bytes()
    assert summary["run_id"] == run_dir.name  # the logger does not change the run id
    assert run(small(tmp_path, "trainer.epochs=1"))[1] == run_dir


@pytest.mark.parametrize("optimizer", ["paper_salsa_adam", "paper_salsa_sgd", "paper_sls_adam", "paper_sls_sgd",
                                       "release_salsa"])
def test_the_authors_classes_train_through_the_harness(tmp_path, optimizer):
    summary, run_dir, _ = run(small(tmp_path, f"optimizer={optimizer}"))
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in steps if r["kind"] == "step"]
    assert summary["status"] == "finished" and summary["totals"]["line_searches"] > 0
    assert summary["metrics"]["final_train_loss"] < steps[0]["loss"]  # it trained
