"""The scalar rules of the line searches, as the papers write them (pure functions, hand-checkable).

Symbols follow the SaLSa paper (arXiv 2407.20650): eta is the step size, h the smoothed loss
decrease, s the smoothed (preconditioned) squared gradient norm, beta3 their smoothing factor, c the
Armijo constant.
"""
from __future__ import annotations

import math

# The authors' line-search constants, declared once: our SaLSa's defaults and the reference classes use these.
TINY = 1e-8                 # below this s (or at a loss of exactly 0) the authors skip the search
ALWAYS_SEARCH = 10          # the first steps always search (AdamSLS: steps 1-10; the release and our SaLSa: 1-9)
MAX_INTERVAL = 10           # the frequency rule's longest interval between searches
ETA_FAST, ETA_SLOW = 0.9, 0.99  # the frequency rule's fast and slow moving averages of the accepted step sizes
GROWTH, BACKTRACK, MAX_TRIALS = 1.1, 0.8, 100  # the release's step-size growth per step, backtracking factor, trials
DOUBLING_MAX_INTERVAL = 20  # our SaLSa's doubling frequency rule: the longest interval between searches


def ema(previous: float, value: float, beta: float) -> float:
    """Exponential moving average: beta * previous + (1 - beta) * value."""
    return beta * previous + (1.0 - beta) * value


def armijo_holds(decrease: float, eta: float, s: float, c: float) -> bool:
    """Armijo's sufficient-decrease test: decrease >= c * eta * s (False for a non-finite decrease).

    Plain Armijo (SLS): decrease = f(w) - f(w + eta d), s = ||g||^2_P.
    SaLSa: decrease = h_k (the smoothed decrease), s = s_k (the smoothed norm).
    """
    return math.isfinite(decrease) and decrease >= c * eta * s


def search_interval(eta_fast: float, eta_slow: float, max_interval: float) -> float:
    """SaLSa's line-search interval L = min(max_interval, 1 / (r_bar - 1)), r_bar = max(r, 1/r), r = fast/slow.

    eta_fast and eta_slow are the fast (0.9) and slow (0.99) moving averages of the accepted step
    sizes; the 1e-8 guards r_bar == 1 as in the authors' release.
    """
    r = eta_fast / eta_slow
    r_bar = max(r, 1.0 / r)
    return min(max_interval, 1.0 / (r_bar - 1.0 + 1e-8))


def next_interval(interval: float, kept: bool, max_interval: float) -> float:
    """The doubling rule's next interval between searches: twice the last after a search that kept the step size (it
    accepted within two trials: eta_k = growth * eta_{k-1} or backtrack * growth * eta_{k-1}), else half, in
    [1, max_interval]."""
    return min(max_interval, 2.0 * interval) if kept else max(1.0, interval / 2.0)


def resolution(loss_value: float, eps: float) -> float:
    """The float resolution of a loss value: eps (of the loss's dtype) times max(|f|, 1).

    A loss summed from terms of order one (cross entropy: the log of 1 + sum exp(z_j - z_y)) carries an
    absolute rounding error of order eps even when f itself is tiny, so eps * |f| would understate it:
    near zero, float32 cross entropies of a batch of B move in steps of 2^-23 / B (results/memorisation).
    """
    return eps * max(abs(loss_value), 1.0)
