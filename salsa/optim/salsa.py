"""SaLSa: Stable Armijo Line Search Adaptation (Kenneweg et al., arXiv 2407.20650)."""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.base import GradientEvaluation, LineSearchOptimizer, SearchResult
from salsa.optim.closure import Closure
from salsa.optim.criteria import (
    ALWAYS_SEARCH,
    BACKTRACK,
    ETA_FAST,
    ETA_SLOW,
    GROWTH,
    MAX_INTERVAL,
    MAX_TRIALS,
    TINY,
    armijo_holds,
    ema,
    resolution,
    search_interval,
)

SEARCH, MOMENTUM, HOLD = "search", "momentum", "hold"  # what a step does (SaLSa._plan)


class SaLSa(LineSearchOptimizer):
    r"""SaLSa: Armijo line search with both sides smoothed, run only as often as the step size changes.

    At step k with mini-batch loss f_k, gradient g_k and direction d_k = P_k g_k (``preconditioner``:
    "adam" uses P_k = diag(1/(sqrt(v_hat_k) + eps)), "sgd" uses P_k = I):

        s_k = beta3 s_{k-1} + (1 - beta3) ||g_k||^2_P           ||g||^2_P = g^T P g
        h_k = beta3 h_{k-1} + (1 - beta3) (f_k(w_k) - f_k(w_k - eta d_k))
        accept eta if h_k >= c * eta * s_k, else eta <- backtrack * eta and try again,

    starting from eta = growth * eta_{k-1}. A search happens on the first 9 steps and then once L
    steps have passed since the last one, L = min(max_interval, 1/(r_bar - 1)) with r_bar = max(r, 1/r)
    and r the ratio of a fast (0.9) and a slow (0.99) moving average of the accepted step sizes
    (``adaptive_frequency=False``: every step). Steps without a search move along the momentum
    direction, w <- w - growth * eta * P m_hat, leaving eta, h and s unchanged.

    ``resolution_aware=True`` (default): a measured decrease within the float resolution of the loss,
    |f(w_k) - f(trial)| <= eps_f * max(|f(w_k)|, 1) with eps_f the machine epsilon of the loss's dtype,
    cannot tell a sufficient decrease from rounding: the trial point is taken (it did not measurably
    raise the loss) and enters h, but eta does not grow (eta_k = min(eta, eta_{k-1})), and the next step
    searches again (skipping searches needs a resolved one). There is no unchecked step for a zero loss
    or a tiny s. ``resolution_aware=False``: the test alone decides, and a zero loss or s < 1e-8 gives an
    unchecked momentum step (the default before issue 9; memorising runs collapse, results/memorisation).
    ``debiased_frequency=True`` (default): the step-size averages start at 0 and are bias-corrected as
    Adam's moments; False: they start at 1e-8 uncorrected, as in the release, so searches stay
    frequent for hundreds of searches after the step size has settled.
    ``unresolved_backoff=True`` (default, with resolution_aware): a move whose effect on the loss cannot be
    measured is not taken. An unresolved search's trial point is not taken (back to w_k), the next
    search waits min(max_interval, 2^(n-1)) steps after n unresolved searches in a row, and the steps
    in between hold the parameters (Adam's moments still follow the gradients). On a memorised training set, where no
    decrease can be measured, a step is then neither checked nor taken, instead of a search on every
    step. The back-off ends with a resolved search that accepts within two trials; until then every step
    searches. False: every step after an unresolved search searches (the default before issue 20).

    Steps without a search do not wait for the device: with the Adam preconditioner on a CPU or GPU they
    run as one fused kernel that changes nothing when the loss or a gradient is not finite, and that
    step's NonFiniteError is raised at the next search, ``last_step_stats()`` or ``state_dict()``.

    Usage: ``loss = opt.step(closure)`` where ``closure()`` returns the mini-batch loss WITHOUT
    calling backward; the optimizer zeroes gradients, calls backward once and evaluates trial points
    under torch.no_grad with the same dropout masks. Pass ``model=`` (the module the closure runs)
    so that trial forwards leave its buffers (BatchNorm statistics) untouched; without it the modules
    with buffers are found on the first step. Under torch.distributed the losses are averaged over
    the ranks (wrap the model in DDP so that gradients are too).

    weight_decay is decoupled (AdamW-style, eta in place of the learning rate), per parameter group.
    The authors' release class is :class:`salsa.reference.ReleaseSaLSA`; the differences are listed in
    docs/optimizers.md.
    """

    def __init__(
        self,
        params,
        c: float = 0.5,
        beta3: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        init_step_size: float = 1.0,
        growth: float = GROWTH,
        backtrack: float = BACKTRACK,
        max_backtracks: int = MAX_TRIALS,
        preconditioner: str = "adam",
        adaptive_frequency: bool = True,
        max_interval: float = MAX_INTERVAL,
        weight_decay: float = 0.0,
        resolution_aware: bool = True,
        debiased_frequency: bool = True,
        unresolved_backoff: bool = True,
        model: nn.Module | None = None,
    ):
        if not 0.0 < c:
            raise ValueError(f"c must be positive, got {c}")
        if not 0.0 <= beta3 < 1.0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"beta3 and betas must lie in [0, 1), got beta3={beta3}, betas={betas}")
        if init_step_size <= 0 or growth < 1.0 or not 0.0 < backtrack < 1.0 or max_backtracks < 1:
            raise ValueError("need init_step_size > 0, growth >= 1, 0 < backtrack < 1 and max_backtracks >= 1")
        defaults = dict(betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, preconditioner, model)
        self.c, self.beta3 = c, beta3
        self.growth, self.backtrack, self.max_backtracks = growth, backtrack, max_backtracks
        self.adaptive_frequency, self.max_interval = adaptive_frequency, max_interval
        self.resolution_aware, self.debiased_frequency = resolution_aware, debiased_frequency
        self.unresolved_backoff = unresolved_backoff
        start = 0.0 if debiased_frequency else 1e-8  # the release starts at 1e-8, without bias correction
        self.line_search_state.update(
            step_size=float(init_step_size), h=0.0, s=0.0, eta_fast=start, eta_slow=start, averaged=0,
            since_search=0, resolved=True, unresolved=0,
        )

    def _interval(self) -> float:
        """L of the frequency rule, from the (bias-corrected, with debiased_frequency) step-size averages."""
        st = self.line_search_state
        if not self.debiased_frequency:
            return search_interval(st["eta_fast"], st["eta_slow"], self.max_interval)
        n = st["averaged"]
        if n == 0:
            return 0.0
        return search_interval(st["eta_fast"] / (1 - ETA_FAST**n), st["eta_slow"] / (1 - ETA_SLOW**n), self.max_interval)

    def _plan(self, k: int, since_search: int, interval: float) -> str:
        """SEARCH, MOMENTUM (a step along P m_hat without a search) or HOLD (no step) for step k, since_search
        steps after the last search."""
        st = self.line_search_state
        if not self.adaptive_frequency or k < ALWAYS_SEARCH:
            return SEARCH
        if self.resolution_aware and not st["resolved"]:  # skipping with a step needs a resolved search
            if not self.unresolved_backoff:
                return SEARCH
            return HOLD if since_search < min(self.max_interval, 2 ** (st["unresolved"] - 1)) else SEARCH
        if self.unresolved_backoff and st["unresolved"]:
            # leaving a back-off: its held steps and unresolvable trial points may have left eta far off (the first
            # resolved search can backtrack 20 times); momentum steps wait for a search that keeps the step size
            return SEARCH
        return MOMENTUM if since_search < interval else SEARCH

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> torch.Tensor:
        ev = self._gradient(closure)
        st = self.line_search_state
        interval = self._interval()
        eta = st["step_size"] * self.growth
        plan = self._plan(ev.step, st["since_search"] + 1, interval)
        if plan != SEARCH:
            self._step_without_search(ev, eta if plan == MOMENTUM else 0.0)
            st["since_search"] += 1
            self._record(ev.health.values[0], h=st["h"], s=st["s"], interval=interval, held=plan == HOLD)
            return ev.loss

        self._check(ev)
        self._count_step(ev)
        self.preconditioner.update_moments(ev.states, ev.params)
        st["since_search"] = 0
        d, norm_p = self.preconditioner.direction(ev.states, ev.params, st["steps"], ev.grad_sq)
        st["s"] = ema(st["s"], norm_p.item(), self.beta3)
        if self.resolution_aware or (ev.loss_value != 0.0 and st["s"] >= TINY):
            search = self._search(closure, ev, d, eta)
            eta, trials, accepted = search.eta, search.trials, search.accepted
        else:
            # Nothing to search on: a momentum step at the last step size, which stays (the release
            # takes it at the grown size and keeps the growth, so memorising runs diverge).
            eta, trials, accepted = st["step_size"], 0, True
            self._momentum_step(ev, eta)
        st["step_size"] = eta
        st["eta_fast"] = ema(st["eta_fast"], eta, ETA_FAST)
        st["eta_slow"] = ema(st["eta_slow"], eta, ETA_SLOW)
        st["averaged"] += 1
        self._record(ev.loss_value, trials=trials, accepted=accepted, h=st["h"], s=st["s"], interval=interval, held=False)
        return ev.loss

    def _step_without_search(self, ev: GradientEvaluation, eta: float) -> None:
        """Adam's moments and, for eta > 0, decay and w <- w - eta P m_hat: fused and guarded on the device where the
        preconditioner can (the check deferred), else after the check. Counts the step."""
        if not self.preconditioner.can_fuse(ev.params):
            self._check(ev)
            self._count_step(ev)
            self.preconditioner.update_moments(ev.states, ev.params)
            if eta:
                self._momentum_step(ev, eta)
            return
        non_finite = ev.health.non_finite()
        for group, chosen in self._by_group(ev):
            self.preconditioner.fused_step(
                [ev.states[i] for i in chosen], [ev.params[i] for i in chosen], ev.step, eta, group["weight_decay"],
                non_finite,
            )
        self._defer_check(ev)
        self._count_step(ev)

    def _search(self, closure: Closure, ev: GradientEvaluation, d: list[torch.Tensor], eta: float) -> SearchResult:
        """Backtrack on the smoothed test h_k >= c eta s_k; the accepted trial point is the step.

        With resolution_aware, a trial whose decrease is within the loss's float resolution is accepted
        without growth: taken as the step, or with unresolved_backoff not (back to w_k; the decay still applies).
        After max_backtracks failures the parameters go back to w_k (no step).
        """
        st = self.line_search_state
        tolerance = resolution(ev.loss_value, torch.finfo(ev.loss.dtype).eps) if self.resolution_aware else -1.0

        def accepts(decrease: float, eta: float) -> bool:
            return abs(decrease) <= tolerance or armijo_holds(ema(st["h"], decrease, self.beta3), eta, st["s"], self.c)

        search = self._backtrack(
            closure, ev, d, eta, accepts=accepts, max_backtracks=self.max_backtracks, factor=self.backtrack
        )
        st["resolved"] = not (search.accepted and abs(search.decrease) <= tolerance)
        if not st["resolved"]:
            st["unresolved"] += 1
            search.eta = min(search.eta, st["step_size"])  # no growth on a decrease nobody can resolve
        elif search.trials <= 2:  # a resolved search that (nearly) kept the step size ends a back-off
            st["unresolved"] = 0
        if search.accepted:
            # an unresolved decrease enters h too: left out, h kept old decreases that later passed a
            # measured increase (results/memorisation/README.md)
            st["h"] = ema(st["h"], search.decrease, self.beta3)
        unmeasured = self.unresolved_backoff and not st["resolved"]  # a move nobody can measure is not taken
        if unmeasured or not search.accepted:
            torch._foreach_add_(ev.params, d, alpha=search.offset)
            search.offset = 0.0
        self._decay(ev, search.eta, d, search.offset)
        return search

