"""salsa.contract is readable without torch or the training code, and the analysis reads the run directory
through it, never through salsa.train."""
import ast
import subprocess
import sys

from tests.conftest import REPO

MODULES = ("salsa.contract", "salsa.contract.runid", "salsa.contract.files", "salsa.contract.verify",
           "salsa.contract.catalogue")


def test_the_contract_loads_neither_torch_nor_the_training_code():
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {MODULES!r}]; "
            "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'salsa.train'))); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def imported_modules(path) -> set[str]:
    """Every module a file's import statements name (relative imports resolved within its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_analysis_imports_no_training_code():
    files = sorted((REPO / "analysis").rglob("*.py"))
    assert files
    found = {f"{path.relative_to(REPO)}: {name}" for path in files for name in imported_modules(path)
             if name == "salsa.train" or name.startswith("salsa.train.") or name in ("salsa.optim", "salsa.reference")}
    assert not found, sorted(found)
