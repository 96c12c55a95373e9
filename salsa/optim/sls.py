"""SLS: stochastic Armijo line search (Vaswani et al., "Painless Stochastic Gradient", NeurIPS 2019)."""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.base import LineSearchOptimizer
from salsa.optim.closure import Closure
from salsa.optim.criteria import armijo_holds

MIN_GRAD_NORM = 1e-8  # no update below this gradient norm, as in IssamLaradji/sls
FALLBACK_STEP = 1e-6  # the step taken when every trial failed, as in IssamLaradji/sls


class SLS(LineSearchOptimizer):
    r"""Armijo backtracking on every step, the SGD SLS and ADAM SLS baselines of the SaLSa paper.

    Each step first resets the step size (``reset_option`` 0: keep it; 1: eta * gamma^(1/n_batches_per_epoch),
    i.e. x gamma per epoch; 2: init_step_size), then accepts the first eta in eta, beta_b eta, ...
    with  f(w) - f(w - eta d) >= c * eta * ||g||^2_P  (d = P g, as in :class:`salsa.SaLSa`). With
    preconditioner="adam" the found eta is then applied along the momentum direction P m_hat
    (Adam SLS); with "sgd" the accepted trial point is the step. After ``max_backtracks`` failures
    a step of 1e-6 along d is taken. ``betas`` are Adam's (preconditioner="adam" only). Same closure
    protocol, ``model=`` and state_dict as SaLSa.
    """

    RESETS = {
        0: lambda eta, opt: eta,
        1: lambda eta, opt: eta * opt.gamma ** (1.0 / opt.n_batches_per_epoch),
        2: lambda eta, opt: opt.init_step_size,
    }

    def __init__(
        self,
        params,
        n_batches_per_epoch: int = 500,
        init_step_size: float = 1.0,
        c: float = 0.1,
        beta_b: float = 0.9,
        gamma: float = 2.0,
        max_backtracks: int = 100,
        reset_option: int = 1,
        preconditioner: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        model: nn.Module | None = None,
    ):
        if reset_option not in self.RESETS:
            raise ValueError(f"reset_option must be one of {sorted(self.RESETS)}, got {reset_option}")
        if n_batches_per_epoch < 1 or init_step_size <= 0 or not 0.0 < beta_b < 1.0 or c <= 0 or max_backtracks < 1:
            raise ValueError("need n_batches_per_epoch >= 1, init_step_size > 0, 0 < beta_b < 1, c > 0, max_backtracks >= 1")
        if preconditioner == "sgd":
            betas = (0.0, betas[1])  # plain SLS keeps no momentum buffer: every step is the accepted trial point
        defaults = dict(betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, preconditioner, model)
        self.n_batches_per_epoch, self.init_step_size, self.c = n_batches_per_epoch, init_step_size, c
        self.beta_b, self.gamma, self.max_backtracks = beta_b, gamma, max_backtracks
        self.reset = self.RESETS[reset_option]
        self.momentum_after_search = preconditioner == "adam" and betas[0] > 0
        self.line_search_state.update(step_size=float(init_step_size))

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        ev = self._begin_step(closure)
        st = self.line_search_state
        eta = self.reset(st["step_size"], self)
        if ev.grad_sq ** 0.5 < MIN_GRAD_NORM:
            self._record(ev.loss_value, h=None, s=ev.grad_sq)
            return ev.loss

        d, norm_p = self.preconditioner.direction(ev.states, ev.params, st["steps"], ev.grad_sq)
        s = norm_p.item()
        search = self._backtrack(
            closure, ev, d, eta,
            accepts=lambda decrease, eta: armijo_holds(decrease, eta, s, self.c),
            max_backtracks=self.max_backtracks, factor=self.beta_b,
        )
        if not search.accepted:
            torch._foreach_add_(ev.params, d, alpha=search.offset - FALLBACK_STEP)
            self._decay(ev, search.eta, d, FALLBACK_STEP)
        elif self.momentum_after_search:
            torch._foreach_add_(ev.params, d, alpha=search.offset)  # back to w_k, then along the momentum direction
            self._momentum_step(ev, search.eta)
        else:
            self._decay(ev, search.eta, d, search.offset)
        st["step_size"] = search.eta
        self._record(ev.loss_value, trials=search.trials, accepted=search.accepted, h=None, s=s)
        return ev.loss
