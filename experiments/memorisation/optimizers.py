"""The optimizers the memorisation benchmark compares: name -> (folder -> (build(model), step(opt, closure)))."""
from __future__ import annotations

from experiments.overhead.release import load_release, release_closure
from salsa import SaLSa


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


OPTIMIZERS = {
    "salsa": ours(),
    "release": release,
}
