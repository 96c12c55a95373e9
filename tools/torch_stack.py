"""What a Python that already has PyTorch brings, and which PyTorch the project supports: the one place both are
written down for `make wheelhouse` and `make install-offline` (docs/cluster.md). Standard library only: it runs under
the interpreter being checked, before anything else is installed."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# torch, torchvision and their CUDA and compiler libraries, and what torch and torchvision themselves require: any
# Python that has torch and torchvision has these, in the versions its torch was built against
TORCH_FAMILY = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
TORCH_REQUIRES = {"filelock", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "fsspec",
                  "numpy", "pillow"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def provided_with_torch(name: str) -> bool:
    name = canonical(name)
    return bool(TORCH_FAMILY.match(name)) or name in TORCH_REQUIRES


def oldest_torch() -> tuple[int, ...]:
    """The oldest supported torch, from pyproject.toml's dependency `torch>=X.Y`."""
    found = re.search(r'"torch>=([0-9.]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"))
    if not found:
        raise SystemExit("error: pyproject.toml declares no `torch>=X.Y` dependency")
    return release(found.group(1))


def release(version: str) -> tuple[int, ...]:
    """2.11.0+cu130 -> (2, 11, 0); 2.12.0a0 -> (2, 12, 0)."""
    return tuple(int(re.match(r"\d+", part).group()) for part in version.split("+")[0].split(".")[:3])


def lock_pins() -> list[str]:
    """requirements.lock's `name==version` lines."""
    lines = (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if "==" in line and not line.lstrip().startswith("#")]


def pin_name(pin: str) -> str:
    return canonical(pin.split("==")[0])
