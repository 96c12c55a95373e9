"""The Armijo test, the smoothing and the frequency rule on hand-computed numbers."""
import math

import pytest

from salsa.optim.criteria import armijo_holds, ema, next_interval, resolution, search_interval


def test_ema_weights_previous_by_beta():
    assert ema(2.0, 10.0, 0.9) == pytest.approx(0.9 * 2.0 + 0.1 * 10.0)  # 2.8
    assert ema(0.0, 1.6, 0.9) == pytest.approx(0.16)


def test_armijo_boundary_and_non_finite():
    # c * eta * s = 0.5 * 0.4 * 2.0 = 0.4
    assert armijo_holds(0.4, 0.4, 2.0, 0.5)
    assert armijo_holds(0.41, 0.4, 2.0, 0.5)
    assert not armijo_holds(0.39, 0.4, 2.0, 0.5)
    assert not armijo_holds(float("nan"), 0.4, 2.0, 0.5)
    assert not armijo_holds(-math.inf, 0.4, 2.0, 0.5)


def test_search_interval():
    assert search_interval(1.0, 1.0, 10) == 10  # stable step size: the cap
    # rel=1e-6: the 1e-8 guard in 1 / (r_bar - 1 + 1e-8) shifts L by 1e-8 * L relative (2e-7 for L = 20)
    assert search_interval(1.5, 1.0, 10) == pytest.approx(2.0, rel=1e-6)  # r_bar = 1.5 -> 1/0.5
    assert search_interval(1.0, 1.5, 10) == pytest.approx(2.0, rel=1e-6)  # r_bar = max(r, 1/r)
    assert search_interval(1.25, 1.0, 10) == pytest.approx(4.0, rel=1e-6)
    assert search_interval(1.05, 1.0, 10) == 10  # 1/0.05 = 20 is capped
    assert search_interval(1.05, 1.0, 30) == pytest.approx(20.0, rel=1e-6)


def test_the_resolution_of_a_loss_is_eps_at_scale_one_or_above():
    # below |f| = 1 the terms a loss is computed from (the 1 + ... of a cross entropy) set the spacing
    assert resolution(1e-9, 2.0**-23) == 2.0**-23
    assert resolution(0.0, 2.0**-23) == 2.0**-23
    assert resolution(-4.0, 2.0**-23) == 4 * 2.0**-23


def test_the_doubling_interval_doubles_on_a_kept_step_size_and_halves_otherwise():
    assert [next_interval(L, True, 20) for L in (1, 2, 8, 16, 20)] == [2, 4, 16, 20, 20]
    assert [next_interval(L, False, 20) for L in (1, 2, 20)] == [1, 1, 10]
