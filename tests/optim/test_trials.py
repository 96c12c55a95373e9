"""Trial forwards see the gradient evaluation's randomness and leave buffers and the RNG as one forward would."""
import pytest
import torch
from torch import nn

from salsa import SLS, SaLSa
from salsa.reference import AdamSLS, ReleaseSaLSA
from tests.optim.helpers import batches, make_mlp, train

OPTIMIZERS = {
    "salsa": lambda params, **kw: SaLSa(params, adaptive_frequency=False, **kw),
    "sls": lambda params, **kw: SLS(params, **kw),
    "reference_adam_sls": lambda params, **kw: AdamSLS(params, c=0.3, beta_s=0.99, **kw),
    "reference_salsa": lambda params, **kw: ReleaseSaLSA(params, speed_up=False, **kw),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_trial_sees_the_dropout_masks_of_the_gradient_evaluation(name):
    model = make_mlp(dropout=0.5)
    masks = []
    model[2].register_forward_hook(lambda m, inp, out: masks.append((out == 0).clone()))
    opt = OPTIMIZERS[name](model.parameters(), model=model)
    for x, y in batches(5):
        masks.clear()
        opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        assert len(masks) == opt.last_step_stats()["forwards"] >= 2
        assert all(torch.equal(m, masks[0]) for m in masks)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_rng_after_a_step_is_where_one_forward_leaves_it(name):
    model = make_mlp(dropout=0.5)
    x, y = batches(1)[0]
    torch.manual_seed(123)
    nn.functional.cross_entropy(model(x), y)
    expected = torch.get_rng_state()
    opt = OPTIMIZERS[name](model.parameters())
    torch.manual_seed(123)
    opt.step(lambda: nn.functional.cross_entropy(model(x), y))
    assert opt.last_step_stats()["forwards"] >= 2
    assert torch.equal(torch.get_rng_state(), expected)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("pass_model", [True, False], ids=["model-given", "found-automatically"])
def test_batchnorm_statistics_as_after_a_single_forward(name, pass_model):
    model = make_mlp(batchnorm=True)
    reference = make_mlp(batchnorm=True)
    opt = OPTIMIZERS[name](model.parameters(), **({"model": model} if pass_model else {}))
    for x, y in batches(4):
        reference.load_state_dict(model.state_dict())
        reference(x)  # one training-mode forward on the same batch
        opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        assert opt.last_step_stats()["forwards"] >= 2
        bn, ref = model[1], reference[1]
        assert torch.equal(bn.running_mean, ref.running_mean)
        assert torch.equal(bn.running_var, ref.running_var)
        assert bn.num_batches_tracked.item() == ref.num_batches_tracked.item()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_runs_are_bitwise_reproducible(name):
    def run():
        torch.manual_seed(7)
        model = make_mlp(dropout=0.3, batchnorm=True)
        opt = OPTIMIZERS[name](model.parameters(), model=model)
        losses = train(model, opt, batches(40))
        return losses, [p.detach().clone() for p in model.parameters()], opt.step_size

    (l1, p1, s1), (l2, p2, s2) = run(), run()
    assert l1 == l2 and s1 == s2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
