"""Peak memory of a step with gradient accumulation: 8 micro-batches against one, on the tiny GPT-2.

The harness's closure (salsa.train.loop.make_closure) backpropagates each micro-batch in turn, so one
micro-batch's graph is alive at a time; the line search's trial points run under no_grad. For contrast, "one
graph" is the closure that returns the summed loss of all micro-batches for the optimizer's backward (every
micro-batch's graph alive at once). Each measurement runs in a fresh process (`--one OPTIMIZER MODE`): a warm-up
step (the optimizer state exists), then the peak resident memory (Linux VmHWM, reset through
/proc/self/clear_refs) over 2 steps; "step" = that peak minus the resident memory before the 2 steps.
MALLOC_MMAP_THRESHOLD_ is fixed so that freed tensors go back to the system and the peak follows the live
tensors instead of glibc's caching.

    python -m experiments.accumulation.bench        # writes results/accumulation_memory.md
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from salsa.data import Data
from salsa.models import MODELS
from salsa.train.loop import loss_fn, make_closure
from salsa.train.optimizers import build_optimizer

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
MICRO, BLOCK, MICRO_BATCHES = 16, 256, 8      # sequences per micro-batch, tokens per sequence


def build(optimizer: str):
    """gpt2_tiny and the optimizer as run.py composes them on the GPT-2 task (dataset=openwebtext)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["dataset=openwebtext", "model=gpt2_tiny", f"optimizer={optimizer}"])
    torch.manual_seed(0)
    data = Data(None, None, None, kind="lm", num_classes=256, input_shape=(BLOCK,))
    model = MODELS["gpt2_tiny"].build(cfg.model, data)
    return model, build_optimizer(cfg.optimizer, list(model.parameters()), model=model, steps_per_epoch=100)


def one_graph_closure(model, x, y, micro: int):
    parts = list(zip(x.tensor_split(micro), y.tensor_split(micro)))
    return lambda: sum(loss_fn(model(xi), yi) for xi, yi in parts) / len(parts)


def _kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


def measure(optimizer: str, mode: str) -> dict:
    torch.set_num_threads(1)
    model, opt = build(optimizer)
    micro = 1 if mode == MODES[0] else MICRO_BATCHES
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 256, (MICRO * micro, BLOCK + 1), generator=generator) for _ in range(3)]

    def step(tokens):
        x, y = tokens[:, :-1], tokens[:, 1:]
        if mode == MODES[2]:
            opt.step(one_graph_closure(model, x, y, micro))
        else:
            opt.step(make_closure(model, x, y, weight=1.0, micro=micro, autocast=contextlib.nullcontext, grad_clip=None))

    step(batches[0])  # warm-up: optimizer state exists before the measured steps
    Path("/proc/self/clear_refs").write_text("5")   # resets VmHWM to the current resident size
    before = _kib("VmRSS")
    for tokens in batches[1:]:
        step(tokens)
    peak = _kib("VmHWM")
    return {"peak_mib": peak / 1024, "step_mib": (peak - before) / 1024}


def run_one(optimizer: str, mode: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-m", "experiments.accumulation.bench", "--one", optimizer, mode],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


MODES = ("one micro-batch", "8 micro-batches (accumulated)", "8 micro-batches (one graph)")


def _ratio(a: dict, b: dict) -> str:
    """a's peak over b's, and (in brackets) their per-step memory ratio."""
    return f"{a['peak_mib'] / b['peak_mib']:.3f} ({a['step_mib'] / b['step_mib']:.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.accumulation.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", nargs="+", default=["salsa", "ours_salsa_adam", "torch_adam"])
    parser.add_argument("--one", nargs=2, metavar=("OPTIMIZER", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "accumulation_memory.md")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one)))
        return 0
    rows = {}
    for optimizer in args.optimizers:
        rows[optimizer] = {mode: run_one(optimizer, mode) for mode in MODES}
        print(optimizer, json.dumps(rows[optimizer]), flush=True)
    lines = ["# Gradient accumulation: peak memory, 8 micro-batches against one", "",
             f"Command: `python -m experiments.accumulation.bench --optimizers {' '.join(args.optimizers)}` "
             f"(git {git_commit()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread; "
             "a shared 2-core machine: memory does not depend on the load)", "",
             f"Model gpt2_tiny (conf/model/gpt2_tiny.yaml) composed on the GPT-2 task, micro-batch {MICRO} x {BLOCK} "
             "tokens, the optimizer as run.py builds it. Peak: the process's peak resident memory (MiB) over 2 steps "
             "after a warm-up step; step: that peak minus the resident memory before them (what the steps add). "
             "Accumulated: the harness's closure (backward per micro-batch); one graph: the summed loss of all "
             "micro-batches given to the optimizer's backward. Each cell is a fresh process.", "",
             "| optimizer | " + " | ".join(f"{m}: peak / step" for m in MODES)
             + " | accumulated / one: peak (step) | one graph / one: peak (step) |",
             "|---" * (len(MODES) + 3) + "|"]
    for optimizer, cells in rows.items():
        one, acc, graph = (cells[m] for m in MODES)
        lines.append(f"| {optimizer} | " + " | ".join(f"{cells[m]['peak_mib']:.0f} / {cells[m]['step_mib']:.0f}" for m in MODES)
                     + f" | {_ratio(acc, one)} | {_ratio(graph, one)} |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
