"""make install-offline refuses, in one line and before it builds anything, a Python without torch and a torch older
than pyproject.toml's `torch>=` (a stand-in torch package on PYTHONPATH plays the interpreter's torch)."""
import os
import subprocess
import sys

import pytest

from tests.realformat import REPO


def install(tmp_path, torch_init: str):
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(torch_init)
    (tmp_path / "wheelhouse").mkdir()
    return subprocess.run([sys.executable, "tools/offline_install.py", "--wheelhouse", str(tmp_path / "wheelhouse"),
                           "--venv", str(tmp_path / "venv")], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})


@pytest.mark.parametrize("torch_init,why", [
    ("raise ImportError('No module named torch')", "has no torch (No module named torch)"),
    ("__version__ = '2.10.1+cu128'", "torch 2.10.1+cu128 ("),
])
def test_refuses_in_one_line_before_building_anything(tmp_path, torch_init, why):
    done = install(tmp_path, torch_init)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ") and why in line and not (tmp_path / "venv").exists()
    if "2.10.1" in line:
        assert line.endswith("is older than the oldest supported, 2.11 (pyproject.toml)")
