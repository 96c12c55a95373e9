"""Arithmetic shared by the authors' two classes, in their order of operations, over all tensors at once.

The authors loop over the parameter tensors in Python, one kernel per tensor per operation. Here every
elementwise operation is one foreach call over the list: on the CPU a foreach call applies the same kernel
to each tensor (bitwise the authors' numbers), on a GPU it is one launch instead of one per tensor. Per-tensor
sums are added up left to right on the host in the sum's dtype, as the authors' Python loop adds them.

The authors keep the smoothed decrease h and norm s in float32 tensors and combine them with the loss
tensors, so h and s are kept as float32 values here too and every scalar rule is evaluated with torch
scalars: the same roundings, hence the same accept/reject decisions.
"""
from __future__ import annotations

from array import array

import torch
from torch import nn

from salsa.optim.base import ClosureLineSearch, GradientEvaluation
from salsa.optim.criteria import ETA_FAST, ETA_SLOW

STATE_DTYPE = torch.float32  # dtype of the authors' h and s tensors
EPS = 1e-8  # the preconditioner's epsilon, hard-coded by the authors

Tensors = list[torch.Tensor]
ROUNDING = {torch.float32: "f", torch.float64: "d"}  # array's codes: a Python float rounded to the dtype


def scalar(value: float, dtype: torch.dtype = STATE_DTYPE) -> torch.Tensor:
    return torch.tensor(value, dtype=dtype)


def ema(previous: torch.Tensor, value: torch.Tensor, beta: float) -> torch.Tensor:
    """previous * beta + value * (1 - beta), stored in float32 as the authors' tensors are."""
    return (previous * beta + value * (1 - beta)).to(STATE_DTYPE)


def bias_corrected(v: Tensors, beta: float, k: int) -> Tensors:
    return torch._foreach_div(v, 1 - beta ** max(1, k))


def adam_moments_(states: list[dict], grads: Tensors, beta: float, momentum: float) -> None:
    """gv <- (1 - beta) g^2 + beta gv and mv <- (1 - momentum) g + momentum mv (the authors' v and m).

    Out of place, as the authors write it, so that the result's dtype follows their type promotion.
    """
    for st, g in zip(states, grads):
        if "gv" not in st:
            st["gv"] = torch.zeros(g.shape, device=g.device)
            st["mv"] = torch.zeros(g.shape, device=g.device)
    squares = torch._foreach_mul(grads, grads)  # g**2 is computed as g * g
    torch._foreach_mul_(squares, 1 - beta)
    gv = torch._foreach_add(squares, torch._foreach_mul([st["gv"] for st in states], beta))
    mv = torch._foreach_add(torch._foreach_mul(grads, 1 - momentum), torch._foreach_mul([st["mv"] for st in states], momentum))
    for st, v, m in zip(states, gv, mv):
        st["gv"], st["mv"] = v, m


def preconditioners(states: list[dict], beta: float, k: int) -> Tensors:
    """P = 1 / (sqrt(v_hat) + 1e-8) of each tensor, v bias-corrected with (1 - beta^k)."""
    p = bias_corrected([st["gv"] for st in states], beta, k)
    torch._foreach_sqrt_(p)
    torch._foreach_add_(p, EPS)
    torch._foreach_reciprocal_(p)  # Tensor.__rtruediv__ computes 1 / x as reciprocal(x) * 1
    return p


def sequential_sum(terms: Tensors) -> torch.Tensor:
    """terms[0] + terms[1] + ... (0-dim float32 or float64 tensors) rounded to their dtype after each addition,
    left to right as the authors' loop adds them, on the host (one device sync); a 0-dim CPU tensor.

    A float32 sum computed in double and rounded to float32 is the float32 sum: double has more than
    2 * 24 + 2 bits of precision, so rounding twice gives the correctly rounded result.
    """
    values = torch.stack(terms).cpu()
    code = ROUNDING[values.dtype]
    total = 0.0
    for value in values.tolist():
        total = array(code, [total + value])[0]
    return torch.tensor(total, dtype=values.dtype)


def preconditioned_norm(grads: Tensors, precondition: Tensors) -> torch.Tensor:
    """g^T P g: the per-tensor sums of g^2 P added up as the authors' loop adds them (their `(g**2 * P).sum()`)."""
    squares = torch._foreach_mul(grads, grads)
    torch._foreach_mul_(squares, precondition)
    return sequential_sum([t.sum() for t in squares])


def copies(tensors: Tensors) -> Tensors:
    """Copies of the tensors in one foreach call (x * 1 is x, -0.0 and NaN included)."""
    return torch._foreach_mul(tensors, 1.0)


def place(params: Tensors, origin: Tensors, d: Tensors, eta: float) -> None:
    """params <- origin - eta * d (origin may be params themselves)."""
    if origin is not params:
        torch._foreach_copy_(params, origin)
    torch._foreach_add_(params, d, alpha=-eta)


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
