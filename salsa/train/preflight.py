"""The checks before a run loads or writes anything: the model takes the data set's inputs, the optimizer's
constructor takes its arguments, the run directory is writable, no split is empty."""
from __future__ import annotations

import contextlib
import os

import torch
from hydra.errors import InstantiationException

from salsa.contract.files import open_plain
from salsa.contract.refusal import FULL, Fault, refusal
from salsa.contract.runid import RunId
from salsa.models import MODELS
from salsa.registry import UserError
from salsa.train.optimizers import build_optimizer


def check_compatible(cfg) -> None:
    """Fails before any data is loaded when the model cannot take the data set's inputs."""
    kind, accepts = cfg.dataset.kind, MODELS[cfg.model.name].accepts
    if kind not in accepts:
        fitting = [m for m in MODELS.names() if kind in MODELS[m].accepts]
        raise UserError(f"model={cfg.model.name} cannot train on dataset={cfg.dataset.name}: its inputs are {kind} data and "
                        f"{cfg.model.name} takes {'/'.join(sorted(accepts))} inputs. Models for {kind} data: {', '.join(fitting)}.")
    micro, batch = cfg.trainer.micro_batches, cfg.trainer.batch_size
    if not isinstance(micro, int) or not 1 <= micro <= batch:
        raise UserError(f"trainer.micro_batches={micro} must be an integer from 1 to trainer.batch_size={batch} "
                        "(the micro-batches a step's batch is cut into)")


def check_optimizer(cfg) -> None:
    """The optimizer's constructor checks its own arguments (for library users); its ValueError or TypeError, or
    a `_target_` that cannot be imported, becomes the harness's one-line error here, before anything is written."""
    probe = torch.nn.Parameter(torch.zeros(1))
    try:
        build_optimizer(cfg.optimizer, [probe], model=None, steps_per_epoch=1)
    except InstantiationException:
        raise UserError(f"optimizer={cfg.optimizer.name}: optimizer._target_={cfg.optimizer._target_} cannot be imported; "
                        "it must name an optimizer class (module.Class)") from None
    except (ValueError, TypeError) as e:
        raise UserError(f"optimizer={cfg.optimizer.name}: {e}; fix the optimizer.* values "
                        f"(conf/optimizer/{cfg.optimizer.name}.yaml lists them)") from None


def check_writable(where: RunId) -> None:
    """The run directory takes a file with content (a full disk: Fault, exit 1; a place not writable: exit 2)."""
    probe = where.path / f".write_probe_{os.getpid()}"  # its own: two commands may probe the directory at once
    try:
        where.path.mkdir(parents=True, exist_ok=True)
        with open_plain(probe, "w") as f:  # never through a link
            f.write("ok")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        if e.errno in FULL:
            with contextlib.suppress(OSError):
                probe.unlink()
            raise Fault(f"{refusal(e, where.path)}, then run the same command again") from None
        raise UserError(f"cannot write the run directory {where.path} ({e.strerror}). Choose a writable place with "
                        f"paths.root=/some/writable/dir (runs go to <paths.root>/runs) or paths.runs=/some/writable/dir.") from e


def check_splits(cfg, data) -> None:
    """An empty split would divide by zero in the loop or in evaluation."""
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        if split is not None and len(split) == 0:
            raise UserError(f"the {name} split of dataset={cfg.dataset.name} is empty: check dataset.val_fraction, "
                            "dataset.test_fraction and the files under paths.data")
