"""Arithmetic shared by the authors' two classes, written out per tensor in their order of operations.

The authors keep the smoothed decrease h and norm s in float32 tensors and combine them with the loss
tensors, so h and s are kept as float32 values here too and every scalar rule is evaluated with torch
scalars: the same roundings, hence the same accept/reject decisions.
"""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.base import ClosureLineSearch, GradientEvaluation

STATE_DTYPE = torch.float32  # dtype of the authors' h and s tensors
TINY = 1e-8  # below this s (or with a loss of exactly 0) the authors skip the search
EPS = 1e-8  # the preconditioner's epsilon, hard-coded by the authors
ALWAYS_SEARCH = 10  # both classes search on their first steps (AdamSLS: 1-10, SaLSA: 1-9)
MAX_INTERVAL = 10  # the frequency rule's longest interval between searches
ETA_FAST, ETA_SLOW = 0.9, 0.99  # the step-size averages of the frequency rule


def scalar(value: float, dtype: torch.dtype = STATE_DTYPE) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype)


def ema(previous: torch.Tensor, value: torch.Tensor, beta: float) -> torch.Tensor:
    """previous * beta + value * (1 - beta), stored in float32 as the authors' tensors are."""
    return (previous * beta + value * (1 - beta)).to(STATE_DTYPE)


def bias_corrected(v: torch.Tensor, beta: float, k: int) -> torch.Tensor:
    return v / (1 - beta ** max(1, k))


def adam_moments_(states: list[dict], grads: list[torch.Tensor], beta: float, momentum: float) -> None:
    """gv <- (1 - beta) g^2 + beta gv and mv <- (1 - momentum) g + momentum mv (the authors' v and m)."""
    for st, g in zip(states, grads):
        if "gv" not in st:
            st["gv"] = torch.zeros(g.shape, device=g.device)
            st["mv"] = torch.zeros(g.shape, device=g.device)
        st["gv"] = (1 - beta) * (g**2) + beta * st["gv"]
        st["mv"] = (1 - momentum) * g + momentum * st["mv"]


def preconditioner(st: dict, beta: float, k: int) -> torch.Tensor:
    """P = 1 / (sqrt(v_hat) + 1e-8), v bias-corrected with (1 - beta^k)."""
    return 1.0 / (torch.sqrt(bias_corrected(st["gv"], beta, k)) + EPS)


def place(params: list[torch.Tensor], origin: list[torch.Tensor], d: list[torch.Tensor], eta: float) -> None:
    """params <- origin - eta * d (origin may be params themselves)."""
    for p, w, d_i in zip(params, origin, d):
        if p is not w:
            p.copy_(w)
        p.add_(d_i, alpha=-eta)


class ReferenceLineSearch(ClosureLineSearch):
    """One parameter group, as in the authors' classes; h, s, the step size, the frequency rule's
    averages and counters in `line_search_state` (saved by state_dict), the moments in `self.state`."""

    def __init__(self, params, model: nn.Module | None, init_step_size: float):
        super().__init__(params, {}, model)
        if len(self.param_groups) != 1:
            raise ValueError(
                f"{type(self).__name__} treats all parameters as one group, as the authors' class does: "
                "pass one iterable of parameters"
            )
        if init_step_size <= 0:
            raise ValueError(f"init_step_size must be positive, got {init_step_size}")
        self.line_search_state.update(
            step_size=float(init_step_size), h=0.0, s=0.0, eta_fast=1e-8, eta_slow=1e-8, since_search=100
        )

    def _loss(self, ev: GradientEvaluation) -> torch.Tensor:
        """The step's loss as a tensor of the loss's dtype (the rank mean: exact, as it came from one)."""
        return scalar(ev.loss_value, ev.loss.dtype if ev.loss.is_floating_point() else STATE_DTYPE)

    def _trial_loss(self, closure, like: torch.Tensor) -> torch.Tensor:
        return scalar(self._evaluator.trial(closure), like.dtype)

    def _update_step_size_averages(self, eta: float) -> None:
        st = self.line_search_state
        st["eta_slow"] = st["eta_slow"] * ETA_SLOW + eta * (1 - ETA_SLOW)
        st["eta_fast"] = st["eta_fast"] * ETA_FAST + eta * (1 - ETA_FAST)
