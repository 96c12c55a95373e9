"""The loop does not wait for the device after every step: the step losses stay there until a log record, an
evaluation, a checkpoint or the end reads them all at once, and train_loss.f32 still holds every step's loss.
A non-finite step found late fails the run at that step, with no checkpoint and no record after it."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import compose_cfg

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.registry import UserError
from salsa.train.loop import Checkpoints, Progress, TrainingState, step_budget, train
from salsa.train.optimizers import build_optimizer
from salsa.train.runner import run


class Unread(torch.Tensor):
    """A step loss on the device: each read by the host (tolist, item, float) is noted with the loop's step."""
    progress: Progress = Progress()  # the running loop's
    reads: list = []

    def tolist(self):
        Unread.reads.append(Unread.progress.step)
        return super().tolist()

    def item(self):
        Unread.reads.append(Unread.progress.step)
        return super().item()

    def __float__(self):
        Unread.reads.append(Unread.progress.step)
        return super().__float__()


class Watched:
    """The real optimizer, its step losses handed to the loop as Unread tensors, its statistics' reads noted."""

    def __init__(self, opt):
        self.opt, self.losses, self.stats_read = opt, [], []

    def __getattr__(self, name):
        return getattr(self.opt, name)

    def step(self, closure):
        loss = self.opt.step(closure)
        self.losses.append(float(self.opt.last_step_loss()))  # the test's own read, not the loop's
        return loss

    def last_step_loss(self):
        return torch.tensor(self.losses[-1], dtype=torch.float32).as_subclass(Unread)

    def last_step_stats(self):
        self.stats_read.append(Unread.progress.step)
        return self.opt.last_step_stats()


@pytest.mark.parametrize("optimizer", ["ours_salsa_adam", "torch_sgd"])
@pytest.mark.parametrize("log_every, checkpoint_every", [(7, 0), (50, 5)])
def test_the_loop_reads_the_losses_only_where_it_needs_a_number(optimizer, log_every, checkpoint_every):
    cfg = compose_cfg(f"optimizer={optimizer}", "trainer.device=cpu", "trainer.max_steps=40",
                      f"trainer.log_every={log_every}", f"trainer.checkpoint_every={checkpoint_every}")
    data = DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=False, tokenizer=None)
    per_epoch = data.train.num_batches(cfg.trainer.batch_size)
    total = step_budget(cfg.trainer, per_epoch)
    torch.manual_seed(0)
    net = MODELS[cfg.model.name].build(cfg.model, data)
    opt = Watched(build_optimizer(cfg.optimizer, net.parameters(), model=net, steps_per_epoch=per_epoch))
    recorded, saved, progress = [], [], Progress()
    Unread.progress, Unread.reads = progress, []
    train(TrainingState(net, opt, None, progress), data, cfg.trainer, seed=0, device=torch.device("cpu"),
          files=SimpleNamespace(record=lambda r: None, step_loss=recorded.append),
          checkpoints=Checkpoints(lambda: saved.append(progress.step), every=checkpoint_every, interval_s=3600))
    waits = sorted({s for s in range(1, total + 1)
                    if s % log_every == 0 or s % per_epoch == 0 or s == total or s in saved})
    assert total == 40 and per_epoch < total and waits != list(range(1, total + 1))
    assert Unread.reads == waits        # one read of all the unread losses at each point, none in between
    assert opt.stats_read == waits      # the optimizer's statistics (and its deferred checks) there too
    assert recorded == opt.losses and len(recorded) == total and progress.step == total
    assert progress.loss_sum == sum(opt.losses)  # the same sum, in the same order


class NaNAt:
    """The network's outputs are NaN in the gradient evaluation of step `at` (one step; its trial forwards and the
    evaluations stay finite): a global forward hook, removed by `remove`."""

    def __init__(self, at: int):
        self.at, self.steps = at, 0
        self.handle = torch.nn.modules.module.register_module_forward_hook(self.hook)

    def hook(self, module, args, output):
        if self.steps == self.at - 1 and torch.is_grad_enabled() and isinstance(output, torch.Tensor):
            return output * float("nan")

    def __call__(self, phase: str) -> None:
        self.steps += phase == "step"

    def remove(self) -> None:
        self.handle.remove()


def small(root: Path):
    return compose_cfg("optimizer=ours_salsa_adam", "trainer.device=cpu", "trainer.max_steps=45", "trainer.log_every=7",
                       "trainer.checkpoint_every=5", f"paths.root={root}")


@pytest.fixture(scope="module")
def clean_losses(tmp_path_factory):
    _, run_dir, _ = run(small(tmp_path_factory.mktemp("clean")))
    return np.fromfile(run_dir / "train_loss.f32", "<f4"), run_dir.name


@pytest.mark.parametrize("at", [5, 12, 20, 34])  # with a search, and without one (checked late; 20: at a checkpoint)
def test_a_non_finite_step_fails_the_run_there_with_no_checkpoint_or_record_after_it(tmp_path, clean_losses, at):
    clean, run_id = clean_losses
    fault = NaNAt(at)
    try:
        with pytest.raises(UserError, match=f"failed: SaLSa step {at}: the loss is nan"):
            run(small(tmp_path / "nan"), on_phase=fault)
    finally:
        fault.remove()
    run_dir = tmp_path / "nan" / "runs" / run_id
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and f"step {at}:" in summary["error"]
    losses = np.fromfile(run_dir / "train_loss.f32", "<f4")
    assert len(losses) == at - 1 and np.array_equal(losses, clean[:at - 1])
    assert summary["metrics"]["train_loss_running_mean"] == sum(float(v) for v in losses) / len(losses)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()] \
        if (run_dir / "metrics.jsonl").exists() else []
    assert all(r["step"] < at for r in records)
    if (run_dir / "checkpoint.pt").exists():
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]["step"] < at
