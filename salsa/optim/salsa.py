"""SaLSa: Stable Armijo Line Search Adaptation (Kenneweg et al., arXiv 2407.20650)."""
from __future__ import annotations

import torch
from torch import nn

from salsa.optim.base import GradientEvaluation, LineSearchOptimizer, SearchResult
from salsa.optim.closure import Closure
from salsa.optim.criteria import (
    ALWAYS_SEARCH,
    BACKTRACK,
    DOUBLING_MAX_INTERVAL,
    ETA_FAST,
    ETA_SLOW,
    GROWTH,
    MAX_INTERVAL,
    MAX_TRIALS,
    armijo_holds,
    ema,
    next_interval,
    resolution,
    search_interval,
)

SEARCH, MOMENTUM, HOLD = "search", "momentum", "hold"  # what a step does (SaLSa._plan)
FREQUENCIES = {"doubling": DOUBLING_MAX_INTERVAL, "paper": MAX_INTERVAL}  # frequency rule -> its default max_interval


class SaLSa(LineSearchOptimizer):
    r"""SaLSa: Armijo line search with both sides smoothed, run only as often as the step size changes.

    At step k with mini-batch loss f_k, gradient g_k and direction d_k = P_k g_k (``preconditioner``:
    "adam" uses P_k = diag(1/(sqrt(v_hat_k) + eps)), "sgd" uses P_k = I):

        s_k = beta3 s_{k-1} + (1 - beta3) ||g_k||^2_P           ||g||^2_P = g^T P g
        h_k = beta3 h_{k-1} + (1 - beta3) (f_k(w_k) - f_k(w_k - eta d_k))
        accept eta if h_k >= c * eta * s_k, else eta <- backtrack * eta and try again.

    The accepted trial point is the step. A search starts from growth * eta_{k-1} and steps without a search
    move along the momentum direction, w <- w - growth * eta_{k-1} * P m_hat. The first 9 steps search;
    ``frequency`` decides when the others do:

    - "doubling" (the default, for both directions: results/salsa_frequency): the interval L between searches
      doubles, up to ``max_interval`` (20), after each search that keeps the step size (accepted within two
      trials: eta changed by one growth or backtrack factor), and halves after any other. h and s average per
      search, as in the paper, until the first search whose decrease is within the float resolution (below): from
      then on they forget per step (a search n steps after the last uses beta3^n in place of beta3) and h starts
      again from that search's decrease, since the decreases before it were measured on a loss orders of magnitude
      larger.
    - "paper": the paper's rule. L = min(max_interval, 1/(r_bar - 1)) (``max_interval`` 10) with
      r_bar = max(r, 1/r) and r the ratio of a fast (0.9) and a slow (0.99) bias-corrected moving average of the
      accepted step sizes; h and s forget per search.

    ``adaptive_frequency=False``: every step searches. Steps without a search leave eta, h and s unchanged.

    A decrease within the float resolution of the loss, |f(w_k) - f(trial)| <= eps_f * max(|f(w_k)|, 1) with
    eps_f the machine epsilon of the loss's dtype (twice that under "doubling": the difference of two rounded
    losses), cannot tell a sufficient decrease from rounding: the search
    accepts without growth (eta_k = min(eta, eta_{k-1})) and the decrease enters h, but the trial point is not
    taken (back to w_k). After n such unresolved searches in a row the next search waits min(max_interval,
    2^(n-1)) steps, and the steps in between hold the parameters (Adam's moments still follow the gradients): on a
    memorised training set a step is neither checked nor taken. The back-off ends with a resolved search that
    accepts within two trials; until then every step searches.

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
        c: float = 0.3,
        beta3: float = 0.99,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        init_step_size: float = 1.0,
        growth: float = GROWTH,
        backtrack: float = BACKTRACK,
        max_backtracks: int = MAX_TRIALS,
        preconditioner: str = "adam",
        adaptive_frequency: bool = True,
        frequency: str = "doubling",
        max_interval: float | None = None,
        weight_decay: float = 0.0,
        model: nn.Module | None = None,
    ):
        if not 0.0 < c:
            raise ValueError(f"c must be positive, got {c}")
        if not 0.0 <= beta3 < 1.0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"beta3 and betas must lie in [0, 1), got beta3={beta3}, betas={betas}")
        if init_step_size <= 0 or growth < 1.0 or not 0.0 < backtrack < 1.0 or max_backtracks < 1:
            raise ValueError("need init_step_size > 0, growth >= 1, 0 < backtrack < 1 and max_backtracks >= 1")
        if frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
        max_interval = FREQUENCIES[frequency] if max_interval is None else max_interval
        if max_interval < 1:
            raise ValueError(f"max_interval must be at least 1, got {max_interval}")
        defaults = dict(betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, preconditioner, model)
        self.c, self.beta3 = c, beta3
        self.growth, self.backtrack, self.max_backtracks = growth, backtrack, max_backtracks
        self.adaptive_frequency, self.frequency, self.max_interval = adaptive_frequency, frequency, max_interval
        self.line_search_state.update(
            step_size=float(init_step_size), h=0.0, s=0.0, eta_fast=0.0, eta_slow=0.0, averaged=0,
            since_search=0, resolved=True, unresolved=0, interval=1.0, at_resolution=False,
        )

    def _interval(self) -> float:
        """L: doubling's own, or the paper's from the bias-corrected step-size averages."""
        st = self.line_search_state
        if self.frequency == "doubling":
            return st["interval"]
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
        if not st["resolved"]:  # skipping with a step needs a resolved search
            return HOLD if since_search < min(self.max_interval, 2 ** (st["unresolved"] - 1)) else SEARCH
        if st["unresolved"]:
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
        beta = self._beta()
        st["since_search"] = 0
        d, norm_p = self.preconditioner.direction(ev.states, ev.params, st["steps"], ev.grad_sq)
        st["s"] = ema(st["s"], norm_p.item(), beta)
        search = self._line_search(closure, ev, d, eta, beta)
        if self.frequency == "doubling":
            kept = st["resolved"] and search.accepted and search.trials <= 2
            st["interval"] = next_interval(st["interval"], kept, self.max_interval)
        st["step_size"] = search.eta
        st["eta_fast"] = ema(st["eta_fast"], search.eta, ETA_FAST)
        st["eta_slow"] = ema(st["eta_slow"], search.eta, ETA_SLOW)
        st["averaged"] += 1
        self._record(ev.loss_value, trials=search.trials, accepted=search.accepted, h=st["h"], s=st["s"],
                     interval=interval, held=False)
        return ev.loss

    def _beta(self) -> float:
        """h's and s's smoothing factor at this search: beta3, or beta3^n n steps after the last search once the loss
        has reached its float resolution, so that a longer interval does not lengthen their memory."""
        st = self.line_search_state
        return self.beta3 ** (st["since_search"] + 1) if st["at_resolution"] else self.beta3

    def _reach_resolution(self) -> None:
        """At doubling's first search whose decrease is within the float resolution: h and s forget per step from now
        on, and h restarts, since its decreases were measured on a loss orders of magnitude above this one (averaged
        per search, they accepted measured increases and collapsed memorising models: docs/algorithm.md)."""
        self.line_search_state.update(at_resolution=True, h=0.0)

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

    def _line_search(self, closure: Closure, ev: GradientEvaluation, d: list[torch.Tensor], eta: float,
                     beta: float) -> SearchResult:
        """The search of a step, from eta, with h's smoothing factor beta."""
        return self._search(closure, ev, d, eta, beta)

    def _tolerance(self, ev: GradientEvaluation) -> float:
        """The largest |decrease| the loss's float resolution cannot tell from rounding: one resolution under the paper's
        rule; twice it under doubling, whose longer intervals between searches must not grow eta on a decrease that
        two roundings (of f(w_k) and of the trial loss) can make (results/salsa_frequency)."""
        return resolution(ev.loss_value, torch.finfo(ev.loss.dtype).eps) * (2.0 if self.frequency == "doubling" else 1.0)

    def _takes_trial_point(self, resolved: bool) -> bool:
        """Whether an accepted trial point is the step: a move whose effect on the loss cannot be measured is not."""
        return resolved

    def _search(self, closure: Closure, ev: GradientEvaluation, d: list[torch.Tensor], eta: float,
                beta: float) -> SearchResult:
        """Backtrack on the smoothed test h_k >= c eta s_k (h_k = beta h_{k-1} + (1 - beta) decrease); the accepted
        trial point is the step.

        A trial whose decrease is within the loss's float resolution is accepted without growth, and its point is
        not taken (back to w_k; the decay still applies). After max_backtracks failures the parameters go back to
        w_k (no step).
        """
        st = self.line_search_state
        tolerance = self._tolerance(ev)

        def accepts(decrease: float, eta: float) -> bool:
            return abs(decrease) <= tolerance or armijo_holds(ema(st["h"], decrease, beta), eta, st["s"], self.c)

        search = self._backtrack(
            closure, ev, d, eta, accepts=accepts, max_backtracks=self.max_backtracks, factor=self.backtrack
        )
        st["resolved"] = not (search.accepted and abs(search.decrease) <= tolerance)
        if not st["resolved"]:
            if self.frequency == "doubling" and not st["at_resolution"]:
                self._reach_resolution()
            st["unresolved"] += 1
            search.eta = min(search.eta, st["step_size"])  # no growth on a decrease nobody can resolve
        elif search.trials <= 2:  # a resolved search that (nearly) kept the step size ends a back-off
            st["unresolved"] = 0
        if search.accepted:
            # an unresolved decrease enters h too: left out, h kept old decreases that later passed a
            # measured increase (results/memorisation/README.md)
            st["h"] = ema(st["h"], search.decrease, beta)
        if not (search.accepted and self._takes_trial_point(st["resolved"])):
            torch._foreach_add_(ev.params, d, alpha=search.offset)
            search.offset = 0.0
        self._decay(ev, search.eta, d, search.offset)
        return search
