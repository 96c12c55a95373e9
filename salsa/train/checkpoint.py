"""checkpoint.pt: model, optimizer (SaLSa's whole line-search state), scheduler, RNG and loop position.
Only tensors and plain containers, so it loads with torch.load(weights_only=True).

Under torchrun rank 0 writes it (the replicas are identical) with every rank's RNG state under "rng_ranks";
each rank reads it back (so paths.runs must be storage that every node sees) and takes its own RNG state
when the world size is the same, else rank 0's."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from salsa.registry import UserError
from salsa.train.distributed import SINGLE, Ranks
from salsa.train.loop import Progress


def _rng() -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}


def save(path: Path, *, model, opt, schedule, progress: Progress, config_hash: str, ranks: Ranks = SINGLE) -> None:
    """`model` is the bare module (not the DDP wrapper). Every rank calls it; rank 0 writes."""
    rngs = ranks.gather(_rng())
    if not ranks.main:
        return
    state = {
        "config_hash": config_hash,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "schedule": None if schedule is None else schedule.state_dict(),
        "rng": rngs[0],
        "progress": progress.state_dict(),
    }
    if ranks.active:
        state["rng_ranks"] = rngs
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, *, model, opt, schedule, config_hash: str, device, ranks: Ranks = SINGLE) -> Progress:
    state = torch.load(path, map_location=device, weights_only=True)
    if state["config_hash"] != config_hash:
        raise UserError(f"{path} belongs to another config (hash {state['config_hash'][:12]}); move it away and run again")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if schedule is not None:
        schedule.load_state_dict(state["schedule"])
    per_rank = state.get("rng_ranks", [])
    rng = per_rank[ranks.rank] if len(per_rank) == ranks.world_size else state["rng"]
    torch.set_rng_state(rng["cpu"].cpu())
    if rng["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    return Progress(**state["progress"])
