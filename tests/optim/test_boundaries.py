"""`from salsa import SaLSa, SLS` and `salsa.reference` need torch only: no Hydra, transformers, wandb or the harness."""
import subprocess
import sys


def test_importing_the_optimizers_loads_no_harness_dependency():
    code = (
        "import sys; from salsa import SaLSa, SLS, ClosureOptimizer; from salsa.reference import AdamSLS, ReleaseSaLSA; "
        "heavy = [m for m in ('hydra', 'omegaconf', 'transformers', 'wandb', 'datasets', 'salsa.train', 'salsa.data') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
