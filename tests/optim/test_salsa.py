"""SaLSa's step on hand-computed numbers, the frequency rule in action, convergence, errors."""
import pytest
import torch
from torch import nn

from salsa import SLS, SaLSa
from salsa.optim.criteria import ema, search_interval
from tests.optim.helpers import batches, make_mlp, train


def test_first_sgd_step_by_hand():
    # f(w) = w^2 at w = 2: g = 4, s = 0.1 * 16 = 1.6, trial eta = 1.1 (growth * 1.0).
    # eta: 1.1 -> 0.88 -> 0.704 -> 0.5632 -> 0.45056; at 0.45056, w = 2 - 4 * 0.45056 = 0.19776,
    # f = 0.0391090176, h = 0.1 * (4 - 0.0391090176) = 0.39608909824 >= 0.5 * 0.45056 * 1.6 = 0.360448.
    # The trial before, eta = 0.5632: w = -0.2528, f = 0.06390784, h = 0.3936092 < 0.45056: rejected.
    # float64: each value takes fewer than 20 roundings of 2^-53 relative from its hand value, far below 1e-12
    w = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = SaLSa([w], preconditioner="sgd", c=0.5, beta3=0.9, frequency="paper")
    loss = opt.step(lambda: (w**2).sum())
    stats = opt.last_step_stats()
    assert loss.item() == 4.0
    assert w.item() == pytest.approx(0.19776, abs=1e-12)
    assert opt.step_size == pytest.approx(0.45056, abs=1e-12)
    assert stats["s"] == pytest.approx(1.6, abs=1e-12)
    assert stats["h"] == pytest.approx(0.39608909824, abs=1e-10)
    assert (stats["line_search"], stats["backtracks"], stats["forwards"], stats["backwards"]) == (True, 4, 6, 1)
    assert opt.totals() == dict(steps=1, forwards=6, backwards=1, line_searches=1, backtracks=4)


def test_doubling_averages_per_search_until_the_float_resolution():
    # every search smooths with beta3, however many steps after the last: s_k = 0.99 s_{k-1} + 0.01 ||g_k||^2 (P = I)
    model = make_mlp()
    opt = SaLSa(model.parameters(), preconditioner="sgd", frequency="doubling")
    gaps = []
    for k, (x, y) in enumerate(batches(200), start=1):
        before, since = opt.line_search_state["s"], opt.line_search_state["since_search"] + 1
        opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        if opt.last_step_stats()["line_search"]:
            grad_sq = sum(float((p.grad.double() ** 2).sum()) for p in model.parameters())
            # ||g||^2 reaches s through float32 (its norms and the direction's float32 tensor): 2^-22 relative is ample
            assert opt.line_search_state["s"] == pytest.approx(ema(before, grad_sq, 0.99), rel=2**-22), k
            gaps.append(since)
    assert max(gaps) > 10  # the interval grew past the paper's longest
    assert not opt.line_search_state["at_resolution"]


def test_at_the_float_resolution_doubling_forgets_per_step_and_restarts_h():
    # f(w) = 1 + 0.01 w^2 in float32 (P = I): decreases are measured while f - 1 is well above 2^-23 and not once w^2
    # falls near 1e-5; the first unresolved search restarts h from its own decrease, and from then on a search n steps
    # after the last smooths with 0.99^n
    w = nn.Parameter(torch.tensor([3.0]))
    opt = SaLSa([w], preconditioner="sgd", frequency="doubling")
    reached = None
    for k in range(1, 400):
        h, s, since = (opt.line_search_state[key] for key in ("h", "s", "since_search"))
        opt.step(lambda: 1 + 0.01 * (w**2).sum())
        stats, st = opt.last_step_stats(), opt.line_search_state
        if not stats["line_search"]:
            continue
        grad_sq = float(w.grad.double() ** 2)
        if reached is None and st["at_resolution"]:
            reached = k
            assert not st["resolved"] and h > 0
            assert abs(st["h"]) <= 0.01 * 2 * 2**-23  # (1 - 0.99) times a decrease within two roundings of 1
        beta = 0.99 ** (since + 1) if reached is not None and k > reached else 0.99
        assert st["s"] == pytest.approx(ema(s, grad_sq, beta), rel=2**-20), k
    assert reached is not None, "the float resolution was not reached"


def test_first_adam_step_by_hand():
    # Adam at k = 1: m_hat = g, v_hat = g^2, so d = g / (|g| + eps) ~ sign(g) = 1 and s = 0.1 * |g| = 0.4.
    # f(w) = w^2 at w = 2: eta = 1.1: w = 0.9, f = 0.81, h = 0.1 * 3.19 = 0.319 >= 0.5 * 1.1 * 0.4 = 0.22.
    w = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = SaLSa([w], eps=0.0, c=0.5, beta3=0.9, frequency="paper")
    opt.step(lambda: (w**2).sum())
    assert w.item() == pytest.approx(0.9, abs=1e-12)
    assert opt.step_size == 1.1  # 1.0 * 1.1, exact
    assert opt.last_step_stats()["h"] == pytest.approx(0.319, abs=1e-12)
    assert opt.last_step_stats()["s"] == pytest.approx(0.4, abs=1e-12)


def expected_interval(opt: SaLSa, st: dict) -> float:
    """L from the state before the step: doubling's own, or the paper's from the bias-corrected averages."""
    if opt.frequency == "doubling":
        return st["interval"]
    n = st["averaged"]
    return search_interval(st["eta_fast"] / (1 - 0.9**n), st["eta_slow"] / (1 - 0.99**n), 10) if n else 0.0


@pytest.mark.parametrize("frequency", ["doubling", "paper"])
def test_searches_follow_the_frequency_rule(frequency):
    model = make_mlp()
    opt = SaLSa(model.parameters(), frequency=frequency)
    since, searched, longest = 0, [], 0.0
    for k, (x, y) in enumerate(batches(300), start=1):
        st = dict(opt.line_search_state)
        interval = expected_interval(opt, st)
        opt.step(lambda: nn.functional.cross_entropy(model(x), y))
        stats = opt.last_step_stats()
        since += 1
        if st["resolved"]:  # the frequency rule, after the search that ends a back-off
            wait = 0 if st["unresolved"] else interval
        else:  # the back-off (this MLP's losses are far from float resolution: no step holds)
            wait = min(opt.max_interval, 2 ** (st["unresolved"] - 1))
        expected = k < 10 or since >= wait
        assert stats["line_search"] == expected, k
        searched.append(expected)
        if expected:
            since = 0
            assert opt.line_search_state["eta_fast"] == ema(st["eta_fast"], opt.step_size, 0.9)
            if frequency == "doubling":  # a search that keeps eta (accepted within two trials) doubles L, others halve it
                kept = stats["forwards"] <= 3 and opt.line_search_state["resolved"]
                assert opt.line_search_state["interval"] == (min(20, 2 * interval) if kept else max(1, interval / 2))
                longest = max(longest, opt.line_search_state["interval"])
        else:  # no search: eta, h, s and the averages stay
            for key in ("step_size", "h", "s", "eta_fast", "eta_slow", "interval"):
                assert opt.line_search_state[key] == st[key]
    assert all(searched[:9]) and not all(searched)
    assert opt.totals()["forwards"] == 300 + opt.totals()["line_searches"] + opt.totals()["backtracks"]
    assert frequency == "paper" or longest > 10  # doubling's interval did grow past the paper's longest


def test_every_step_searches_without_adaptive_frequency():
    model = make_mlp()
    opt = SaLSa(model.parameters(), adaptive_frequency=False)
    train(model, opt, batches(30))
    assert opt.totals()["line_searches"] == 30


QUADRATIC_OPTIMIZERS = {
    "salsa_adam": lambda p: SaLSa(p),
    "salsa_sgd": lambda p: SaLSa(p, preconditioner="sgd"),
    "sls_sgd": lambda p: SLS(p),
    "sls_adam": lambda p: SLS(p, preconditioner="adam"),
}


@pytest.mark.parametrize("name", sorted(QUADRATIC_OPTIMIZERS))
def test_converges_on_a_convex_quadratic_without_a_learning_rate(name):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 20, generator=g, dtype=torch.float64)
    A = a @ a.T / 20 + 0.1 * torch.eye(20, dtype=torch.float64)  # condition number ~ 40
    b = torch.randn(20, generator=g, dtype=torch.float64)
    solution = torch.linalg.solve(A, b)
    x = nn.Parameter(torch.zeros(20, dtype=torch.float64))
    opt = QUADRATIC_OPTIMIZERS[name]([x])
    for _ in range(600):
        opt.step(lambda: 0.5 * x @ A @ x - b @ x)
    assert (x - solution).norm() / solution.norm() < 1e-3


def test_param_groups_have_their_own_decoupled_weight_decay():
    torch.manual_seed(0)
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = SaLSa([{"params": [a], "weight_decay": 0.5}, {"params": [b]}], adaptive_frequency=False)
    # zero-loss-slope in a and b: the gradient is 0, s = 0: no search, only the decay moves a
    opt.step(lambda: (a * 0).sum() + (b * 0).sum() + 1.0)
    assert torch.equal(b, torch.ones(3))
    assert torch.equal(a, torch.full((3,), 1 - 0.5 * 1.0))  # eta = init_step_size = 1 (no growth unchecked); exact in float32


def test_clear_errors_for_protocol_mistakes():
    model = make_mlp()
    opt = SaLSa(model.parameters())
    x, y = batches(1)[0]
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="does not require grad"):
        opt.step(lambda: nn.functional.cross_entropy(model(x), y).detach())
    with pytest.raises(TypeError, match="one-element tensor"):
        opt.step(lambda: nn.functional.cross_entropy(model(x), y).item())
    with pytest.raises(ValueError, match="preconditioner"):
        SaLSa(model.parameters(), preconditioner="lion")
    with pytest.raises(ValueError, match="not saved by SaLSa"):
        opt.load_state_dict(torch.optim.Adam(model.parameters()).state_dict())


def test_the_fused_step_without_a_search_is_the_foreach_one_to_rounding():
    """A step without a search runs torch's fused AdamW kernel; from the same state it agrees with the foreach
    moments and momentum step (decay included) to rounding. Both compute m, v (a lerp against b1 m + (1 - b1) g:
    a few eps relative) and u = m_hat / (sqrt(v_hat) + eps) (sqrt(v / bc2) against sqrt(v) / sqrt(bc2): a few
    eps relative of u), then w (1 - eta wd) - eta u: so |fused - foreach| <= 8 eps (|w| + eta |u|) elementwise."""
    model = make_mlp()
    opt = SaLSa([{"params": list(model.parameters())[:2], "weight_decay": 0.1},
                 {"params": list(model.parameters())[2:]}], adaptive_frequency=False)
    train(model, opt, batches(12))  # moments of 12 steps
    x, y = batches(1, seed=7)[0]
    nn.functional.cross_entropy(model(x), y).backward()
    params = list(model.parameters())
    twin = [p.detach().clone() for p in params]
    before = [p.detach().clone() for p in params]
    states = [opt.state[p] for p in params]
    twin_states = [{k: v.clone() for k, v in st.items()} for st in states]
    k, eta, pre = 13, 0.37, opt.preconditioner
    for group in opt.param_groups:
        chosen = [i for i, p in enumerate(params) if any(p is q for q in group["params"])]
        pre.fused_step([states[i] for i in chosen], [params[i] for i in chosen], k, eta, group["weight_decay"],
                       torch.zeros(()))
    for p, w in zip(params, twin):
        w.grad = p.grad
    pre.update_moments(twin_states, twin)
    for group, wd in zip(opt.param_groups, (0.1, 0.0)):
        chosen = [i for i, p in enumerate(params) if any(p is q for q in group["params"])]
        torch._foreach_mul_([twin[i] for i in chosen], 1.0 - eta * wd)
        pre.momentum_step([twin_states[i] for i in chosen], [twin[i] for i in chosen], k, eta)
    eps = torch.finfo(torch.float32).eps
    for p, w, st in zip(params, twin, twin_states):
        u = (st["exp_avg"] / (1 - 0.9**k)) / ((st["exp_avg_sq"] / (1 - 0.999**k)).sqrt() + 1e-8)
        assert ((p - w).abs() <= 8 * eps * (w.abs() + eta * u.abs())).all()
    assert all(not torch.equal(p, b) for p, b in zip(params, before))  # the fused kernel did step
