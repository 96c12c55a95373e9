"""hydra_plugins/salsa_launchers as Hydra and pip see it: a fresh interpreter's plugin scan (what every `python run.py`
does) registers our SLURM launcher without a warning and loads nothing from experiments/ (the launchers never import
the sweep tool); the `harness` extra installs every Hydra plugin that conf/hydra/launcher/*.yaml builds on."""
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from tests.conftest import REPO

LAUNCHERS = sorted(p.stem for p in (REPO / "conf" / "hydra" / "launcher").glob("*.yaml"))
SCAN = ("import sys; from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher; "
        "print(*(f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Launcher)), sep='\\n'); "
        "print('experiments loaded:', sorted(m for m in sys.modules if m.split('.')[0] == 'experiments'))")


def test_hydra_finds_our_launcher_without_a_warning_and_without_experiments():
    out = subprocess.run([sys.executable, "-c", SCAN], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "[Hydra plugins scanner]" not in out.stderr and "Plugin is incompatible" not in out.stderr, out.stderr
    assert "hydra_plugins.salsa_launchers.slurm.SlurmLauncher" in out.stdout.splitlines()
    assert "experiments loaded: []" in out.stdout


def test_hydra_finds_our_launcher_from_outside_the_checkout(tmp_path):
    """An app started anywhere sees the package as installed (make install: compat editable mode), not through the
    checkout as the working directory or PYTHONPATH; a module added to the checkout after the install is found too."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", SCAN], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "hydra_plugins.salsa_launchers.slurm.SlurmLauncher" in out.stdout.splitlines(), (
        f"Hydra's plugin scan does not find our launcher outside the checkout: reinstall with `make install` "
        f"(compat editable mode)\n{out.stdout}{out.stderr}")
    added = REPO / "salsa" / f"_added_after_install_{os.getpid()}.py"
    added.write_text("FOUND = True\n")
    try:
        found = subprocess.run([sys.executable, "-c", f"import salsa.{added.stem} as m; print(m.FOUND)"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120)
    finally:
        added.unlink()
    assert found.stdout.strip() == "True", found.stderr


def harness_extra() -> set[str]:
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower() for req in extras["harness"]}


def owner(module: str, candidates: set[str]) -> str | None:
    """The distribution among candidates whose files hold module."""
    path = Path(sys.modules[module].__file__).resolve()
    for name in candidates:
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            continue
        if any(Path(metadata.distribution(name).locate_file(f)).resolve() == path for f in files if f.suffix == ".py"):
            return name
    return None


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_the_harness_extra_installs_the_plugins_each_launcher_config_uses(launcher):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    classes = [get_class(cfg.hydra.launcher._target_), *(get_class(c._target_) for c in cfg.hydra.callbacks.values())]
    plugins = {c.__module__ for cls in classes for c in cls.__mro__ if c.__module__.startswith("hydra_plugins.")}
    theirs = {m for m in plugins if not m.startswith("hydra_plugins.salsa_launchers.")}
    assert theirs, plugins                                  # each config builds on a plugin package (joblib, submitit)
    extra = harness_extra()
    assert not [m for m in theirs if owner(m, extra) is None], f"installed by no package of the harness extra ({sorted(extra)})"
