"""The sign-flip test from its definition, by listing every sign pattern: what the tests check analysis/signflip.py
against (it counts subset means instead)."""
import itertools

import numpy as np


def p_value(values, mu0: float) -> float:
    """P(|sum s_i (x_i - mu0)| >= |sum (x_i - mu0)|) over the 2^n equally likely sign patterns s."""
    x = np.asarray(values, dtype=float) - mu0
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(x))))
    observed = abs(x.sum())
    flipped = np.abs(signs @ x)
    return float(np.mean(flipped >= observed * (1 - 1e-12) - 1e-15))  # ties count as at least as extreme


def accepted(values, mu0: float, alpha: float = 0.05) -> bool:
    return p_value(values, mu0) > alpha
