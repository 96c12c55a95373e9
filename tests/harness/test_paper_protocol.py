"""The paper's protocol from the command line: a paper data set alone brings its model and trainer (the user's
choices win), every paper task composes with every column of the grid, the micro-batch closure, the BERT head."""
import contextlib
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO, compose_cfg
from omegaconf import OmegaConf

from experiments.reproduce.grid import load
from salsa.data import Data
from salsa.models import MODELS
from salsa.optim.closure import Backpropagated
from salsa.train.build import parameter_groups
from salsa.train.loop import loss_fn, make_closure

PRESETS = {  # dataset: (model, trainer, batch size, epochs, micro-batches, grad clip, decay_2d_only)
    "cifar10": ("resnet34", "paper_image", 128, 100, 1, None, False),
    "cifar100": ("resnet34", "paper_image", 128, 100, 1, None, False),
    "imagenet": ("resnet50", "paper_imagenet", 128, 90, 1, None, False),
    **{t: ("bert", "paper_bert", 32, 5, 1, None, False) for t in ("sst2", "mrpc", "qnli", "mnli")},
    "openwebtext": ("gpt2", "paper_gpt2", 504, 35, 28, 1.0, True),
    "digits": ("mlp", "default", 64, 5, 1, None, False),   # offline data sets keep their defaults
    "mnist1d": ("mlp", "default", 64, 5, 1, None, False),
}


@pytest.mark.parametrize("dataset", PRESETS)
def test_a_data_set_alone_brings_its_paper_model_and_trainer(dataset):
    cfg = compose_cfg(f"dataset={dataset}")
    t = cfg.trainer
    assert (cfg.model.name, t.name, t.batch_size, t.epochs, t.micro_batches, t.grad_clip, t.decay_2d_only) == PRESETS[dataset]
    assert t.precision == "fp32"


def test_the_users_model_trainer_and_batch_size_win():
    cfg = compose_cfg("dataset=cifar10", "model=resnet18", "trainer.batch_size=32", "trainer.precision=bf16")
    assert (cfg.model.name, cfg.trainer.name, cfg.trainer.batch_size, cfg.trainer.precision) == ("resnet18", "paper_image", 32, "bf16")
    assert compose_cfg("dataset=cifar10", "trainer=default").trainer.batch_size == 64
    assert compose_cfg("experiment=cpu_tier_rotten_tomatoes_bow").model.name == "bow"


def test_every_paper_task_composes_with_every_column_of_the_grid():
    grid = load("paper")
    nlp = {"mnli", "qnli", "mrpc", "sst2", "gpt2"}
    for task in grid.tasks.values():
        for optimizer in task.optimizers:
            cfg = compose_cfg(f"experiment={task.experiment}", f"optimizer={optimizer}")
            resolved = OmegaConf.to_container(cfg, resolve=True)
            assert resolved["optimizer"]["name"] == optimizer
            if optimizer == "salsa":   # ADAM SaLSa: the frequency rule on the NLP tasks only, as the authors ran it
                assert resolved["optimizer"]["speed_up"] is (task.name in nlp), task.name
    paper_columns = {"torch_adam", "torch_sgd", "paper_sls_adam", "paper_sls_sgd", "salsa", "paper_salsa_sgd"}
    assert paper_columns <= set(grid.tasks["cifar10"].optimizers)


def test_cfg_job_shows_the_papers_cifar10_salsa_run():
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "optimizer=salsa", "dataset=cifar10", "--cfg", "job"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["model"]["name"] == "resnet34" and cfg["trainer"]["batch_size"] == 128
    assert (cfg["optimizer"]["c"], cfg["optimizer"]["beta_s"]) == (0.3, 0.99) and cfg["dataset"]["paper"]["speed_up"] is False


def tiny_gpt2():
    torch.manual_seed(0)
    data = Data(None, None, None, kind="lm", num_classes=64, input_shape=(16,))
    cfg = OmegaConf.create({"name": "gpt2_tiny", "hidden": 32, "layers": 1, "heads": 2, "dropout": 0.0})
    return MODELS["gpt2_tiny"].build(cfg, data)


def test_the_micro_batch_closure_sums_the_gradients_clips_and_leaves_trials_alone():
    model = tiny_gpt2().double()
    tokens = torch.randint(0, 64, (8, 17), generator=torch.Generator().manual_seed(1))
    x, y = tokens[:, :-1], tokens[:, 1:]
    grads, losses = {}, {}
    for micro in (1, 4):
        model.zero_grad(set_to_none=True)
        result = make_closure(model, x, y, weight=1.0, micro=micro, autocast=contextlib.nullcontext, grad_clip=None)()
        assert isinstance(result, Backpropagated) and not result.loss.requires_grad
        losses[micro], grads[micro] = result.loss, [p.grad.clone() for p in model.parameters()]
    # float64: the whole batch vs four quarters (other matmul shapes, so other kernels, and another summation
    # order) differ only by rounding, u = 2^-53 per operation along chains of at most ~2^10 operations here (a
    # 32-wide, one-layer model, 128 tokens): <= 2^-43 = 1.1e-13 relative to the terms' magnitudes, which are O(1)
    # at initialisation. The bounds below sit 1000x above that; a micro-batch missed or counted twice moves the
    # loss and the gradients by a quarter.
    torch.testing.assert_close(losses[4], losses[1], rtol=1e-10, atol=0)
    for a, b in zip(grads[1], grads[4]):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    model.zero_grad(set_to_none=True)
    make_closure(model, x, y, weight=1.0, micro=4, autocast=contextlib.nullcontext, grad_clip=0.01)()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    # clip_grad_norm_ scales by 0.01 / (norm + 1e-6): 1e-6 / norm relative short of 0.01, < 1e-5 for a norm > 0.1
    assert torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads[4]])) > 0.1
    assert norm == pytest.approx(0.01, rel=1e-5)
    before = [p.grad.clone() for p in model.parameters()]
    with torch.no_grad():
        trial = make_closure(model, x, y, weight=1.0, micro=4, autocast=contextlib.nullcontext, grad_clip=0.01)()
    assert isinstance(trial, torch.Tensor) and trial.item() == pytest.approx(loss_fn(model(x), y).item(), rel=1e-10)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))


def test_bert_is_cls_then_one_linear_without_pooler():
    data = Data(None, None, None, kind="text", num_classes=3, input_shape=(12,), extra={"vocab_size": 50, "pad_id": 0})
    cfg = OmegaConf.create({"name": "bert_tiny", "pretrained": None, "hidden": 16, "layers": 1, "heads": 2, "intermediate": 32})
    model = MODELS["bert_tiny"].build(cfg, data).eval()
    assert not [n for n, _ in model.named_parameters() if "pooler" in n]
    assert isinstance(model.head, torch.nn.Linear) and (model.head.in_features, model.head.out_features) == (16, 3)
    x = {"input_ids": torch.randint(1, 50, (2, 12)), "attention_mask": torch.ones(2, 12, dtype=torch.long)}
    torch.testing.assert_close(model(x), model.head(model.encoder(**x).last_hidden_state[:, 0]), rtol=0, atol=0)


def test_weight_decay_on_two_dimensional_parameters_only():
    model = tiny_gpt2()
    decayed, kept = parameter_groups(model, 0.1, decay_2d_only=True)
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in kept["params"])
    assert kept["weight_decay"] == 0.0 and "weight_decay" not in decayed
    assert len(decayed["params"]) + len(kept["params"]) == len(list(model.parameters()))
    assert parameter_groups(model, 0.0, decay_2d_only=True) == list(model.parameters())
