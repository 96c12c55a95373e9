"""Line-search optimizers for PyTorch. Depends on torch only: copy this package into any training code."""
from salsa.optim.closure import ClosureOptimizer, NonFiniteError
from salsa.optim.salsa import SaLSa
from salsa.optim.sls import SLS

__all__ = ["SaLSa", "SLS", "ClosureOptimizer", "NonFiniteError"]
