"""The optimizers the memorisation benchmark compares: name -> (folder -> (build(model), step(opt, closure)))."""
from __future__ import annotations

from experiments.memorisation.superseded import (
    SaLSaAveragingPerSearch,
    SaLSaForgettingPerStep,
    SaLSaWithoutBackoff,
    SaLSaWithoutResolution,
)
from experiments.overhead.lockstep import paper_salsa_adam
from experiments.overhead.release import load_release, release_closure
from salsa import SaLSa
from salsa.reference import ReleaseSaLSA


def release(folder):
    module = load_release(folder)

    def step(opt, closure):
        try:
            return opt.step(release_closure(opt, closure))
        except ValueError as e:  # the release's NaN check: 'nans detected'
            raise FloatingPointError(str(e)) from None

    return lambda m: module.SaLSA(m.parameters()), step


def ours(cls, **options):
    return lambda folder: (lambda m: cls(m.parameters(), model=m, **options), lambda opt, closure: opt.step(closure))


OPTIMIZERS = {
    "ours_salsa_adam": ours(SaLSa),
    "ours_salsa_adam_paper_frequency": ours(SaLSa, frequency="paper", max_interval=10),
    # the paper's rule at the release's c = 0.5, beta3 = 0.9 (0.2's SaLSa)
    "ours_salsa_adam_release_settings": ours(SaLSa, c=0.5, beta3=0.9, frequency="paper", max_interval=10),
    "superseded_without_backoff": ours(SaLSaWithoutBackoff),
    "superseded_without_resolution": ours(SaLSaWithoutResolution),
    "superseded_forgetting_per_step": ours(SaLSaForgettingPerStep),  # 0.4's SaLSa()
    "variant_averaging_per_search": ours(SaLSaAveragingPerSearch),
    "release_wheel": release,
    "release_salsa": ours(ReleaseSaLSA),
    # the paper's ADAM SaLSa column (conf/optimizer/paper_salsa_adam.yaml): c=0.3, beta_s=0.99, no speed-up
    "paper_salsa_adam": lambda folder: (paper_salsa_adam, lambda opt, closure: opt.step(closure)),
}
