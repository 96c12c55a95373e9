"""AdamSLS: the authors' class behind the paper's table (salsa-optimizer 0.1.0, adam_sls.py + sls_base.py).

One step k (1-indexed) on mini-batch loss f with gradient g, as the authors' code computes it:
  Adam: v <- beta v + (1 - beta) g^2, m <- momentum m + (1 - momentum) g, bias-corrected with (1 - beta^k);
  eta <- eta * gamma^(1/n_batches_per_epoch) on every step (reset_option=1; 0 keeps eta, 2 restarts);
  a search on steps 1-10, and with speed_up=False on every step, else once L = min(10, 1/(r_bar - 1))
  steps have passed (the frequency rule on the step-size averages):
    s <- beta_s s + (1 - beta_s) ||g||_P     base_opt="adam": g^T P g; "scalar": the UNSQUARED ||g||
    skipped when f is exactly 0 or s < 1e-8; else up to 200 trials at w_k - eta d (d = P g; "scalar": g):
      smooth:      accept when beta_s h + (1 - beta_s) (f(w_k) - f(trial)) >= c eta s, then h <- that value
      not smooth:  accept when f(w_k) - f(trial) >= c eta ||g||_P (plain Armijo, the SLS columns)
      otherwise eta <- beta_b eta
  then, searched or not: w <- w_k - eta P m_hat ("adam"; P g if momentum is 0) or w_k - eta g ("scalar").
"""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.closure import Closure
from salsa.optim.criteria import ALWAYS_SEARCH, MAX_INTERVAL, TINY, search_interval
from salsa.optim.sls import SLS
from salsa.reference.base import (
    STATE_DTYPE,
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

ADAM_SLS_MAX_TRIALS = 200  # AdamSLS's own trial limit (the release's: criteria.MAX_TRIALS, 100)
OPTIONS = {("adam", "per_param"), ("scalar", "scalar")}  # the two combinations the paper's columns used


class AdamSLS(ReferenceLineSearch):
    r"""The authors' AdamSLS, with their constructor names and defaults, on the closure protocol.

    The table's columns (docs/paper-protocol.md#the-optimizers-columns): ADAM SaLSa ``AdamSLS(p, c=0.3, beta_s=0.99, speed_up=True)``
    (NLP; images without speed_up), SGD SaLSa ``AdamSLS(p, base_opt="scalar", gv_option="scalar",
    c=0.3, beta_s=0.99)``, ADAM SLS ``AdamSLS(p, c=0.1, smooth=False)``, SGD SLS ``AdamSLS(p, c=0.1,
    base_opt="scalar", gv_option="scalar", smooth=False)``. Options of the authors' class that none
    of the table's runs used (strategies, Lion, heavy ball, clipping, ...) are not implemented.
    """

    def __init__(
        self,
        params,
        n_batches_per_epoch: int = 500,
        init_step_size: float = 0.1,
        c: float = 0.2,
        gamma: float = 2.0,
        beta: float = 0.999,
        momentum: float = 0.9,
        gv_option: str = "per_param",
        base_opt: str = "adam",
        beta_b: float = 0.9,
        beta_s: float = 0.999,
        reset_option: int = 1,
        smooth: bool = True,
        speed_up: bool = False,
        model: nn.Module | None = None,
    ):
        if (base_opt, gv_option) not in OPTIONS:
            raise ValueError(
                f"AdamSLS reproduces base_opt/gv_option = adam/per_param (Adam) and scalar/scalar (SGD), "
                f"got {base_opt}/{gv_option}"
            )
        if reset_option not in SLS.RESETS:
            raise ValueError(f"reset_option must be one of {sorted(SLS.RESETS)}, got {reset_option}")
        if n_batches_per_epoch < 1 or c <= 0 or not 0.0 < beta_b < 1.0:
            raise ValueError("need n_batches_per_epoch >= 1, c > 0 and 0 < beta_b < 1")
        if not (0.0 <= beta < 1.0 and 0.0 <= momentum < 1.0 and 0.0 <= beta_s < 1.0):
            raise ValueError(f"beta, momentum and beta_s must lie in [0, 1), got {beta}, {momentum}, {beta_s}")
        super().__init__(params, model, init_step_size)
        self.n_batches_per_epoch, self.init_step_size, self.c, self.gamma = n_batches_per_epoch, init_step_size, c, gamma
        self.beta, self.momentum, self.beta_b, self.beta_s = beta, momentum, beta_b, beta_s
        self.adam = base_opt == "adam"
        self.reset = SLS.RESETS[reset_option]  # the same rules as our SLS (IssamLaradji/sls)
        self.smooth, self.speed_up = smooth, speed_up

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        ev = self._evaluate_gradient(closure)
        st = self.line_search_state
        k = st["steps"]
        grads = [p.grad for p in ev.params]
        interval = search_interval(st["eta_fast"], st["eta_slow"], MAX_INTERVAL)
        st["since_search"] += 1
        precondition = None
        if self.adam:
            adam_moments_(ev.states, grads, self.beta, self.momentum)
            precondition = preconditioners(ev.states, self.beta, k)  # the same P for the norm and both directions
        eta = self.reset(st["step_size"], self)
        origin, trials, accepted = ev.params, 0, True
        if k <= ALWAYS_SEARCH or st["since_search"] >= interval or not self.speed_up:
            st["since_search"] = 0
            origin = copies(ev.params)  # w_k: every trial starts from it, as in the authors' code
            eta, trials, accepted = self._search(closure, ev, origin, eta, grads, precondition)
            self._update_step_size_averages(eta)
        place(ev.params, origin, self._update_direction(ev.states, grads, precondition, k), eta)
        st["step_size"] = eta
        self._record(ev.loss_value, trials=trials, accepted=accepted, h=st["h"], s=st["s"], interval=interval)
        return ev.loss

    def _search(self, closure: Closure, ev, origin: list[torch.Tensor], eta: float, grads, precondition) -> tuple[float, int, bool]:
        """The Armijo backtracking of the authors' line_search; returns (eta, trials, accepted)."""
        st = self.line_search_state
        norm = self._norm(grads, precondition)
        s = ema(scalar(st["s"]), norm, self.beta_s)
        st["s"] = s.item()
        if ev.loss_value == 0 or not s >= TINY:
            return eta, 0, True
        loss, h = self._loss(ev), scalar(st["h"])
        d = grads if precondition is None else torch._foreach_mul(precondition, grads)
        with self._evaluator.trials():
            for trial in range(1, ADAM_SLS_MAX_TRIALS + 1):
                place(ev.params, origin, d, eta)
                difference = loss - self._trial_loss(closure, loss)
                if self.smooth:
                    decrease, reference = h * self.beta_s + difference * (1 - self.beta_s), s
                else:  # plain Armijo; the authors' code also overwrites h and s with this trial's values
                    decrease, reference = difference, norm
                    h, s = difference.to(h.dtype), norm.to(s.dtype)
                    st["s"] = s.item()
                if decrease >= eta * self.c * reference:
                    st["h"] = ema(h, difference, self.beta_s).item()
                    self._count_trials(trial)
                    return eta, trial, True
                eta *= self.beta_b
        st["h"] = h.item()
        self._count_trials(ADAM_SLS_MAX_TRIALS)
        return eta, ADAM_SLS_MAX_TRIALS, False

    @staticmethod
    def _norm(grads, precondition) -> torch.Tensor:
        """||g||_P: sum g^2 P for Adam; for "scalar" the authors' norm sqrt(sum g^2), not squared, summed in a
        float32 tensor."""
        if precondition is not None:
            return preconditioned_norm(grads, precondition)
        return torch.sqrt(sequential_sum([t.sum().to(STATE_DTYPE) for t in torch._foreach_mul(grads, grads)]))

    def _update_direction(self, states, grads, precondition, k: int) -> list[torch.Tensor]:
        if precondition is None:
            return grads
        if self.momentum == 0:
            return torch._foreach_mul(precondition, grads)
        return torch._foreach_mul(precondition, bias_corrected([st["mv"] for st in states], self.momentum, k))
