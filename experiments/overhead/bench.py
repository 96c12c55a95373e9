"""Step time and peak memory of SaLSa, SLS, the authors' release, our re-implementations of the authors'
classes (salsa.reference) and torch.optim.Adam on the same runs.

Models on sklearn's digits (real data): an MLP, a small CNN (digits as 1x8x8 images) and a 4-layer
transformer encoder (the 8 rows of a digit as 8 tokens). Each optimizer trains each model for
--steps steps on the same batches; the step time is the mean over the second half of the run
(steps 1500-3000 by default), the median over --repeats repeats. The optimizers train in lockstep, step i
of each before step i + 1 of any, so that a shared machine's load falls on all of them alike. Peak memory comes
from the PyTorch profiler's memory timeline over 12 steady-state steps (at least one search).

    python -m experiments.overhead.bench            # writes results/overhead.md and .json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.profiler import ProfilerActivity, profile

from experiments.overhead.lockstep import FORWARD, ROOT, Run, add_floors, command, lockstep, make_steppers, stamp, summary
from experiments.overhead.lockstep import write as write_files
from experiments.overhead.release import load_release

BATCH = 64


class Transformer(nn.Module):
    def __init__(self, width: int = 64, layers: int = 4):
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.position = nn.Parameter(torch.zeros(8, width))
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        tokens = self.embed(x.view(-1, 8, 8)) + self.position
        return self.head(self.encoder(tokens).mean(1))


MODELS = {
    "mlp": lambda: nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)),
    "cnn": lambda: nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 16, 10),
    ),
    "transformer": Transformer,
}


CPU_OPTIMIZERS = ["torch_adam", "torch_adam_fused", "ours_salsa_adam", "ours_salsa_adam_paper_frequency", "ours_sls_sgd",
                  "paper_salsa_adam_speed_up",
                  "paper_salsa_adam", "release_salsa", "release_wheel"]


def cross_entropy(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def run(model_name, steppers, x_all, y_all, order, steps):
    """Trains one model per optimizer in lockstep (lockstep.py) on the same batches."""
    runs = {}
    for name, (build, step, counts) in {**steppers, "forward": FORWARD}.items():
        torch.manual_seed(0)
        model = MODELS[model_name]()
        runs[name] = Run(model, build(model), step, counts, cross_entropy)
    lockstep(runs, lambda i: (x_all[order[i % len(order)]], y_all[order[i % len(order)]]), steps)
    forward_s = summary(runs.pop("forward"))["step_time_s"]
    results = {}
    for name, r in runs.items():
        s = summary(r)
        results[name] = dict(
            step_time_s=s["step_time_s"], forwards_per_step=s["forwards_per_step"],
            backwards_per_step=s["backwards_per_step"],
            peak_bytes=peak_memory(r.model, r.opt, r.step, x_all, y_all, order),
            param_bytes=sum(p.numel() * p.element_size() for p in r.model.parameters()),
        )
    add_floors(results, forward_s)
    return results


def peak_memory(model, opt, step, x_all, y_all, order, steps=12):
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        for i in range(steps):
            index = order[i]
            step(opt, lambda: nn.functional.cross_entropy(model(x_all[index]), y_all[index]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "timeline.json"
        prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    return max(sum(s) for s in sizes)


def report(results, args, repeats_done, seconds):
    lines = [
        "# Optimizer overhead: step time and peak memory",
        "",
        f"Command: `{command('experiments.overhead.bench')}`  ",
        f"{stamp()}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s); {seconds:.0f} s in all.  ",
        f"{args.steps} steps per run, batch {BATCH}, sklearn digits; the optimizers train in lockstep (step i of each, "
        f"in rotating order, before step i + 1 of any); step time = mean over steps {args.steps // 2}-{args.steps}, "
        f"median of {repeats_done} repeat(s) (of {args.repeats} asked for); peak memory = max live "
        "tensor bytes in the profiler's memory timeline over 12 steady-state steps.",
        "",
        "| model | optimizer | step time (ms) | x Adam | x release | forwards/step | backwards/step | floor (ms) | x floor "
        "| peak MiB | (peak - Adam peak) / param bytes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for model_name, rows in results.items():
        adam, release = rows["torch_adam"], rows.get("release_wheel")
        for name, r in rows.items():
            vs_release = f"{r['step_time_s'] / release['step_time_s']:.2f}" if release else "n/a"
            lines.append(
                f"| {model_name} | {name} | {r['step_time_s'] * 1e3:.3f} | {r['step_time_s'] / adam['step_time_s']:.3f} | "
                f"{vs_release} | {r['forwards_per_step']:.3f} | {r['backwards_per_step']:.3f} | "
                f"{r['floor_s'] * 1e3:.3f} | {r['x_floor']:.3f} |"
                f" {r['peak_bytes'] / 2**20:.2f} | {(r['peak_bytes'] - adam['peak_bytes']) / r['param_bytes']:+.2f} |"
            )
        s = rows["ours_salsa_adam"]
        verdicts.append(
            f"- {model_name}: SaLSa {s['forwards_per_step']:.3f} forwards per step (target <= 1.10: "
            f"{'met' if s['forwards_per_step'] <= 1.10 else 'NOT met'}), "
            f"step time {s['step_time_s'] / adam['step_time_s']:.3f}x Adam (target <= 1.05: "
            f"{'met' if s['step_time_s'] <= 1.05 * adam['step_time_s'] else 'NOT met'}), "
            + (f"{s['step_time_s'] / release['step_time_s']:.2f}x the release (target <= 0.5: "
               f"{'met' if s['step_time_s'] <= 0.5 * release['step_time_s'] else 'NOT met'}), " if release else "")
            + f"peak memory Adam {(s['peak_bytes'] - adam['peak_bytes']) / s['param_bytes']:+.2f}x parameter bytes "
            f"(target <= +1: {'met' if s['peak_bytes'] - adam['peak_bytes'] <= s['param_bytes'] else 'NOT met'})"
        )
    return "\n".join(lines + ["", "## Targets", ""] + verdicts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--optimizers", nargs="+", help="a subset of the optimizers (adam and salsa are always in)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        try:
            release = load_release(Path(folder))
        except FileNotFoundError as missing:  # measure the rest
            print(f"note: {missing}; the release is left out", file=sys.stderr)
            release = None
        steppers = make_steppers(release, n_batches_per_epoch=1797 // BATCH)
        chosen = {"torch_adam", "ours_salsa_adam", *args.optimizers} if args.optimizers else set(CPU_OPTIMIZERS)
        steppers = {n: steppers[n] for n in CPU_OPTIMIZERS if n in chosen and n in steppers}
        features, labels = load_digits(return_X_y=True)
        x_all = torch.tensor(features / 16.0, dtype=torch.float32)
        y_all = torch.tensor(labels)
        g = torch.Generator().manual_seed(0)
        order = [torch.randint(0, len(x_all), (BATCH,), generator=g) for _ in range(args.steps)]
        started = time.time()
        raw = {m: {n: [] for n in steppers} for m in args.models}
        for repeat in range(args.repeats):
            for model_name in args.models:
                for name, result in run(model_name, steppers, x_all, y_all, order, args.steps).items():
                    raw[model_name][name].append(result)
                    print(f"repeat {repeat} {model_name} {name}: {result}", flush=True)
            write(raw, args, repeat + 1, time.time() - started)  # each finished repeat, in case of a stop
    print(args.out.read_text())


def write(raw, args, repeats_done, seconds):
    results = {
        m: {n: {**runs[0], "step_time_s": statistics.median(r["step_time_s"] for r in runs),
                "step_times_s": [r["step_time_s"] for r in runs]} for n, runs in rows.items()}
        for m, rows in raw.items()
    }
    write_files(args.out, report(results, args, repeats_done, seconds), results)


if __name__ == "__main__":
    main()
