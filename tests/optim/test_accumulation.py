"""The closure protocol's gradient accumulation: a closure that backpropagates its micro-batches itself and returns
Backpropagated trains exactly as the plain closure over the whole batch (every optimizer on the protocol)."""
import pytest
import torch
from torch import nn

from salsa.optim import SLS, ClosureOptimizer, SaLSa
from salsa.optim.closure import Backpropagated
from salsa.reference import AdamSLS, ReleaseSaLSA

OPTIMIZERS = {
    "salsa_adam": lambda params, model: SaLSa(params, model=model),
    "salsa_sgd_every_step": lambda params, model: SaLSa(params, model=model, preconditioner="sgd", adaptive_frequency=False),
    "sls_adam": lambda params, model: SLS(params, n_batches_per_epoch=8, model=model),
    "adam": lambda params, model: ClosureOptimizer(torch.optim.Adam(params, lr=1e-2)),
    "reference_adam_salsa": lambda params, model: AdamSLS(params, c=0.3, beta_s=0.99, speed_up=True, model=model),
    "reference_sgd_sls": lambda params, model: AdamSLS(params, c=0.1, base_opt="scalar", gv_option="scalar", smooth=False,
                                                       model=model),
    "release_salsa": lambda params, model: ReleaseSaLSA(params, model=model),
}


def model_and_data(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 3)).double()
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)) for _ in range(8)]
    return model, data


def plain(model, x, y):
    return lambda: nn.functional.cross_entropy(model(x), y)


def accumulated(model, x, y, parts=4):
    def closure():
        total = 0.0
        for xi, yi in zip(x.tensor_split(parts), y.tensor_split(parts)):
            loss = nn.functional.cross_entropy(model(xi), yi) * (len(yi) / len(y))
            if torch.is_grad_enabled():
                loss.backward()
            total = total + loss.detach()
        return Backpropagated(total) if torch.is_grad_enabled() else total
    return closure


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_accumulated_micro_batches_train_like_the_whole_batch(name):
    runs = {}
    for make in (plain, accumulated):
        model, data = model_and_data()
        opt = OPTIMIZERS[name](model.parameters(), model)
        losses = [opt.step(make(model, x, y)).item() for x, y in data]
        runs[make.__name__] = (losses, [p.detach().clone() for p in model.parameters()], opt.totals())
    (loss_a, params_a, totals_a), (loss_b, params_b, totals_b) = runs["plain"], runs["accumulated"]
    # float64: the four weighted micro-batch means differ from the whole batch's mean by a few ulps (2e-16) per
    # value; over 8 smooth steps that stays many orders of magnitude below 1e-10, while a wrong gradient (doubled,
    # or missing a micro-batch) moves the parameters by O(lr) = 1e-2 or more.
    assert loss_b == pytest.approx(loss_a, rel=1e-10)
    for a, b in zip(params_a, params_b):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert totals_a == totals_b and totals_b["backwards"] == len(loss_b)   # the same searches, one backward a step
