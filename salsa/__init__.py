"""SaLSa and SLS line-search optimizers (``from salsa import SaLSa, SLS``) and the benchmark harness."""
from salsa.optim import SLS, ClosureOptimizer, NonFiniteError, SaLSa

__all__ = ["SaLSa", "SLS", "ClosureOptimizer", "NonFiniteError"]
__version__ = "0.1.0"
