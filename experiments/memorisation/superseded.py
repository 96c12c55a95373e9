"""Behaviours our SaLSa had and no longer has, and one it was measured against, kept as classes for the memorisation
benchmark.

SaLSaWithoutBackoff and SaLSaWithoutResolution run the paper's frequency rule, by default at the release's c = 0.5
and beta3 = 0.9: the settings results/memorisation/superseded.md measured them at (results/ablations ran
SaLSaWithoutResolution's behaviour at c = 0.3, beta3 = 0.99: pass them). SaLSaForgettingPerStep and
SaLSaAveragingPerSearch run SaLSa's own defaults and differ from it only in how h and s are smoothed. Why each was
replaced or not taken: docs/design-notes.md.
"""
from __future__ import annotations

import math

import torch

from salsa import SaLSa
from salsa.optim.base import GradientEvaluation, SearchResult
from salsa.optim.closure import Closure
from salsa.optim.criteria import ALWAYS_SEARCH, TINY, search_interval
from salsa.optim.salsa import MOMENTUM, SEARCH

SETTINGS = dict(c=0.5, beta3=0.9, frequency="paper", max_interval=10.0)


class SaLSaWithoutBackoff(SaLSa):
    """After an unresolved search every step searches, and an unresolved search's trial point is taken."""

    def __init__(self, params, **options):
        super().__init__(params, **{**SETTINGS, **options})

    def _plan(self, k: int, since_search: int, interval: float) -> str:
        if not self.adaptive_frequency or k < ALWAYS_SEARCH or not self.line_search_state["resolved"]:
            return SEARCH
        return MOMENTUM if since_search < interval else SEARCH

    def _takes_trial_point(self, resolved: bool) -> bool:
        return True


class SaLSaWithoutResolution(SaLSa):
    """The Armijo test alone decides (no float resolution), a zero loss or s < 1e-8 gives an unchecked momentum step
    at the last step size, and the frequency rule's step-size averages start at 1e-8 without bias correction, as in
    the release."""

    def __init__(self, params, **options):
        super().__init__(params, **{**SETTINGS, **options})
        self.line_search_state.update(eta_fast=1e-8, eta_slow=1e-8)

    def _interval(self) -> float:
        st = self.line_search_state
        return search_interval(st["eta_fast"], st["eta_slow"], self.max_interval)

    def _tolerance(self, ev: GradientEvaluation) -> float:
        return -1.0

    def _line_search(self, closure: Closure, ev: GradientEvaluation, d: list[torch.Tensor], eta: float,
                     beta: float) -> SearchResult:
        st = self.line_search_state
        if ev.loss_value != 0.0 and st["s"] >= TINY:
            return super()._line_search(closure, ev, d, eta, beta)
        self._momentum_step(ev, st["step_size"])
        return SearchResult(st["step_size"], math.nan, accepted=True, trials=0, offset=0.0)


class SaLSaForgettingPerStep(SaLSa):
    """The doubling rule of 0.4: h and s forget per step from the first search on (beta3^n, n steps after the last
    search), and h keeps its decreases when the loss reaches its float resolution."""

    def _beta(self) -> float:
        st = self.line_search_state
        return self.beta3 ** (st["since_search"] + 1) if self.frequency == "doubling" else self.beta3

    def _reach_resolution(self) -> None:
        pass


class SaLSaAveragingPerSearch(SaLSa):
    """The doubling rule with h and s averaged per search throughout, as in the paper, also once the loss has reached
    its float resolution."""

    def _reach_resolution(self) -> None:
        pass
