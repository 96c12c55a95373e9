"""Forwards per step and step time over a long run: our SaLSa (its default frequency rule and the paper's) and the
paper's ADAM SaLSa (salsa.reference.AdamSLS, NLP setting), with Adam as the yardstick, trained in lockstep
(lockstep.py) on the same batches.

On CPU the overhead benchmark's digits MLP (bench.py), on CUDA one of the GPU benchmark's workloads (workloads.py).
Each curve is the mean over consecutive windows of --window steps.

    OMP_NUM_THREADS=1 python -m experiments.overhead.curves                          # 20k steps -> results/overhead_curves/
    python -m experiments.overhead.curves --device cuda --workload resnet34/fp32 --steps 20000
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

from experiments.overhead.bench import BATCH, MODELS, cross_entropy
from experiments.overhead.gpu import WORKLOADS, cuda_timed
from experiments.overhead.lockstep import ROOT, Run, command, lockstep, machine, make_steppers, provenance, stamp, summary, timed
from experiments.overhead.workloads import Workload, seeded, workload

DIGITS = "digits-mlp"


def digits_mlp(device: torch.device) -> Workload:
    features, labels = load_digits(return_X_y=True)
    x_all, y_all = torch.tensor(features / 16.0, dtype=torch.float32, device=device), torch.tensor(labels, device=device)

    def model():
        torch.manual_seed(0)
        return MODELS["mlp"]().to(device)

    def batch(i):
        index = torch.randint(0, len(x_all), (BATCH,), generator=seeded(i)).to(device)
        return x_all[index], y_all[index]

    return Workload(f"sklearn digits, the overhead benchmark's MLP, batch {BATCH}", model, batch, cross_entropy, len(x_all) // BATCH)


def curves(w: Workload, names: list[str], device: torch.device, steps: int) -> dict[str, Run]:
    steppers = make_steppers(None, n_batches_per_epoch=w.batches_per_epoch)
    runs = {}
    for name in names:
        model = w.model()
        build, step, counts = steppers[name]
        runs[name] = Run(model, build(model), step, counts, w.loss)
    lockstep(runs, w.batch, steps, measure=cuda_timed if device.type == "cuda" else timed)
    return runs


def windows(values, window: int) -> list[float]:
    n = len(values) // window * window
    return np.asarray(values[:n], dtype=float).reshape(-1, window).mean(1).tolist()


def series(r: Run, window: int) -> dict:
    """The window means, and summary()'s second-half numbers."""
    forwards = np.diff([0] + [t[0] for t in r.totals])
    return dict(forwards=windows(forwards, window), step_time_s=windows([m["time_s"] for m in r.records], window),
                forwards_per_step_all=float(forwards.mean()), second_half=summary(r))


def plot(results: dict, out: Path) -> None:
    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    window = results["window"]
    for name, s in results["optimizers"].items():
        steps = (np.arange(len(s["forwards"])) + 1) * window
        top.plot(steps, s["forwards"], label=name)
        bottom.plot(steps, np.asarray(s["step_time_s"]) * 1e3, label=name)
    top.set_ylabel(f"forwards/step ({window}-step mean)")
    bottom.set_ylabel(f"step time, ms ({window}-step mean)")
    bottom.set_xlabel("step")
    top.legend()
    top.set_title(results["workload"], fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)


def readme(results: dict) -> str:
    adam = results["optimizers"].get("torch_adam")
    lines = [
        "# Forwards per step and step time over a long run",
        "",
        f"Command: `{results['command']}`  ",
        f"{stamp(results)}; {results['machine']}; {results['seconds']:.0f} s in all.  ",
        f"{results['workload']}; {results['steps']} steps, the optimizers in lockstep (step i of each, in rotating order, "
        f"before step i + 1 of any); curves: means over windows of {results['window']} steps.",
        "",
        "![forwards per step and step time](curves.png)",
        "",
        "| optimizer | forwards/step (all) | forwards/step (second half) | step time, ms (second half) | x Adam |",
        "|---|---|---|---|---|",
    ]
    for name, s in results["optimizers"].items():
        half = s["second_half"]
        vs_adam = f"{half['step_time_s'] / adam['second_half']['step_time_s']:.2f}" if adam else "n/a"
        lines.append(f"| {name} | {s['forwards_per_step_all']:.3f} | {half['forwards_per_step']:.3f} | "
                     f"{half['step_time_s'] * 1e3:.3f} | {vs_adam} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workload", choices=[DIGITS, *WORKLOADS], help=f"default: {DIGITS} on CPU, resnet34/fp32 on CUDA")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--window", type=int, help="steps per point of the curves (default steps / 100)")
    parser.add_argument("--optimizers", nargs="+",
                        default=["torch_adam", "ours_salsa_adam", "ours_salsa_adam_paper_frequency", "paper_salsa_adam_speed_up"],
                        choices=list(make_steppers(None, n_batches_per_epoch=1)))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "overhead_curves")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = args.workload or (DIGITS if device.type == "cpu" else "resnet34/fp32")
    w = digits_mlp(device) if name == DIGITS else workload(*name.split("/"), device)
    window = args.window or max(1, args.steps // 100)
    started = time.time()
    runs = curves(w, args.optimizers, device, args.steps)
    results = dict(command=command("experiments.overhead.curves", sys.argv[1:] if argv is None else argv), **provenance(),
                   machine=machine(device), workload=f"{name}: {w.description}", steps=args.steps, window=window,
                   seconds=time.time() - started, optimizers={n: series(r, window) for n, r in runs.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(json.dumps(results, indent=1))
    (args.out / "README.md").write_text(readme(results))
    plot(results, args.out)
    print((args.out / "README.md").read_text())


if __name__ == "__main__":
    main()
