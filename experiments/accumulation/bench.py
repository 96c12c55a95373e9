"""Peak memory of a step with gradient accumulation: 8 micro-batches against one, on the tiny GPT-2.

The harness's closure (salsa.train.loop.make_closure) backpropagates each micro-batch in turn, so one
micro-batch's graph is alive at a time; the line search's trial points run under no_grad. For contrast, "one
graph" is the closure that returns the summed loss of all micro-batches for the optimizer's backward (every
micro-batch's graph alive at once). Peak memory = the most CPU tensor bytes alive at once during 2 steps after
a warm-up step (the PyTorch profiler's memory timeline; parameters, gradients and optimizer state included).

    python -m experiments.accumulation.bench        # writes results/accumulation_memory.md
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
from pathlib import Path

import torch
from omegaconf import OmegaConf

from experiments.overhead.bench import git_commit, peak_tensor_bytes
from salsa.data import Data
from salsa.models import MODELS
from salsa.train.loop import loss_fn, make_closure
from salsa.train.optimizers import OPTIMIZERS

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
MICRO, BLOCK, MICRO_BATCHES = 16, 512, 8      # sequences per micro-batch, tokens per sequence


def build(optimizer: str):
    torch.manual_seed(0)
    data = Data(None, None, None, kind="lm", num_classes=256, input_shape=(BLOCK,))
    model = MODELS["gpt2_tiny"].build(OmegaConf.load(CONF / "model" / "gpt2_tiny.yaml"), data)
    cfg = OmegaConf.load(CONF / "optimizer" / f"{optimizer}.yaml")
    if "schedule" in cfg:  # a baseline: its lr lives in the dataset config; Adam's 1e-3 here
        cfg = OmegaConf.create({"name": cfg.name, "baseline": "paper", "lr": 1e-3, "betas": [0.9, 0.999]})
    return model, OPTIMIZERS[optimizer](cfg, list(model.parameters()), model, 100)


def one_graph_closure(model, x, y, micro: int):
    parts = list(zip(x.tensor_split(micro), y.tensor_split(micro)))
    return lambda: sum(loss_fn(model(xi), yi) for xi, yi in parts) / len(parts)


def measure(optimizer: str, mode: str) -> int:
    torch.set_num_threads(1)
    model, opt = build(optimizer)
    micro = 1 if mode == "one micro-batch" else MICRO_BATCHES
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, 256, (MICRO * micro, BLOCK + 1), generator=generator) for _ in range(3)]

    def step(tokens):
        x, y = tokens[:, :-1], tokens[:, 1:]
        if mode == "one graph":
            opt.step(one_graph_closure(model, x, y, micro))
        else:
            opt.step(make_closure(model, x, y, weight=1.0, micro=micro, autocast=contextlib.nullcontext, grad_clip=None))

    step(batches[0])  # warm-up: optimizer state exists before the measured steps
    return peak_tensor_bytes(lambda: [step(b) for b in batches[1:]])


MODES = ("one micro-batch", "8 micro-batches (accumulated)", "8 micro-batches (one graph)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.accumulation.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", nargs="+", default=["salsa_adam", "sls_adam", "adam"])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "accumulation_memory.md")
    args = parser.parse_args(argv)
    rows = {}
    for optimizer in args.optimizers:
        rows[optimizer] = {mode: measure(optimizer, "one graph" if "one graph" in mode else mode) for mode in MODES}
        print(optimizer, json.dumps(rows[optimizer]), flush=True)
    lines = ["# Gradient accumulation: peak memory, 8 micro-batches against one", "",
             f"Command: `python -m experiments.accumulation.bench --optimizers {' '.join(args.optimizers)}` "
             f"(git {git_commit()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, 1 thread)", "",
             f"Model gpt2_tiny (conf/model/gpt2_tiny.yaml), micro-batch {MICRO} x {BLOCK} tokens. Peak = most CPU tensor "
             "MiB alive at once over 2 steps after a warm-up step (PyTorch profiler memory timeline). Accumulated: the "
             "harness's closure (backward per micro-batch); one graph: the summed loss of all micro-batches given to "
             "the optimizer's backward.", "",
             "| optimizer | " + " | ".join(MODES) + " | accumulated / one | one graph / one |",
             "|---" * (len(MODES) + 3) + "|"]
    for optimizer, peaks in rows.items():
        one, acc, graph = (peaks[m] for m in MODES)
        lines.append(f"| {optimizer} | " + " | ".join(f"{peaks[m] / 2**20:.1f}" for m in MODES)
                     + f" | {acc / one:.3f} | {graph / one:.2f} |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
