"""End-of-epoch checkpoints follow trainer.checkpoint_interval_s; the run's end is always saved."""
from pathlib import Path

import pytest
import torch
from conftest import compose_cfg

from salsa.data import DATASETS
from salsa.models import MODELS
from salsa.train.loop import Progress, train
from salsa.train.optimizers import OPTIMIZERS


@pytest.mark.parametrize("interval, expected", [(0, 3), (3600, 1)])
def test_epoch_checkpoints_respect_the_interval(interval, expected):
    cfg = compose_cfg("optimizer=adam", "trainer.device=cpu", "trainer.epochs=3", "trainer.limit=128",
                      f"trainer.checkpoint_interval_s={interval}")
    data = DATASETS[cfg.dataset.name](cfg.dataset, data_root=Path(cfg.paths.data), download=False,
                                      tokenizer=None).take(cfg.trainer.limit)
    torch.manual_seed(0)
    model = MODELS[cfg.model.name].build(cfg.model, data)
    opt = OPTIMIZERS["adam"](cfg.optimizer, model.parameters(), model, data.train.num_batches(cfg.trainer.batch_size))
    saved = []
    progress = Progress()
    train(model, data, opt, None, cfg.trainer, seed=0, device=torch.device("cpu"), progress=progress,
          record=lambda r: None, checkpoint=lambda: saved.append(progress.step))
    assert len(saved) == expected and saved[-1] == progress.step
