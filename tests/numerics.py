"""Tolerances for two float64 training runs that differ only in rounding (another summation order, other
kernels): one process vs two gloo ranks, eager vs torch.compile.

A sum of n terms in any order is within n * u of the exact sum relative to the sum of the terms' magnitudes
(u = 2^-53; n = 256, the longest reduction in the tests' 256-wide MLP): one step's loss, gradient or update differs
by ONE_STEP = 2.8e-14 (relative, for losses; relative to the terms, for gradients). Training amplifies that over
the steps by a factor no a-priori bound gives; TRAINING_TOL allows 2^15 = 3.3e4, more than the largest
amplification seen in these runs in float32 (Adam's per-element normalisation turned 256 * 2^-24 = 1.5e-5 into
22% of a layer's largest weight after 40 steps: 1.5e4), while a bug (a wrong shard, a missing or doubled
all-reduce, a mis-weighted batch, another closure) moves losses and weights by 1e-3 relative or more. In float32
the legitimate difference is as large as such a bug's: hence float64 (trainer.precision=fp64).
Discrete decisions (trials accepted, backtracks, whether to search) are compared exactly.
"""
ONE_STEP = 256 * 2.0**-53
TRAINING_TOL = 2**15 * ONE_STEP  # 9.3e-10
