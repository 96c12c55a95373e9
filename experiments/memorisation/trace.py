"""Train one memorisation case with one optimizer and record every step: loss, step size, h, s, the trial losses.

The closure is wrapped so that every loss it returns is recorded: the first call of a step is the
gradient evaluation f(w_k), the others are the line search's trials, so the measured decreases
f(w_k) - f(trial) come from the optimizer's own evaluations, without touching its code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments.memorisation.cases import Case


@dataclass
class Trace:
    loss: list[float] = field(default_factory=list)        # f_k(w_k)
    step_size: list[float] = field(default_factory=list)   # eta after step k
    h: list[float] = field(default_factory=list)
    s: list[float] = field(default_factory=list)
    forwards: list[int] = field(default_factory=list)      # closure evaluations in step k
    first_decrease: list[float] = field(default_factory=list)  # f(w_k) - f(first trial); nan without a search
    last_decrease: list[float] = field(default_factory=list)   # f(w_k) - f(last trial)
    error: str = ""                                        # why the run stopped early (NonFiniteError, ...)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) for k, v in vars(self).items() if isinstance(v, list)}


def stat(opt, name: str) -> float:
    value = opt.last_step_stats().get(name) if hasattr(opt, "last_step_stats") else None
    return float("nan") if value is None else float(value)


def train(case: Case, opt, step, steps_past: int, zero: float = 1e-3, max_steps: int = 40_000) -> Trace:
    """Trains until `steps_past` steps after the loss first fell below `zero` (or `max_steps` in all).

    step(opt, closure) takes one step of `opt` (closure returns the mini-batch loss, no backward).
    """
    trace = Trace()
    end = max_steps
    for k in range(max_steps):
        if k >= end:
            break
        evaluated: list[float] = []

        def closure(k=k):
            loss = case.loss(k)
            evaluated.append(loss.item())
            return loss

        try:
            step(opt, closure)
        except FloatingPointError as e:  # NonFiniteError, or the release's NaN check
            trace.error = f"step {k + 1}: {e}"
            break
        trials = evaluated[1:]
        trace.loss.append(evaluated[0])
        trace.step_size.append(float(opt.step_size) if not callable(opt.step_size) else float("nan"))
        trace.h.append(stat(opt, "h"))
        trace.s.append(stat(opt, "s"))
        trace.forwards.append(len(evaluated))
        trace.first_decrease.append(evaluated[0] - trials[0] if trials else float("nan"))
        trace.last_decrease.append(evaluated[0] - trials[-1] if trials else float("nan"))
        if evaluated[0] < zero and end == max_steps:
            end = min(max_steps, k + 1 + steps_past)
        if not np.isfinite(evaluated[0]):
            trace.error = f"step {k + 1}: non-finite loss {evaluated[0]}"
            break
    return trace
