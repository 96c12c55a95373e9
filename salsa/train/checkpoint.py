"""checkpoint.pt: model, optimizer (SaLSa's whole line-search state), scheduler, RNG and loop position.
Only tensors and plain containers, so it loads with torch.load(weights_only=True)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from salsa.registry import UserError
from salsa.train.loop import Progress


def save(path: Path, *, model, opt, schedule, progress: Progress, config_hash: str) -> None:
    state = {
        "config_hash": config_hash,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "schedule": None if schedule is None else schedule.state_dict(),
        "rng": {"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []},
        "progress": progress.state_dict(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, *, model, opt, schedule, config_hash: str, device) -> Progress:
    state = torch.load(path, map_location=device, weights_only=True)
    if state["config_hash"] != config_hash:
        raise UserError(f"{path} belongs to another config (hash {state['config_hash'][:12]}); move it away and run again")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if schedule is not None:
        schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["rng"]["cpu"].cpu())
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
    return Progress(**state["progress"])
