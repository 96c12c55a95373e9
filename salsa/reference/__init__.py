"""The authors' optimizer classes, re-implemented readably and exact to their numbers (torch only).

`AdamSLS` is the class behind the paper's table (its four line-search columns), `ReleaseSaLSA` the later
release class (salsa-optimizer 0.1.0, where it is called SaLSA). Both run on the closure protocol of `salsa.optim`
and keep its safeguards (restored RNG for trials, untouched buffers, DDP-averaged losses, full state_dict,
NonFiniteError); everything else follows the authors' numerics, bugs included (docs/optimizers.md).
The replication columns use these; users get `salsa.SaLSa`.
"""
from salsa.reference.adam_sls import AdamSLS
from salsa.reference.release import ReleaseSaLSA

__all__ = ["AdamSLS", "ReleaseSaLSA"]

