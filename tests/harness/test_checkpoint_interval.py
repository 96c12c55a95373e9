"""When the loop saves (salsa.train.loop.Checkpoints): every checkpoint_every steps, at an epoch's end once
trainer.checkpoint_interval_s has passed, and always at the run's end."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import compose_cfg

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.train.loop import Checkpoints, Progress, TrainingState, train
from salsa.train.optimizers import build_optimizer


@pytest.mark.parametrize("interval, expected", [(0, 3), (3600, 1)])
def test_epoch_checkpoints_respect_the_interval(interval, expected):
    cfg = compose_cfg("optimizer=torch_adam", "trainer.device=cpu", "trainer.epochs=3", "trainer.limit=128",
                      f"trainer.checkpoint_interval_s={interval}")
    data = DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=False,
                                      tokenizer=None).take(cfg.trainer.limit)
    torch.manual_seed(0)
    model = MODELS[cfg.model.name].build(cfg.model, data)
    opt = build_optimizer(cfg.optimizer, model.parameters(), model=model,
                          steps_per_epoch=data.train.num_batches(cfg.trainer.batch_size))
    saved = []
    progress = Progress()
    train(TrainingState(model, opt, None, progress), data, cfg.trainer, seed=0, device=torch.device("cpu"),
          files=SimpleNamespace(record=lambda r: None, step_loss=lambda loss: None),
          checkpoints=Checkpoints(lambda: saved.append(progress.step), every=0, interval_s=interval))
    assert len(saved) == expected and saved[-1] == progress.step


def test_the_policy_decides_on_steps_on_the_clock_at_epoch_ends_and_always_at_the_end():
    now = [0.0]
    saves = Checkpoints(lambda: None, every=10, interval_s=60.0, clock=lambda: now[0])
    assert saves.due(10, epoch_end=False, last=False) and not saves.due(5, epoch_end=False, last=False)
    assert not saves.due(5, epoch_end=True, last=False)       # an epoch's end before the interval has passed
    now[0] = 61.0
    assert saves.due(5, epoch_end=True, last=False)
    assert not saves.due(5, epoch_end=False, last=False)      # mid-epoch the clock never decides
    saves()
    assert not saves.due(7, epoch_end=True, last=False)       # a save starts the interval again
    assert saves.due(7, epoch_end=False, last=True)
