"""On CUDA, every line-search trial forward sees the dropout masks of the gradient evaluation, and a step leaves the
CUDA RNG where one forward leaves it: for each class of line search, built by the harness from the real configs."""
import contextlib

import pytest
import torch
from torch import nn

from salsa.train.loop import make_closure
from salsa.train.optimizers import build_optimizer

# ours (SaLSa, SLS), the authors' AdamSLS (the paper's columns) and their release; every step searches
COLUMNS = {"ours_salsa_adam": ("optimizer.adaptive_frequency=false",), "ours_sls_adam": (), "salsa": (), "paper_sls_sgd": (),
           "release_salsa": ("optimizer.speed_up=false",)}


def model_and_batch(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Dropout(0.5), nn.Linear(64, 10)).to(device)
    g = torch.Generator(device).manual_seed(1)
    return model, torch.randn(64, 32, device=device, generator=g), torch.randint(0, 10, (64,), device=device, generator=g)


def build(compose, name, model):
    cfg = compose("dataset=cifar10", f"optimizer={name}", *COLUMNS[name])
    return build_optimizer(cfg.optimizer, list(model.parameters()), model=model, steps_per_epoch=10)


def closure(model, x, y):
    return make_closure(model, x, y, weight=1.0, micro=1, autocast=contextlib.nullcontext, grad_clip=None)


@pytest.mark.parametrize("name", COLUMNS)
def test_trials_see_the_gradient_evaluations_dropout_masks_on_cuda(name, device, compose):
    model, x, y = model_and_batch(device)
    opt = build(compose, name, model)
    masks = []
    model[2].register_forward_hook(lambda m, inp, out: masks.append((out == 0).clone()))
    for _ in range(3):
        masks.clear()
        opt.step(closure(model, x, y))
        assert len(masks) == opt.last_step_stats()["forwards"] >= 2
        assert all(torch.equal(m, masks[0]) for m in masks)


@pytest.mark.parametrize("name", COLUMNS)
def test_a_step_leaves_the_cuda_rng_where_one_forward_does(name, device, compose):
    model, x, y = model_and_batch(device)
    rng = torch.cuda if device.type == "cuda" else torch  # the dropout masks' generator
    rng.manual_seed(123)
    model(x)
    expected, cpu = rng.get_rng_state(), torch.get_rng_state()
    opt = build(compose, name, model)
    rng.manual_seed(123)
    opt.step(closure(model, x, y))
    assert opt.last_step_stats()["forwards"] >= 2
    assert torch.equal(rng.get_rng_state(), expected) and torch.equal(torch.get_rng_state(), cpu)
