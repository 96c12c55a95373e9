"""A claim's verdict from two 95% intervals over the same values: the Student-t interval (assumes normal means)
and the exact sign-flip interval (assumes only symmetry; analysis/signflip.py).

Each interval gives a verdict of its own:
- a direction claim (the paper's value lies beyond no effect, e.g. +1.5 points over 0): "reproduced" when the
  interval excludes no effect and reaches the paper's value or beyond it, in the claimed direction; "not reproduced"
  when it lies entirely short of the paper's value; otherwise "inconclusive";
- an "about" claim (compute: about 30%): "reproduced" when the interval lies inside [paper / 2, 2 x paper],
  "not reproduced" when it misses that range, otherwise "inconclusive".
The claim's verdict is theirs where the two agree on "reproduced" or "not reproduced", otherwise "inconclusive";
"inconclusive (one <unit>)" with one value, "not yet run" with none.
"""
from dataclasses import dataclass

import numpy as np

from .signflip import sign_flip_interval, sign_flip_p
from .stats import t_interval


@dataclass(frozen=True)
class Claim:
    paper: float        # the paper's value, on the scale of the values (a log ratio for a ratio)
    kind: str           # "above" / "below" (the claimed direction from no_effect) or "about"
    no_effect: float = 0.0


@dataclass(frozen=True)
class Evidence:
    n: int
    mean: float
    t: tuple            # (low, high) Student-t
    flip: tuple         # (low, high) exact sign-flip
    p: float            # exact sign-flip p of no effect (two-sided)


def evidence(values, no_effect: float = 0.0) -> Evidence:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return Evidence(0, np.nan, (np.nan, np.nan), (np.nan, np.nan), np.nan)
    return Evidence(len(values), float(values.mean()), t_interval(values), sign_flip_interval(values),
                    sign_flip_p(values, no_effect))


def interval_verdict(low: float, high: float, claim: Claim) -> str:
    if claim.kind == "about":
        lower, upper = claim.paper / 2, claim.paper * 2
        return "reproduced" if lower <= low and high <= upper else \
            "not reproduced" if high < lower or low > upper else "inconclusive"
    if claim.kind == "above":
        return "reproduced" if low > claim.no_effect and high >= claim.paper else \
            "not reproduced" if high < claim.paper else "inconclusive"
    return "reproduced" if high < claim.no_effect and low <= claim.paper else \
        "not reproduced" if low > claim.paper else "inconclusive"


def verdict(found: Evidence, claim: Claim, unit: str = "seed") -> str:
    if found.n == 0:
        return "not yet run"
    if found.n == 1:
        return f"inconclusive (one {unit})"
    t, flip = interval_verdict(*found.t, claim), interval_verdict(*found.flip, claim)
    return t if t == flip else "inconclusive"
