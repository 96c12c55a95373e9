"""What the line-search optimizers share: the closure evaluation, scalar state in state_dict, counters,
the step record (ClosureLineSearch), and for SaLSa/SLS the preconditioner and backtracking loop."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from salsa.optim.closure import (
    Closure,
    ClosureEvaluator,
    Health,
    checked,
    flat_params,
    loss_and_grad_sq,
)
from salsa.optim.preconditioners import PRECONDITIONERS

COUNTERS = ("steps", "forwards", "backwards", "line_searches", "backtracks")


@dataclass
class GradientEvaluation:
    """One step's gradient evaluation: the loss, and the parameters that received a gradient."""

    loss: torch.Tensor  # detached, returned by step()
    health: Health  # the rank-mean loss and ||g||^2 on the device
    params: list[torch.Tensor]
    groups: list[int]  # the param_groups index of each parameter
    states: list[dict]  # self.state[p] of each parameter
    step: int
    loss_value: float = math.nan  # the rank mean as a Python float, once checked
    grad_sq: float = math.nan  # ||g||^2 (rank mean), once checked


@dataclass
class SearchResult:
    eta: float  # the accepted step size (after a failed search: the last one tried, times the factor)
    decrease: float  # f(w_k) - f(trial point) at the last trial
    accepted: bool
    trials: int
    offset: float  # the parameters stand at w_k - offset * d


class ClosureLineSearch(torch.optim.Optimizer):
    """Base class. `self.line_search_state` holds every scalar of the search (step size, averages,
    counters); it is saved by state_dict() so that a resumed run continues bit for bit."""

    def __init__(self, params, defaults: dict, model: nn.Module | None):
        super().__init__(params, defaults)
        self._evaluator = ClosureEvaluator(type(self).__name__, model)
        self.line_search_state: dict = {name: 0 for name in COUNTERS}
        self._last: dict = {}
        self._deferred: list[tuple[int, Health, list[torch.Tensor]]] = []  # checks of steps that did not sync

    @property
    def step_size(self) -> float:
        return float(self.line_search_state["step_size"])

    def last_step_stats(self) -> dict:
        """step, loss, step_size, line_search, backtracks, forwards, backwards, h, s of the last step (reading the
        loss waits for the device; raises NonFiniteError for a deferred step)."""
        self._check_deferred()
        return {**self._last, "loss": float(self._last["loss"])} if self._last else {}

    def last_step_loss(self) -> float | torch.Tensor:
        """The last step's loss (the rank mean) without waiting for the device: a float, or a 0-d tensor on the
        device that the host has not read (a step without a search); no check (last_step_stats checks)."""
        return self._last["loss"]

    def totals(self) -> dict:
        return {name: self.line_search_state[name] for name in COUNTERS}

    def state_dict(self) -> dict:
        self._check_deferred()
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

    def _evaluate_gradient(self, closure: Closure | None) -> GradientEvaluation:
        """zero_grad, closure, backward; NonFiniteError before anything changes (one device sync); counts the step."""
        ev = self._gradient(closure)
        self._check(ev)
        self._count_step(ev)
        return ev

    def _gradient(self, closure: Closure | None) -> GradientEvaluation:
        """zero_grad, closure, backward, nothing checked or counted: the caller does _check or _defer_check, then
        _count_step."""
        loss = self._evaluator.with_grad(closure, lambda: self.zero_grad(set_to_none=True))
        indexed = flat_params(self.param_groups)
        params = [p for _, p in indexed]
        return GradientEvaluation(
            loss, loss_and_grad_sq(loss, params), params, [g for g, _ in indexed], [self.state[p] for p in params],
            self.line_search_state["steps"] + 1,
        )

    def _count_step(self, ev: GradientEvaluation) -> None:
        counters = self.line_search_state
        counters.update(steps=ev.step, forwards=counters["forwards"] + 1, backwards=counters["backwards"] + 1)

    def _check(self, ev: GradientEvaluation) -> None:
        """Reads ev's loss and ||g||^2 (one device sync), after the deferred checks of earlier steps."""
        self._check_deferred()
        ev.loss_value, ev.grad_sq = checked(ev.health, ev.params, ev.step, type(self).__name__)

    def _defer_check(self, ev: GradientEvaluation) -> None:
        """For a step whose update the device skips when ev.health is not finite: checked at the next sync."""
        self._deferred.append((ev.step, ev.health, ev.params))

    def _check_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for step, health, params in deferred:
            later = self.line_search_state["steps"] - step
            checked(health, params, step, type(self).__name__, after=(
                "That step had no line search and was skipped on the device: it changed nothing"
                + (f"; the {later} step(s) after it trained as usual." if later else ".")
            ))

    def _count_trials(self, trials: int) -> None:
        counters = self.line_search_state
        counters["forwards"] += trials
        counters["line_searches"] += 1

    def _record(self, loss_value: float, *, trials: int = 0, accepted: bool = True, **extra) -> None:
        """The step's statistics; `trials` > 0 means a line search evaluated that many trial points."""
        backtracks = trials - 1 if accepted else trials
        self.line_search_state["backtracks"] += max(backtracks, 0)
        self._last = dict(
            step=self.line_search_state["steps"],
            loss=loss_value,
            step_size=self.step_size,
            line_search=trials > 0,
            backtracks=max(backtracks, 0),
            forwards=1 + trials,
            backwards=1,
            **extra,
        )


class LineSearchOptimizer(ClosureLineSearch):
    """SaLSa and SLS: a preconditioner (Adam or SGD) for the direction d = P g, foreach kernels, and
    trial points reached without a copy of w_k."""

    def __init__(self, params, defaults: dict, preconditioner: str, model: nn.Module | None):
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner must be one of {sorted(PRECONDITIONERS)}, got {preconditioner!r}")
        super().__init__(params, defaults, model)
        self.preconditioner = PRECONDITIONERS[preconditioner](defaults["betas"], defaults["eps"])

    def _begin_step(self, closure: Closure | None) -> GradientEvaluation:
        """The gradient evaluation, then the moments of the preconditioner."""
        ev = self._evaluate_gradient(closure)
        self.preconditioner.update_moments(ev.states, ev.params)
        return ev

    def _decay(self, ev: GradientEvaluation, eta: float, d=None, offset: float = 0.0) -> None:
        """Decoupled weight decay as in AdamW, with eta in place of the learning rate: p -= eta * wd * w_k.

        After a search the parameters stand at w_k - offset * d, so w_k = p + offset * d.
        """
        for group, chosen in self._by_group(ev):
            wd = group["weight_decay"]
            if wd:
                torch._foreach_mul_([ev.params[i] for i in chosen], 1.0 - eta * wd)
                if d is not None and offset:
                    torch._foreach_add_([ev.params[i] for i in chosen], [d[i] for i in chosen], alpha=-eta * wd * offset)

    def _by_group(self, ev: GradientEvaluation) -> list[tuple[dict, list[int]]]:
        """(param group, the indices into ev.params of its parameters) for each group."""
        return [(group, [i for i, g in enumerate(ev.groups) if g == index]) for index, group in enumerate(self.param_groups)]

    def _momentum_step(self, ev: GradientEvaluation, eta: float) -> None:
        """Decay, then w <- w - eta * P m_hat: AdamW's order, with the parameters at w_k."""
        self._decay(ev, eta)
        self.preconditioner.momentum_step(ev.states, ev.params, self.line_search_state["steps"], eta)

    def _backtrack(
        self,
        closure: Closure,
        ev: GradientEvaluation,
        d: list[torch.Tensor],
        eta: float,
        *,
        accepts: Callable[[float, float], bool],
        max_backtracks: int,
        factor: float,
    ) -> SearchResult:
        """Try w_k - eta d, then eta *= factor until accepts(loss decrease, eta).

        The parameters move from trial to trial by (eta_prev - eta) d instead of being copied back
        from a saved w_k: no parameter-sized copy, at the price of a rounding error of a few ulps.
        A non-finite trial loss counts as a failure. After max_backtracks failures the parameters
        stand at the last trial point and eta has been reduced once more, as in the authors' release.
        """
        decrease, offset = float("nan"), 0.0
        with self._evaluator.trials():
            for trial in range(1, max_backtracks + 1):
                torch._foreach_add_(ev.params, d, alpha=offset - eta)
                offset = eta
                decrease = ev.loss_value - self._evaluator.trial(closure)
                if accepts(decrease, eta):
                    self._count_trials(trial)
                    return SearchResult(eta, decrease, accepted=True, trials=trial, offset=offset)
                eta *= factor
        self._count_trials(max_backtracks)
        return SearchResult(eta, decrease, accepted=False, trials=max_backtracks, offset=offset)
