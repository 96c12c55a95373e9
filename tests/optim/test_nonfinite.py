"""NaN/Inf in the loss or any gradient: a clear error naming the step, nothing changed."""
import pytest
import torch
from torch import nn

from salsa import SLS, NonFiniteError, SaLSa
from salsa.optim.salsa import SEARCH
from salsa.reference import AdamSLS, ReleaseSaLSA
from tests.optim.helpers import batches, make_mlp, train

OPTIMIZERS = {"salsa": SaLSa, "sls": SLS, "reference_adam_sls": AdamSLS, "reference_salsa": ReleaseSaLSA}


def snapshot(model, opt):
    """Parameters, every per-parameter state tensor, and the search's scalars."""
    params = [p.detach().clone() for p in model.parameters()]
    states = [{k: v.clone() for k, v in opt.state[p].items()} for p in model.parameters()]
    return params, states, dict(opt.line_search_state)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("poison", ["loss", "last-gradient-element"])
def test_non_finite_raises_and_leaves_everything(name, poison):
    model = make_mlp()
    opt = OPTIMIZERS[name](model.parameters())
    data = batches(3)
    train(model, opt, data[:2])
    params, states, scalars = snapshot(model, opt)
    x, y = data[2]
    last = list(model.parameters())[-1]

    def inf_in_last_element(grad):
        grad = grad.clone()
        grad.view(-1)[-1] = float("inf")
        return grad

    def closure():
        loss = nn.functional.cross_entropy(model(x), y)
        return loss * float("nan") if poison == "loss" else loss

    hook = last.register_hook(inf_in_last_element) if poison != "loss" else None
    with pytest.raises(NonFiniteError, match="step 3") as err:
        opt.step(closure)
    if hook:
        hook.remove()
    if poison != "loss":
        assert "gradients of 1 parameter tensor" in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), params))
    assert opt.line_search_state == scalars
    assert all(
        state.keys() == opt.state[p].keys() and all(torch.equal(v, opt.state[p][k]) for k, v in state.items())
        for state, p in zip(states, model.parameters())
    )


@pytest.mark.parametrize("poison", ["loss", "last-gradient-element"])
def test_a_step_without_a_search_changes_nothing_and_raises_at_the_next_sync(poison):
    """Steps without a search do not wait for the device: the fused kernel skips a non-finite step, and its
    NonFiniteError comes at the next read (here last_step_stats), naming that step."""
    model = make_mlp()
    opt = SaLSa(model.parameters())
    data = batches(40)
    for x, y in data:
        params, states, _ = snapshot(model, opt)
        steps = opt.line_search_state["steps"]
        if opt._plan(steps + 1, opt.line_search_state["since_search"] + 1, opt._interval()) != SEARCH:
            break  # the next step is one without a search
        opt.step(lambda: nn.functional.cross_entropy(model(x), y))
    else:
        pytest.fail("no step without a search in 40 steps")
    last = list(model.parameters())[-1]
    hook = last.register_hook(lambda g: g.index_fill(0, torch.tensor([0]), float("nan"))) if poison != "loss" else None
    opt.step(lambda: nn.functional.cross_entropy(model(x), y) * (float("inf") if poison == "loss" else 1.0))
    if hook:
        hook.remove()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), params))
    assert all(all(torch.equal(v, opt.state[p][k]) for k, v in state.items()) for state, p in zip(states, model.parameters()))
    with pytest.raises(NonFiniteError, match=f"step {steps + 1}: .*skipped on the device: it changed nothing"):
        opt.last_step_stats()
    opt.step(lambda: nn.functional.cross_entropy(model(data[0][0]), data[0][1]))  # training goes on
    assert opt.last_step_stats()["step"] == steps + 2
