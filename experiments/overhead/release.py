"""The authors' salsa-optimizer 0.1.0, loaded from its wheel under another module name (never copied here).

Its top-level module is also called `salsa`, so the file is imported from the wheel as
`salsa_release_0_1_0`. `make install` downloads the wheel to .cache/wheels (or set SALSA_RELEASE_WHEEL).
"""
import importlib.util
import os
import zipfile
from pathlib import Path

WHEEL = "SaLSa_Optimizer-0.1.0-py3-none-any.whl"
ROOT = Path(__file__).resolve().parents[2]


def load_release(tmp_path):
    """The release's SaLSA module; FileNotFoundError (saying how to get the wheel) where it is missing."""
    wheel = Path(os.environ.get("SALSA_RELEASE_WHEEL", ROOT / ".cache" / "wheels" / WHEEL))
    if not wheel.is_file():
        raise FileNotFoundError(
            f"the authors' release wheel is not at {wheel}: run `make install` (it runs "
            "`pip download salsa-optimizer==0.1.0 --no-deps -d .cache/wheels`) or set SALSA_RELEASE_WHEEL"
        )
    with zipfile.ZipFile(wheel) as archive:
        source = archive.extract("salsa/SaLSA.py", tmp_path)
    spec = importlib.util.spec_from_file_location("salsa_release_0_1_0", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def release_closure(opt, loss_fn):
    """The release's closure protocol: closure(backwards) calls zero_grad + backward when asked."""

    def closure(backwards=False):
        loss = loss_fn()
        if backwards:
            opt.zero_grad()
            loss.backward()
        return loss

    return closure
