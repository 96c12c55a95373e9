"""What SaLSa and SLS share: parameters, global state in state_dict, counters, the backtracking loop."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from salsa.optim.closure import (
    Closure,
    ClosureEvaluator,
    finite_loss_and_grad_sq,
    flat_params,
)
from salsa.optim.preconditioners import PRECONDITIONERS

COUNTERS = ("steps", "forwards", "backwards", "line_searches", "backtracks")


class LineSearchOptimizer(torch.optim.Optimizer):
    """Base class. `self.line_search_state` holds every scalar of the search (step size, averages,
    counters); it is saved by state_dict() so that a resumed run continues bit for bit."""

    def __init__(self, params, defaults: dict, preconditioner: str, model: nn.Module | None, bias_offset: int = 0):
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner must be one of {sorted(PRECONDITIONERS)}, got {preconditioner!r}")
        super().__init__(params, defaults)
        self.preconditioner = PRECONDITIONERS[preconditioner](defaults["betas"], defaults["eps"], bias_offset)
        self._evaluator = ClosureEvaluator(type(self).__name__, model)
        self.line_search_state: dict = {name: 0 for name in COUNTERS}
        self._last: dict = {}

    @property
    def step_size(self) -> float:
        return float(self.line_search_state["step_size"])

    def last_step_stats(self) -> dict:
        """step, loss, step_size, line_search, backtracks, forwards, backwards, h, s of the last step."""
        return dict(self._last)

    def totals(self) -> dict:
        return {name: self.line_search_state[name] for name in COUNTERS}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["line_search"] = dict(self.line_search_state)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        if "line_search" not in state_dict:
            raise ValueError(f"this state_dict was not saved by {type(self).__name__} (it has no 'line_search' entry)")
        line_search = state_dict.pop("line_search")
        super().load_state_dict(state_dict)
        self.line_search_state.update(line_search)

    def _begin_step(self, closure: Closure | None):
        """Gradient evaluation and checks. Returns (loss, loss value, ||g||^2, groups, params, states)."""
        loss = self._evaluator.with_grad(closure, lambda: self.zero_grad(set_to_none=True))
        indexed = flat_params(self.param_groups)
        params = [p for _, p in indexed]
        step = self.line_search_state["steps"] + 1
        loss_value, grad_sq = finite_loss_and_grad_sq(loss, params, step, type(self).__name__)
        counters = self.line_search_state
        counters.update(steps=step, forwards=counters["forwards"] + 1, backwards=counters["backwards"] + 1)
        states = [self.state[p] for p in params]
        self.preconditioner.update_moments(states, params)
        return loss, loss_value, grad_sq, [g for g, _ in indexed], params, states

    def _decay(self, group_of: list[int], params: list[torch.Tensor], eta: float, d=None, at: float = 0.0) -> None:
        """Decoupled weight decay as in AdamW, with eta in place of the learning rate: p -= eta * wd * w_k.

        After a search the parameters stand at w_k - at * d, so w_k = p + at * d.
        """
        for index, group in enumerate(self.param_groups):
            wd = group["weight_decay"]
            if wd:
                chosen = [i for i, g in enumerate(group_of) if g == index]
                torch._foreach_mul_([params[i] for i in chosen], 1.0 - eta * wd)
                if d is not None and at:
                    torch._foreach_add_([params[i] for i in chosen], [d[i] for i in chosen], alpha=-eta * wd * at)

    def _momentum_step(self, group_of, params, states, k: int, eta: float) -> None:
        """Decay, then w <- w - eta * P m_hat: AdamW's order, with the parameters at w_k."""
        self._decay(group_of, params, eta)
        self.preconditioner.momentum_step(states, params, k, eta)

    def _backtrack(
        self,
        closure: Closure,
        params: list[torch.Tensor],
        d: list[torch.Tensor],
        loss_value: float,
        eta: float,
        accepts: Callable[[float, float], bool],
        max_backtracks: int,
        factor: float,
    ) -> tuple[float, float, bool, int, float]:
        """Try w_k - eta d, then eta *= factor until accepts(loss decrease, eta).

        The parameters move from trial to trial by (eta_prev - eta) d instead of being copied back
        from a saved w_k: no parameter-sized copy, at the price of a rounding error of a few ulps.
        Returns (eta, decrease, accepted, trials, at), where the parameters stand at w_k - at * d.
        A non-finite trial loss counts as a failure. After max_backtracks failures the parameters
        stand at the last trial point and eta has been reduced once more, as in the authors' release.
        """
        decrease, at = float("nan"), 0.0
        with self._evaluator.trials():
            for trial in range(1, max_backtracks + 1):
                torch._foreach_add_(params, d, alpha=at - eta)
                at = eta
                decrease = loss_value - self._evaluator.trial(closure)
                if accepts(decrease, eta):
                    self._count_trials(trial)
                    return eta, decrease, True, trial, at
                eta *= factor
        self._count_trials(max_backtracks)
        return eta, decrease, False, max_backtracks, at

    def _count_trials(self, trials: int) -> None:
        counters = self.line_search_state
        counters["forwards"] += trials
        counters["line_searches"] += 1

    def _record(self, loss_value: float, line_search: bool, trials: int, accepted: bool, **extra) -> None:
        backtracks = trials - 1 if accepted else trials
        self.line_search_state["backtracks"] += backtracks if line_search else 0
        self._last = dict(
            step=self.line_search_state["steps"],
            loss=loss_value,
            step_size=self.step_size,
            line_search=line_search,
            backtracks=backtracks if line_search else 0,
            forwards=1 + (trials if line_search else 0),
            backwards=1,
            **extra,
        )
