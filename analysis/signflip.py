"""The exact sign-flip (permutation) test of a mean and the interval it gives, with no assumption of normality.

Under "the values are symmetric about mu0" every one of the 2^n sign patterns of (x_i - mu0) is equally likely.
With the sum as the statistic, flipping the signs of a subset S raises the sum iff the mean of x over S lies at or
below mu0, so the one-sided p-values count subset means (Hartigan 1969):
    p_up(mu0) = (1 + #{non-empty S: mean_S(x) <= mu0}) / 2^n,  p_down(mu0) = (1 + #{S: mean_S(x) >= mu0}) / 2^n,
and the two-sided p is min(1, 2 min(p_up, p_down)) (a tie counts against rejecting). Inverting the test at level
1 - alpha, alpha/2 each side: with M_(1) <= ... <= M_(2^n - 1) the ordered subset means and k = floor(alpha 2^(n-1)),
the interval is [M_(k), M_(2^n - k)], covering 1 - 2k/2^n for data symmetric about their mean (0.9512 at n = 10).
With k = 0 (n <= 5 at 95%) it is the whole line: the smallest attainable p is 2/2^n (0.0625 at n = 5).
"""
import math

import numpy as np

from .errors import AnalysisError

MAX_VALUES = 22  # 2^22 subset means: 32 MiB


def _subset_means(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if len(values) > MAX_VALUES:
        raise AnalysisError(f"the exact sign-flip test enumerates 2^n subsets: {len(values)} values, at most {MAX_VALUES}")
    sums, sizes = np.zeros(1), np.zeros(1)
    for value in values:
        sums, sizes = np.concatenate([sums, sums + value]), np.concatenate([sizes, sizes + 1])
    return np.sort(sums[1:] / sizes[1:])


def rank(level: float, n: int) -> int:
    """k = floor(alpha 2^(n-1)): how many subset means each end of the interval leaves out."""
    return math.floor(round((1 - level) * 2 ** (n - 1), 9))


def smallest_p(n: int) -> float:
    """The smallest two-sided p that n values can give."""
    return min(1.0, 2 / 2 ** n)


def sign_flip_interval(values, level: float = 0.95) -> tuple[float, float]:
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    k = rank(level, n)
    if k == 0:
        return -math.inf, math.inf
    means = _subset_means(values)
    return float(means[k - 1]), float(means[2 ** n - k - 1])


def sign_flip_p(values, null: float = 0.0) -> float:
    """Two-sided exact p of "the values are symmetric about null"."""
    n = len(values)
    if n < 1:
        return float("nan")
    means = _subset_means(values)
    up, down = (1 + np.sum(means <= null)) / 2 ** n, (1 + np.sum(means >= null)) / 2 ** n
    return float(min(1.0, 2 * min(up, down)))
