"""checkpoint.pt: the network, optimizer (SaLSa's whole line-search state), scheduler, RNG and loop position.
Only tensors and plain containers, so it loads with torch.load(weights_only=True).

Under torchrun rank 0 writes it (the replicas are identical) with every rank's RNG state under "rng_ranks";
each rank reads it back (so paths.runs must be storage that every node sees) and takes its own RNG state
when the world size is the same, else rank 0's (a changed world size is a numerics change: see check_numerics).
A checkpoint that cannot be read is moved aside by the runner (Damaged), never deleted."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from salsa.contract.files import NotPlain, atomic_write, open_plain
from salsa.registry import UserError
from salsa.train.distributed import SINGLE, Ranks
from salsa.train.environment import RECORDED_ONLY
from salsa.train.loop import Progress

KEYS = ("config_hash", "model", "optimizer", "schedule", "rng", "progress")


class Damaged(Exception):
    """The checkpoint file cannot be read back (truncated, garbage, not written by this harness)."""


def _rng() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}


def write(path: Path, *, net, opt, schedule, progress: Progress, config_hash: str, numerics: dict,
          ranks: Ranks = SINGLE) -> None:
    """`net` is the bare module (not the DDP wrapper). Every rank calls it; rank 0 writes (an OSError such as
    a full disk leaves the previous checkpoint and no temporary file)."""
    rngs = ranks.gather(_rng())
    if not ranks.main:
        return
    state = {
        "config_hash": config_hash,
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "schedule": None if schedule is None else schedule.state_dict(),
        "rng": rngs[0],
        "progress": progress.state_dict(),
        "numerics": numerics,
    }
    if ranks.active:
        state["rng_ranks"] = rngs
    atomic_write(path, lambda f: _torch_save(state, f), binary=True)


class _Writes:
    """The file torch.save writes to, keeping the OSError of a failed write: torch reports it as its own
    RuntimeError ("enforce fail at inline_container.cc"), which says nothing of the disk."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.file.flush()


def _torch_save(state: dict, file) -> None:
    writes = _Writes(file)
    try:
        torch.save(state, writes)
    except RuntimeError:
        if writes.error is None:
            raise
        raise writes.error from None


def read(path: Path, device) -> dict:
    """The checkpoint's contents; Damaged when they cannot be read (its reason leaves out torch's advice to
    load with weights_only=False, which a checkpoint of ours never needs)."""
    with warnings.catch_warnings(record=True) as caught:  # torch warns about some damage (an odd pickle protocol)
        warnings.simplefilter("always")
        try:
            with open_plain(path, "rb") as f:  # never through a link, never a device
                state = torch.load(f, map_location=device, weights_only=True)
        except (OSError, NotPlain):
            raise
        except Exception as e:  # the message says what the warnings would have: the file is damaged
            reason = "empty or truncated" if isinstance(e, EOFError) else f"unreadable: {type(e).__name__}"
            raise Damaged(f"{reason}, size {path.stat().st_size} bytes") from None
    for w in caught:  # a checkpoint that loads: its warnings are the user's to see
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    missing = [key for key in KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise Damaged(f"not a checkpoint of this harness: no {', '.join(missing)}")
    return state


def check_numerics(path: Path, saved: dict | None, now: dict, *, allow: bool) -> list[str]:
    """The numerics settings that differ between the checkpoint and this process ("name: saved -> now");
    a UserError unless allow (trainer.allow_numerics_change=true). Checkpoints without a record pass."""
    changes = [f"{key}: {saved.get(key)} -> {now.get(key)}" for key in sorted(set(saved or {}) | set(now))
               if saved is not None and key not in RECORDED_ONLY and saved.get(key) != now.get(key)]
    if changes and not allow:
        raise UserError(f"{path} was written with other numerics settings ({'; '.join(changes)}): resuming would mix "
                        "them in one run. Resume with the checkpoint's settings (e.g. the same OMP_NUM_THREADS), or "
                        "accept the change with trainer.allow_numerics_change=true (it is recorded in summary.json)")
    return changes


def check_config(state: dict, path: Path, config_hash: str) -> None:
    if state["config_hash"] != config_hash:
        raise UserError(f"{path} belongs to another config (hash {state['config_hash'][:12]}); move it away and run again")


def restore(state: dict, path: Path, *, net, opt, schedule, config_hash: str, numerics: dict,
            allow_numerics_change: bool, ranks: Ranks = SINGLE) -> Progress:
    """Loads a checkpoint read by `read` into the network, optimizer, schedule and RNG; the loop's Progress."""
    check_config(state, path, config_hash)
    changes = check_numerics(path, state.get("numerics"), numerics, allow=allow_numerics_change)
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if schedule is not None:
        schedule.load_state_dict(state["schedule"])
    per_rank = state.get("rng_ranks", [])
    rng = per_rank[ranks.rank] if len(per_rank) == ranks.world_size else state["rng"]
    torch.set_rng_state(rng["cpu"].cpu())
    if rng["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    progress = Progress(**{"records": None, **state["progress"]})  # None: a checkpoint from before records were counted
    if changes:
        progress.numerics_changes.append({"step": progress.step, "changes": changes})
    return progress
