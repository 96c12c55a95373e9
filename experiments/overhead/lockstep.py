"""What the overhead benchmarks share: the optimizers they compare, the lockstep loop that times them, and the
provenance lines and files of their reports (bench.py on CPU, gpu.py on the paper's shapes, curves.py over long runs)."""
from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from experiments.overhead.release import release_closure
from salsa import SLS
from salsa.reference import ReleaseSaLSA
from salsa.train.optimizers import build_optimizer, catalogue_entry

ROOT = Path(__file__).resolve().parents[2]


def from_catalogue(name: str, model, **overrides):
    """The catalogue's entry `name` (conf/optimizer/<name>.yaml) on the model's parameters."""
    return build_optimizer(catalogue_entry(name, **overrides), model.parameters(), model=model, steps_per_epoch=1)


def paper_salsa_adam(model, **overrides):
    """The paper's ADAM SaLSa column (conf/optimizer/paper_salsa_adam.yaml) on the model's parameters."""
    return from_catalogue("paper_salsa_adam", model, **overrides)


def make_steppers(release, n_batches_per_epoch: int) -> dict[str, tuple]:
    """name -> (model -> optimizer, (optimizer, loss_fn) -> loss, optimizer -> (forwards, backwards) so far).
    `release` is experiments/overhead/release.py's load_release() or None (then no "release_wheel" entry)."""

    def plain_step(opt, loss_fn):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    def adam_counts(opt):
        return (opt.state_dict()["state"][0]["step"].item(),) * 2

    def ours_step(opt, loss_fn):
        return opt.step(loss_fn)

    def ours_counts(opt):
        return opt.totals()["forwards"], opt.totals()["backwards"]

    steppers = {
        "torch_adam": (lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True), plain_step, adam_counts),
        "torch_adam_fused": (lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, fused=True), plain_step, adam_counts),
        "ours_salsa_adam": (lambda m: from_catalogue("ours_salsa_adam", m), ours_step, ours_counts),
        "ours_salsa_adam_paper_frequency": (lambda m: from_catalogue("ours_salsa_adam_paper_frequency", m), ours_step, ours_counts),
        "ours_sls_sgd": (lambda m: SLS(m.parameters(), model=m, n_batches_per_epoch=n_batches_per_epoch), ours_step, ours_counts),
        # the paper's ADAM SaLSa as re-implemented: NLP setting (with the frequency rule) and images setting (without)
        "paper_salsa_adam_speed_up": (lambda m: paper_salsa_adam(m, speed_up=True), ours_step, ours_counts),
        "paper_salsa_adam": (lambda m: paper_salsa_adam(m, speed_up=False), ours_step, ours_counts),
        "release_salsa": (lambda m: ReleaseSaLSA(m.parameters(), model=m), ours_step, ours_counts),
    }
    if release is not None:
        steppers["release_wheel"] = (lambda m: release.SaLSA(m.parameters()),
                               lambda opt, f: opt.step(release_closure(opt, f)),
                               lambda opt: (opt.state["n_forwards"], opt.state["n_backwards"]))
    return steppers


@dataclass
class Run:
    """One optimizer's training run in a lockstep: what each step measured and its (forwards, backwards) after it."""
    model: Any
    opt: Any
    step: Callable
    counts: Callable
    loss: Callable  # (model, batch) -> loss tensor
    records: list[dict] = field(default_factory=list)
    totals: list[tuple] = field(default_factory=list)


def timed(step: Callable) -> dict:
    t0 = time.perf_counter()
    step()
    return dict(time_s=time.perf_counter() - t0)


def lockstep(runs: dict[str, Run], batch: Callable[[int], Any], steps: int, measure: Callable = timed,
             seconds: float = math.inf) -> int:
    """Trains every run in lockstep: step i of each, in rotating order, before step i + 1 of any, so that the load
    of a shared machine falls on all of them alike. measure(step) runs one step and returns what it measured.
    Stops early, after a whole round, once `seconds` have passed; returns the number of steps taken."""
    names, started = list(runs), time.perf_counter()
    for i in range(steps):
        x = batch(i)
        for name in names[i % len(names):] + names[: i % len(names)]:
            r = runs[name]
            r.records.append(measure(lambda: r.step(r.opt, lambda: r.loss(r.model, x))))
            r.totals.append(r.counts(r.opt))
        if time.perf_counter() - started > seconds:
            return i + 1
    return steps


def second_half(r: Run, key: str = "time_s") -> list:
    return [m[key] for m in r.records[len(r.records) // 2:]]


def per_step(r: Run) -> tuple[float, float]:
    """Forwards and backwards per step over the second half of the run."""
    half, n = len(r.records) // 2, len(r.records)
    start = r.totals[half - 1] if half else (0, 0)
    return tuple((b - a) / (n - half) for a, b in zip(start, r.totals[-1]))


def summary(r: Run) -> dict:
    times = second_half(r)
    forwards, backwards = per_step(r)
    return dict(step_time_s=statistics.fmean(times), median_step_time_s=statistics.median(times),
                forwards_per_step=forwards, backwards_per_step=backwards)


def forward_only(loss_fn):
    with torch.no_grad():
        return loss_fn()


# A no-grad forward timed in the same rotation as the optimizers: the forward share of the floors.
FORWARD = (lambda model: None, lambda opt, loss_fn: forward_only(loss_fn), lambda opt: (0, 0))


def add_floors(rows: dict[str, dict], forward_s: float) -> float:
    """Each row's x_adam, floor_s = Adam's step x (1 + forward share x (forwards/step - 1)) (the time its algorithm
    needs: Adam's step plus its extra forwards) and x_floor; returns the forward share (forward / Adam's step)."""
    adam = rows["torch_adam"]["step_time_s"]
    share = forward_s / adam
    for row in rows.values():
        row["x_adam"] = row["step_time_s"] / adam
        row["floor_s"] = adam * (1 + share * (row["forwards_per_step"] - 1))
        row["x_floor"] = row["step_time_s"] / row["floor_s"]
    return share


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def command(module: str, argv: list[str] | None = None) -> str:
    return " ".join([f"python -m {module}"] + (sys.argv[1:] if argv is None else argv))


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return f"{platform.processor() or platform.machine()} (CPU, {torch.get_num_threads()} thread(s))"


def provenance() -> dict:
    return dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), git=git_commit(), torch=torch.__version__)


def stamp(p: dict | None = None) -> str:
    p = p or provenance()
    return f"Date: {p['date']}; git {p['git']}; torch {p['torch']}"


def write(out: Path, markdown: str, results: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
