"""Stop after 100 steps, save, load into a fresh optimizer, continue: bitwise the same as one run."""
import io

import pytest
import torch

from salsa import SLS, SaLSa
from salsa.reference import AdamSLS, ReleaseSaLSA
from tests.optim.helpers import batches, make_mlp, train

OPTIMIZERS = {
    "salsa_adam": lambda m: SaLSa(m.parameters(), model=m, weight_decay=0.01),
    "salsa_sgd": lambda m: SaLSa(m.parameters(), model=m, preconditioner="sgd"),
    "sls_adam": lambda m: SLS(m.parameters(), model=m, preconditioner="adam", n_batches_per_epoch=10),
    "reference_adam_sls": lambda m: AdamSLS(m.parameters(), model=m, c=0.3, beta_s=0.99, speed_up=True),
    "reference_salsa": lambda m: ReleaseSaLSA(m.parameters(), model=m),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_resume_is_bitwise_identical(name):
    data = batches(200)

    torch.manual_seed(0)
    model = make_mlp(dropout=0.2, batchnorm=True)
    opt = OPTIMIZERS[name](model)
    uninterrupted = train(model, opt, data)
    final = [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(0)
    model = make_mlp(dropout=0.2, batchnorm=True)
    opt = OPTIMIZERS[name](model)
    first = train(model, opt, data[:100])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": torch.get_rng_state()}, buffer)
    del model, opt

    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    model = make_mlp(seed=99, dropout=0.2, batchnorm=True)
    model.load_state_dict(checkpoint["model"])
    opt = OPTIMIZERS[name](model)
    opt.load_state_dict(checkpoint["opt"])
    torch.set_rng_state(checkpoint["rng"])
    second = train(model, opt, data[100:])

    assert first + second == uninterrupted
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), final))
    assert opt.totals()["steps"] == 200


def test_state_dict_holds_every_scalar_of_the_search():
    model = make_mlp()
    opt = SaLSa(model.parameters())
    train(model, opt, batches(12))
    saved = opt.state_dict()["line_search"]
    for key in ("step_size", "h", "s", "eta_fast", "eta_slow", "since_search", "steps", "forwards", "backwards"):
        assert key in saved
    assert saved["step_size"] == opt.step_size
