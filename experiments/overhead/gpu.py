"""Step time, forwards per step and peak memory of Adam, our SaLSa and SLS, the reference classes and the authors'
release on the paper's shapes, each against its algorithm's floor.

Workloads (workloads.py): CIFAR ResNet-34 at batch 128, GPT-2 124M at 8 x 1024 tokens, BERT-base at 32 x 128, in
fp32 and under bf16 autocast, on batches that can be learned, and GPT-2 on random tokens (a plateau). Per workload
the optimizers train copies of one model in lockstep (lockstep.py; torch.cuda.synchronize after every step), with a
forward alone (torch.no_grad, as the searches' trial points) in the same rotation. Step times are the mean and median
over the second half of the steps. An algorithm that takes f forwards per step costs at least
floor = Adam's step x (1 + forward share x (f - 1)), forward share = forward alone / Adam's step.

    python -m experiments.overhead.gpu --device cuda   # ~5 min on an H200 -> results/overhead_gpu.md and .json
    python -m experiments.overhead.gpu --device cpu    # the same on tiny shapes (a smoke run; not a measurement)
"""
from __future__ import annotations

import argparse
import copy
import gc
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from experiments.overhead.lockstep import (
    FORWARD,
    ROOT,
    Run,
    add_floors,
    command,
    lockstep,
    machine,
    make_steppers,
    provenance,
    second_half,
    stamp,
    summary,
    timed,
    write,
)
from experiments.overhead.release import load_release
from experiments.overhead.workloads import BUILDERS, PRECISIONS, Workload, workload

OPTIMIZERS = ["torch_adam", "torch_adam_fused", "ours_salsa_adam", "ours_sls_sgd", "paper_salsa_adam", "paper_salsa_adam_speed_up",
              "release_salsa", "release_wheel"]
WORKLOADS = [f"{m}/{p}" for m in BUILDERS for p in PRECISIONS]
DEFAULT_WORKLOADS = [w for w in WORKLOADS if w != "gpt2-plateau/fp32"]  # the plateau once, in bf16: ~5 min on an H200


def cuda_timed(step) -> dict:
    """The step's time to its last kernel, and how far it raised the allocated memory above where it started."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    step()
    torch.cuda.synchronize()
    return dict(time_s=time.perf_counter() - t0, rise_bytes=torch.cuda.max_memory_allocated() - before)


def measure(w: Workload, steppers: dict, device: torch.device, steps: int, seconds: float) -> dict:
    base, runs = w.model(), {}
    for n, (build, step, counts) in {**steppers, "forward": FORWARD}.items():
        model = copy.deepcopy(base)  # every optimizer from the same weights
        runs[n] = Run(model, build(model), step, counts, w.loss)
    del base
    cuda = device.type == "cuda"
    done = lockstep(runs, w.batch, steps, measure=cuda_timed if cuda else timed, seconds=seconds)
    forward = runs.pop("forward")
    rows = {n: summary(r) for n, r in runs.items()}
    forward_s = summary(forward)["step_time_s"]
    share = add_floors(rows, forward_s)
    for n, row in rows.items():
        row["peak_bytes"] = peak_bytes(runs, n, second_half(runs[n], "rise_bytes")) if cuda else None
    return dict(description=w.description, steps=done, forward_s=forward_s, forward_share=share, rows=rows)


def peak_bytes(runs: dict, name: str, rises: list[int]) -> int:
    """What the run holds between steps (model, gradients, optimizer state: the bytes freed by deleting it) plus
    the largest rise within one of its steps over the second half (the steady state)."""
    before = torch.cuda.memory_allocated()
    runs.pop(name)
    gc.collect()
    return before - torch.cuda.memory_allocated() + max(rises)


def report(results: dict, args, note: str) -> str:
    lines = [
        "# Optimizer overhead on the paper's shapes",
        "",
        f"Command: `{results['command']}`  ",
        f"{stamp(results)}; {results['machine']}; {results['seconds']:.0f} s in all.  ",
        f"Per workload the optimizers train copies of one model in lockstep (step i of each, in rotating order, before "
        f"step i + 1 of any; a device sync after every step), up to {args.steps} steps or until {args.seconds:g} s have passed "
        "(steps column). Step time: mean over the second half of the steps (median in brackets). Forward share: a forward "
        "alone (torch.no_grad, as the searches' trial points) over Adam's step, timed in the same rotation. Floor: Adam's "
        "step x (1 + forward share x (forwards/step - 1)). Peak memory: what the run holds between steps (freed to measure) "
        "+ the largest rise of torch.cuda.max_memory_allocated within one of its steps (reset before each) over the "
        f"second half.{note}",
        "",
        "| workload | description | steps | Adam step (ms) | forward alone (ms) | forward share |",
        "|---|---|---|---|---|---|",
    ]
    for name, w in results["workloads"].items():
        lines.append(f"| {name} | {w['description']} | {w['steps']} | {w['rows']['torch_adam']['step_time_s'] * 1e3:.2f} | "
                     f"{w['forward_s'] * 1e3:.2f} | {w['forward_share']:.3f} |")
    lines += ["", "| workload | optimizer | forwards/step | step time (ms) | x Adam (foreach) | floor (ms) | x floor | peak GiB |",
              "|---|---|---|---|---|---|---|---|"]
    for name, w in results["workloads"].items():
        for opt, r in w["rows"].items():
            peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**30:.2f}"
            lines.append(f"| {name} | {opt} | {r['forwards_per_step']:.2f} | {r['step_time_s'] * 1e3:.2f} "
                         f"({r['median_step_time_s'] * 1e3:.2f}) | {r['x_adam']:.2f} | {r['floor_s'] * 1e3:.2f} | "
                         f"{r['x_floor']:.2f} | {peak} |")
    if results["failed"]:
        lines += ["", "Failed (the traceback is in the run's output):"]
        lines += [f"- {name}: {error}" for name, error in results["failed"].items()]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=DEFAULT_WORKLOADS)
    parser.add_argument("--steps", type=int, help="steps per optimizer and workload (default 60 on CUDA, 24 on CPU)")
    parser.add_argument("--seconds", type=float, default=35.0, help="per workload: stop after the round that passes this")
    parser.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, help="a subset (adam is always in)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "overhead_gpu.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.steps = args.steps or (60 if args.device.startswith("cuda") else 24)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        try:
            release, note = load_release(Path(folder)), ""
        except FileNotFoundError as missing:  # measure the rest
            release, note = None, f" The authors' release is left out: {missing}."
            print(f"note: {missing}", file=sys.stderr)
        chosen = {"torch_adam", *(args.optimizers or OPTIMIZERS)} - (set() if device.type == "cuda" else {"torch_adam_fused"})
        started = time.time()
        results = dict(command=command("experiments.overhead.gpu", args.argv), **provenance(), machine=machine(device), workloads={},
                       failed={})
        if device.type != "cuda":
            results["machine"] += ": tiny shapes, a smoke run"
        for name in args.workloads:
            w = workload(*name.split("/"), device)
            steppers = make_steppers(release, n_batches_per_epoch=w.batches_per_epoch)
            steppers = {n: steppers[n] for n in OPTIMIZERS if n in chosen and n in steppers}
            try:
                results["workloads"][name] = measure(w, steppers, device, args.steps, args.seconds)
            except Exception as error:  # out of memory, a class that fails on this device: reported, the rest measured
                traceback.print_exc()
                results["failed"][name] = f"{type(error).__name__}: {error}"
            gc.collect()
            results["seconds"] = time.time() - started
            write(args.out, report(results, args, note), results)  # after each workload, in case of a stop
            print(f"{name}: done, {results['seconds']:.0f} s", flush=True)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
