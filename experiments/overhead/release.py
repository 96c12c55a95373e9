"""The authors' salsa-optimizer 0.1.0, loaded from its wheel under another package name (never copied here).

Its top-level package is also called `salsa`, so the wheel's modules are imported as the package
`salsa_release_0_1_0`. `make install` downloads the wheel to .cache/wheels (or set SALSA_RELEASE_WHEEL).
"""
import importlib
import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

WHEEL = "SaLSa_Optimizer-0.1.0-py3-none-any.whl"
PACKAGE = "salsa_release_0_1_0"
ROOT = Path(__file__).resolve().parents[2]


def load_release(tmp_path) -> SimpleNamespace:
    """The release's classes as `.SaLSA` and `.AdamSLS`; FileNotFoundError (saying how to get the wheel) where
    the wheel is missing."""
    if PACKAGE not in sys.modules:
        wheel = Path(os.environ.get("SALSA_RELEASE_WHEEL", ROOT / ".cache" / "wheels" / WHEEL))
        if not wheel.is_file():
            raise FileNotFoundError(
                f"the authors' release wheel is not at {wheel}: run `make install` (it runs "
                "`pip download salsa-optimizer==0.1.0 --no-deps -d .cache/wheels`) or set SALSA_RELEASE_WHEEL"
            )
        folder = Path(tmp_path) / PACKAGE
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("salsa/") and name.endswith(".py"):
                    (folder / Path(name).name).write_bytes(archive.read(name))
        spec = importlib.util.spec_from_file_location(
            PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return SimpleNamespace(
        SaLSA=importlib.import_module(f"{PACKAGE}.SaLSA").SaLSA,
        AdamSLS=importlib.import_module(f"{PACKAGE}.adam_sls").AdamSLS,
    )


def release_closure(opt, loss_fn):
    """The release SaLSA's closure protocol: closure(backwards) calls zero_grad + backward when asked."""

    def closure(backwards=False):
        loss = loss_fn()
        if backwards:
            opt.zero_grad()
            loss.backward()
        return loss

    return closure


def adam_sls_step(opt, loss_fn):
    """One step of the authors' AdamSLS: their training loop zeroes the gradients, the step calls backward."""
    opt.zero_grad()
    return opt.step(loss_fn)
