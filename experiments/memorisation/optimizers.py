"""The optimizers the memorisation benchmark compares: name -> (folder -> (build(model), step(opt, closure)))."""
from __future__ import annotations

from experiments.overhead.lockstep import paper_salsa_adam
from experiments.overhead.release import load_release, release_closure
from salsa import SaLSa
from salsa.reference import ReleaseSaLSA


def ours(**options):
    return lambda folder: (lambda m: SaLSa(m.parameters(), model=m, **options), lambda opt, closure: opt.step(closure))


def release(folder):
    module = load_release(folder)

    def step(opt, closure):
        try:
            return opt.step(release_closure(opt, closure))
        except ValueError as e:  # the release's NaN check: 'nans detected'
            raise FloatingPointError(str(e)) from None

    return lambda m: module.SaLSA(m.parameters()), step


def reference(cls, **options):
    return lambda folder: (lambda m: cls(m.parameters(), model=m, **options), lambda opt, closure: opt.step(closure))


OPTIMIZERS = {
    "salsa": ours(),
    "salsa_no_backoff": ours(unresolved_backoff=False),  # the default before issue 20
    "salsa_old": ours(resolution_aware=False, debiased_frequency=False),
    "release": release,
    "reference_salsa": reference(ReleaseSaLSA),
    # the paper's ADAM SaLSa column (conf/optimizer/paper_salsa_adam.yaml): c=0.3, beta_s=0.99, no speed-up
    "reference_adamsls": lambda folder: (paper_salsa_adam, lambda opt, closure: opt.step(closure)),
}
