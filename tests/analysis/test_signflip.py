"""The exact sign-flip test and interval (analysis/signflip.py) against the test's definition, every sign pattern
listed (signflip_by_hand.py); the constant predictor's loss (analysis/failures.py) against the entropy by hand."""
import math

import numpy as np
import pytest

from analysis.failures import CONSTANT_LOSS
from analysis.signflip import rank, sign_flip_interval, sign_flip_p, smallest_p

from .signflip_by_hand import accepted, p_value


@pytest.mark.parametrize("n", [6, 8, 10])
def test_the_interval_is_the_set_of_means_the_test_accepts(n):
    values = np.random.default_rng(n).lognormal(size=n)  # skewed: the t interval would differ
    low, high = sign_flip_interval(values)
    step = 1e-9 * max(1.0, abs(low), abs(high))
    assert accepted(values, low + step) and not accepted(values, low - step)
    assert accepted(values, high - step) and not accepted(values, high + step)
    for mu in (0.0, float(np.median(values)), low, high):
        assert sign_flip_p(values, mu) == pytest.approx(p_value(values, mu))


def test_how_many_seeds_can_give_a_bounded_interval():
    # 95%: k = floor(0.025 * 2^n) subset means cut off each end; 2k/2^n of the coverage goes
    assert [rank(0.95, n) for n in (5, 6, 10)] == [0, 1, 25]
    assert 1 - 2 * rank(0.95, 10) / 2 ** 10 == pytest.approx(0.9512, abs=1e-4)
    assert sign_flip_interval([1.0, 2.0, 3.0, 4.0, 5.0]) == (-math.inf, math.inf)
    assert smallest_p(5) == 0.0625 == sign_flip_p([1.0, 2.0, 3.0, 4.0, 5.0])  # all positive: the extreme pattern
    assert smallest_p(10) == pytest.approx(2 / 1024)


def test_the_constant_predictors_loss_is_the_entropy_of_the_class_frequencies():
    digits = np.array([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]) / 1797
    assert CONSTANT_LOSS["digits"] == pytest.approx(-(digits * np.log(digits)).sum())
    assert CONSTANT_LOSS["mnist5k"] == pytest.approx(math.log(10))
    fresh = 7403 / 12808
    assert CONSTANT_LOSS["rotten_tomatoes"] == pytest.approx(-fresh * math.log(fresh) - (1 - fresh) * math.log(1 - fresh))
