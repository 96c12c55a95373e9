"""Memorisation: SaLSa trained past ~zero training loss. The long version, 20k steps past a loss of
1e-3 on several seeds, is experiments/memorisation/bench.py (results/memorisation); here the same cases, shorter.

The property is the issue's: once below 1e-3 the training loss never rises above 1e-2 again, and no
NonFiniteError. The mechanism tests check the two rules that remove the collapse, on losses whose float32
values are known exactly.
"""
import math

import pytest
import torch
from torch import nn

from experiments.memorisation.cases import make_case
from experiments.memorisation.superseded import (
    SaLSaAveragingPerSearch,
    SaLSaForgettingPerStep,
    SaLSaWithoutBackoff,
    SaLSaWithoutResolution,
)
from experiments.memorisation.trace import train
from salsa import SaLSa


@pytest.mark.parametrize("case_name", ["mlp", "cnn_bn", "transformer"])
def test_a_memorising_run_never_rises_back(case_name):
    case = make_case(case_name, seed=0)
    trace = train(case, SaLSa(case.model.parameters(), model=case.model), lambda o, c: o.step(c), steps_past=500)
    loss = torch.tensor(trace.loss)
    assert trace.error == ""
    below = torch.nonzero(loss < 1e-3)
    assert len(below), "the regime under test was not reached"
    assert loss[int(below[0]):].max() <= 1e-2


LOSSES = {  # decreases float32 cannot resolve: 1e-10 |w|^2 is far below the spacing 2^-23 of float32 at 1 and at 0
    "near_one": lambda w: 1 + 1e-10 * (w**2).sum(),  # exactly 1 for |w| <= 1: every decrease is 0
    "near_zero": lambda w: 1e-10 * (w**2).sum(),  # within eps of 0: no decrease can exceed it
}


BACKOFF = {  # SaLSa under both frequency rules, and the class that searches every step instead of backing off
    "doubling": lambda params: SaLSa(params),
    "paper": lambda params: SaLSa(params, frequency="paper"),
    "without_backoff": SaLSaWithoutBackoff,
}


@pytest.mark.parametrize("optimizer", sorted(BACKOFF))
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_a_decrease_float32_cannot_resolve_does_not_grow_the_step_size(loss, optimizer):
    w = nn.Parameter(torch.full((4,), 0.5))
    opt = BACKOFF[optimizer]([w])
    backoff = optimizer != "without_backoff"
    for k in range(1, 51):
        before = w.detach().clone()
        opt.step(lambda: LOSSES[loss](w))
        stats = opt.last_step_stats()
        # unresolved searches give no licence to step unchecked: without the back-off every step searches; with
        # it, steps 1-9 search (9 unresolved in a row), then max_interval apart, holding in between
        searches = k <= 9 or not backoff or (k - 9) % opt.max_interval == 0
        assert stats["line_search"] == searches and stats["held"] == (not searches), k
        assert stats["backtracks"] == 0
        if not searches or backoff:  # with the back-off an unresolved search's trial point is not taken either
            assert torch.equal(w.detach(), before)
    assert opt.step_size == 1.0  # the trial at 1.1 is taken, eta does not grow
    assert opt.line_search_state["h"] == 0.0 if loss == "near_one" else abs(opt.line_search_state["h"]) < 1e-9


def test_unresolved_searches_back_off_exponentially():
    # a resolvable loss for 12 steps, then one float32 cannot resolve (as above): the gaps between the searches
    # after the first unresolved one are min(max_interval, 2^(n-1)) = 1, 2, 4, 8, 16, 20
    w = nn.Parameter(torch.full((4,), 0.5))
    opt = SaLSa([w])
    searched_at, unresolved_from = [], None
    for k in range(1, 90):
        opt.step(lambda: (w**2).sum() if k <= 12 else 1e-10 * (w**2).sum())
        if opt.last_step_stats()["line_search"]:
            searched_at.append(k)
            if unresolved_from is None and opt.line_search_state["unresolved"] == 1:
                unresolved_from = len(searched_at) - 1
    after = searched_at[unresolved_from:]
    assert [b - a for a, b in zip(after, after[1:])][:6] == [1, 2, 4, 8, 16, 20]


def test_a_tiny_s_is_searched_not_stepped_unchecked():
    # f(w) = 1e-9 w: s = (1 - beta3) g^2 / (|g| + eps) = 0.1 * 1e-9 / 1.1 < 1e-8, where the old default
    # stepped along the momentum without a search (SaLSaWithoutResolution); SaLSa searches (and the decreases, 1e-9 eta,
    # are below the resolution eps * max(|f|, 1) = 2^-23, so eta stays).
    w = nn.Parameter(torch.tensor([1.0]))
    opt = SaLSa([w])
    opt.step(lambda: 1e-9 * w.sum())
    assert opt.last_step_stats()["line_search"] and opt.last_step_stats()["s"] < 1e-8
    assert opt.step_size == 1.0

    w_old = nn.Parameter(torch.tensor([1.0]))
    old = SaLSaWithoutResolution([w_old])
    old.step(lambda: 1e-9 * w_old.sum())
    assert not old.last_step_stats()["line_search"]


def test_debiased_averages_allow_the_longest_interval_once_the_step_size_is_constant():
    # With a constant accepted eta the bias-corrected averages equal eta, r = 1 and L = max_interval from
    # the first search; the release's averages (SaLSaWithoutResolution's) start at 1e-8 and reach r < 1.1 (L = 10)
    # only after about 230 searches (0.99^n < 0.1).
    for debiased, first_long in ((True, 1), (False, 200)):
        params = [nn.Parameter(torch.zeros(1))]
        opt = SaLSa(params, frequency="paper") if debiased else SaLSaWithoutResolution(params)
        st = opt.line_search_state
        for n in range(1, 300):
            st["eta_fast"] = 0.9 * st["eta_fast"] + 0.1 * 0.5
            st["eta_slow"] = 0.99 * st["eta_slow"] + 0.01 * 0.5
            st["averaged"] = n
            if math.isclose(opt._interval(), 10.0, rel_tol=1e-6):
                break
        assert n <= first_long if debiased else n >= first_long, (debiased, n)


def test_leaving_a_back_off_needs_a_search_that_keeps_the_step_size():
    # near 0 for 30 steps (a back-off), then a quadratic whose minimum is 0.01 away, on which the first resolved search backtracks many
    # times: no momentum step until a resolved search accepts within two trials (cnn_bn seed 1 collapsed on the
    # momentum steps licensed by such a search, results/memorisation/superseded.md and docs/design-notes.md)
    w = nn.Parameter(torch.full((4,), 0.5))
    opt = SaLSa([w])
    leaving = []
    for k in range(1, 120):
        opt.step(lambda: 1e-10 * (w**2).sum() if k <= 30 else 100 * ((w - 0.51) ** 2).sum())
        st, stats = opt.line_search_state, opt.last_step_stats()
        if k > 30:
            leaving.append((stats["line_search"], stats["backtracks"], st["unresolved"]))
    first_resolved = next(i for i, (searched, backtracks, _) in enumerate(leaving) if searched and backtracks > 1)
    assert leaving[first_resolved][2]  # it backtracked: the back-off is not over
    end = next(i for i in range(first_resolved, len(leaving)) if not leaving[i][2])
    assert all(leaving[i][0] for i in range(first_resolved, end + 1))  # every step until the end searched
    assert not all(searched for searched, _, _ in leaving[end:])  # then the frequency rule skips again


def test_doubling_needs_a_decrease_beyond_two_roundings():
    # f(w) = 1 + w in float32 at w = 0 with P = I: the first trial, at eta = 1.1 * 1.6e-7 = 1.76e-7, lowers f to the float32
    # nearest 1 - 1.76e-7, 1 - 3 * 2^-24, a decrease of 1.79e-7: above one resolution (2^-23 = 1.19e-7), not above two.
    # The smoothed test holds (h = 0.01 * 1.79e-7 >= 0.3 * 1.76e-7 * s, s = 0.01): the paper's rule takes the trial and
    # grows eta; doubling takes neither.
    for frequency, resolved in (("paper", True), ("doubling", False)):
        w = nn.Parameter(torch.zeros(1))
        opt = SaLSa([w], preconditioner="sgd", init_step_size=1.6e-7, frequency=frequency)
        opt.step(lambda: 1 + w.sum())
        assert opt.line_search_state["resolved"] == resolved
        assert opt.step_size == pytest.approx(1.76e-7 if resolved else 1.6e-7, rel=1e-12)
        assert (w.item() != 0.0) == resolved


def smoothing_factors(make) -> list[tuple[bool, int, float]]:
    """(at the float resolution yet, steps since the last search, the factor s was smoothed with) at each search of
    f(w) = 1 + 0.01 w^2 in float32 with P = I, whose decreases fall within the float resolution after a few hundred
    steps. The factor is read back from s: s_k = beta s_{k-1} + (1 - beta) ||g_k||^2."""
    w = nn.Parameter(torch.tensor([3.0]))
    opt = make([w])
    seen, reached = [], False  # reached: an earlier search was unresolved
    for _ in range(400):
        s, since = opt.line_search_state["s"], opt.line_search_state["since_search"] + 1
        opt.step(lambda: 1 + 0.01 * (w**2).sum())
        if not opt.last_step_stats()["line_search"]:
            continue
        grad_sq = float(w.grad.double() ** 2)
        # beta = (s_k - ||g||^2) / (s_{k-1} - ||g||^2), where ||g||^2 reached s through float32 (2^-24 relative): with
        # |s_{k-1} - ||g||^2| > 1% of ||g||^2 the value read back is within 1e-5 of beta, far below 0.99 - 0.99^2
        if since > 1 and abs(s - grad_sq) > 0.01 * grad_sq:
            seen.append((reached, since, (opt.line_search_state["s"] - grad_sq) / (s - grad_sq)))
        reached = reached or not opt.line_search_state["resolved"]
    return seen


def test_the_two_halves_of_the_smoothing_rule_apart():
    # 0.4's rule forgets per step from the first search; per-search averaging never does; SaLSa switches at the float
    # resolution (1e-4 relative: ten times the read-back error, a hundredth of 0.99 - 0.99^2)
    for make, per_step in ((SaLSaForgettingPerStep, lambda reached: True), (SaLSaAveragingPerSearch, lambda reached: False),
                           (SaLSa, lambda reached: reached)):
        seen = smoothing_factors(lambda params: make(params, preconditioner="sgd"))
        assert any(reached for reached, _, _ in seen) and not all(reached for reached, _, _ in seen), make.__name__
        for reached, since, beta in seen:
            expected = 0.99**since if per_step(reached) else 0.99
            assert beta == pytest.approx(expected, rel=1e-4), (make.__name__, reached, since)
