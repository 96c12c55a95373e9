"""The config's resolver ${writable_dir:<path>} (conf/config.yaml: hydra.run.dir and hydra.sweep.dir lie under it),
registered by importing this package: run.py imports it, a SLURM job imports it when it unpickles our launcher, and
every other process that composes the config (the sweep's planner, the tests) through Hydra's plugin scan, which
imports every package under hydra_plugins."""
import contextlib
import os
import sys

from omegaconf import OmegaConf

from salsa.contract.refusal import FULL, refusal


def writable_dir(path: str) -> str:
    """${writable_dir:<path>} (hydra.run.dir, hydra.sweep.dir): a clear error (exit 2; a full disk: exit 1), before
    Hydra writes its logs there, when paths.root is not writable."""
    probe = os.path.join(path, f".write_probe_{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w") as f:  # with content: a full disk takes an empty file
            f.write("ok")
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        if e.errno in FULL:
            with contextlib.suppress(OSError):
                os.remove(probe)
            print(f"error: {refusal(e, path)}, then run the same command again", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"error: cannot write to {path} ({e.strerror}). Choose a writable place with paths.root=/some/writable/dir",
              file=sys.stderr)
        raise SystemExit(2) from None
    return path


if not OmegaConf.has_resolver("writable_dir"):
    OmegaConf.register_new_resolver("writable_dir", writable_dir)
