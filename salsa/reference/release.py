"""ReleaseSaLSA: the authors' release class (salsa-optimizer 0.1.0, SaLSA.py), which `salsa.SaLSa` improves on.

One step k (1-indexed), as the release computes it:
  Adam moments as in AdamSLS, but bias-corrected with (1 - beta^(k+1)) (off by one against Adam);
  eta_try = 1.1 * eta; a search on steps 1-9 (every step with speed_up=False), else once
  L = min(10, 1/(r_bar - 1)) steps have passed:
    s <- beta3 s + (1 - beta3) g^T P g   (use_mv=True: g^T P m_hat)
    skipped when f is exactly 0 or s < 1e-8: an unchecked step w_k - eta_try P m_hat, eta <- eta_try;
    else up to 100 trials at w_k - eta_try P g (use_mv: P m_hat); a trial with f(trial) == f(w_k)
    is accepted outright (h unchanged); else accept when beta3 h + (1 - beta3) (f(w_k) - f(trial))
    >= c eta_try s, then h <- that value; otherwise eta_try <- 0.8 eta_try. The accepted trial point
    is the step; after 100 failures the parameters stay at the last trial.
  Steps without a search: w <- w - eta_try P m_hat, with eta left as it was.
"""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.closure import Closure
from salsa.optim.criteria import ALWAYS_SEARCH, BACKTRACK, GROWTH, MAX_INTERVAL, MAX_TRIALS, TINY, search_interval
from salsa.reference.base import (
    ReferenceLineSearch,
    adam_moments_,
    bias_corrected,
    copies,
    ema,
    place,
    preconditioned_norm,
    preconditioners,
    scalar,
    sequential_sum,
)


class ReleaseSaLSA(ReferenceLineSearch):
    """The release's SaLSA with its constructor names and defaults, on the closure protocol.

    ``momentum=(beta1, beta2, beta3)``: Adam's betas and the smoothing factor of h and s.
    """

    def __init__(
        self,
        params,
        init_step_size: float = 1.0,
        c: float = 0.5,
        momentum: tuple[float, float, float] = (0.9, 0.999, 0.9),
        speed_up: bool = True,
        use_mv: bool = False,
        model: nn.Module | None = None,
    ):
        if c <= 0 or len(momentum) != 3 or not all(0.0 <= b < 1.0 for b in momentum):
            raise ValueError(f"need c > 0 and momentum = (beta1, beta2, beta3) in [0, 1), got c={c}, {momentum}")
        super().__init__(params, model, init_step_size)
        self.c = c
        self.beta1, self.beta2, self.beta3 = momentum
        self.speed_up, self.use_mv = speed_up, use_mv

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        ev = self._evaluate_gradient(closure)
        st = self.line_search_state
        k = st["steps"] + 1  # the release's bias correction runs one step ahead
        interval = search_interval(st["eta_fast"], st["eta_slow"], MAX_INTERVAL)
        st["since_search"] += 1
        grads = [p.grad for p in ev.params]
        adam_moments_(ev.states, grads, self.beta2, self.beta1)
        precondition = preconditioners(ev.states, self.beta2, k)
        eta = st["step_size"] * GROWTH
        if self.speed_up and st["steps"] >= ALWAYS_SEARCH and st["since_search"] < interval:
            place(ev.params, ev.params, self._momentum_direction(ev.states, precondition, k), eta)
            self._record(ev.loss_value, h=st["h"], s=st["s"], interval=interval)
            return ev.loss

        st["since_search"] = 0
        origin = copies(ev.params)
        if self.use_mv:
            d = self._momentum_direction(ev.states, precondition, k)
            norm = sequential_sum([torch.inner(g.flatten(), d_i.flatten()).sum() for g, d_i in zip(grads, d)])
        else:
            d = torch._foreach_mul(precondition, grads)
            norm = preconditioned_norm(grads, precondition)
        s = ema(scalar(st["s"]), norm, self.beta3)
        st["s"] = s.item()
        trials, accepted = 0, True
        if ev.loss_value != 0 and s >= TINY:
            eta, trials, accepted = self._search(closure, ev, origin, d, eta, s)
        else:
            place(ev.params, origin, self._momentum_direction(ev.states, precondition, k), eta)
        st["step_size"] = eta
        self._update_step_size_averages(eta)
        self._record(ev.loss_value, trials=trials, accepted=accepted, h=st["h"], s=st["s"], interval=interval)
        return ev.loss

    def _search(self, closure: Closure, ev, origin, d, eta: float, s: torch.Tensor) -> tuple[float, int, bool]:
        st = self.line_search_state
        loss, h = self._loss(ev), scalar(st["h"])
        with self._evaluator.trials():
            for trial in range(1, MAX_TRIALS + 1):
                place(ev.params, origin, d, eta)
                difference = loss - self._trial_loss(closure, loss)
                if difference == 0:  # "cancelation error": accepted, h unchanged
                    self._count_trials(trial)
                    return eta, trial, True
                if h * self.beta3 + difference * (1 - self.beta3) >= eta * self.c * s:
                    st["h"] = ema(h, difference, self.beta3).item()
                    self._count_trials(trial)
                    return eta, trial, True
                eta *= BACKTRACK
        self._count_trials(MAX_TRIALS)
        return eta, MAX_TRIALS, False

    def _momentum_direction(self, states, precondition, k: int) -> list[torch.Tensor]:
        """P m_hat (the release multiplies m_hat by P: the same product)."""
        return torch._foreach_mul(precondition, bias_corrected([st["mv"] for st in states], self.beta1, k))
