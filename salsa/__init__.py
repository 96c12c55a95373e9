"""SaLSa and SLS line-search optimizers (``from salsa import SaLSa, SLS``) and the benchmark harness."""
__all__ = ["SaLSa", "SLS", "ClosureOptimizer", "NonFiniteError"]
__version__ = "0.5.0"


def __getattr__(name: str):
    """The optimizers load torch on first use: `import salsa` (the harness's config checks, the analysis's
    catalogue reader) stays light."""
    if name in __all__:
        from salsa import optim
        return getattr(optim, name)
    raise AttributeError(f"module 'salsa' has no attribute {name!r}")
