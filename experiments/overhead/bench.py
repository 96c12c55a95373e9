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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.profiler import ProfilerActivity, profile

from experiments.overhead.release import load_release, release_closure
from salsa import SLS, SaLSa
from salsa.reference import AdamSLS, SaLSA

ROOT = Path(__file__).resolve().parents[2]
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


def make_steppers(release):
    """name -> (model -> optimizer, (optimizer, loss_fn) -> loss, forwards/backwards counter)."""

    def plain_step(opt, loss_fn):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    def ours_counts(opt):
        return opt.totals()["forwards"], opt.totals()["backwards"]

    return {
        "adam": (lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True), plain_step,
                 lambda opt: (opt.state_dict()["state"][0]["step"].item(),) * 2),
        "salsa": (lambda m: SaLSa(m.parameters(), model=m), lambda opt, f: opt.step(f), ours_counts),
        # the default before issue 9
        "salsa_old": (lambda m: SaLSa(m.parameters(), model=m, resolution_aware=False, debiased_frequency=False),
                      lambda opt, f: opt.step(f), ours_counts),
        "sls": (lambda m: SLS(m.parameters(), model=m, n_batches_per_epoch=1797 // BATCH),
                lambda opt, f: opt.step(f), ours_counts),
        # the paper's ADAM SaLSa (NLP setting, with the frequency rule) and the release class, as re-implemented
        "reference_adam_sls": (lambda m: AdamSLS(m.parameters(), c=0.3, beta_s=0.99, speed_up=True, model=m),
                               lambda opt, f: opt.step(f), ours_counts),
        "reference_salsa": (lambda m: SaLSA(m.parameters(), model=m), lambda opt, f: opt.step(f), ours_counts),
        "release": (lambda m: release.SaLSA(m.parameters()), lambda opt, f: opt.step(release_closure(opt, f)),
                    lambda opt: (opt.state["n_forwards"], opt.state["n_backwards"])),
    }


def run(model_name, steppers, x_all, y_all, order, steps):
    """Trains one model per optimizer in lockstep: step i of every optimizer, in rotating order, before step
    i + 1 of any, so that the load of a shared machine falls on all of them alike."""
    runs = {}
    for name, (build, step, counts) in steppers.items():
        torch.manual_seed(0)
        model = MODELS[model_name]()
        runs[name] = dict(model=model, opt=build(model), step=step, counts=counts, times=[])
    names, half = list(runs), steps // 2
    for i in range(steps):
        index = order[i % len(order)]
        x, y = x_all[index], y_all[index]
        for name in names[i % len(names):] + names[: i % len(names)]:
            r = runs[name]
            if i == half:
                r["start_counts"] = r["counts"](r["opt"])
            t0 = time.perf_counter()
            r["step"](r["opt"], lambda: nn.functional.cross_entropy(r["model"](x), y))
            r["times"].append(time.perf_counter() - t0)
    results = {}
    for name, r in runs.items():
        fwd, bwd = (b - a for a, b in zip(r["start_counts"], r["counts"](r["opt"])))
        window = steps - half
        results[name] = dict(
            step_time_s=statistics.fmean(r["times"][half:]), forwards_per_step=fwd / window,
            backwards_per_step=bwd / window, peak_bytes=peak_memory(r["model"], r["opt"], r["step"], x_all, y_all, order),
            param_bytes=sum(p.numel() * p.element_size() for p in r["model"].parameters()),
        )
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


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def report(results, args, repeats_done, seconds):
    lines = [
        "# Optimizer overhead: step time and peak memory",
        "",
        f"Command: `{' '.join(['python -m experiments.overhead.bench'] + sys.argv[1:])}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {git_commit()}; torch {torch.__version__}; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s); {seconds:.0f} s in all.  ",
        f"{args.steps} steps per run, batch {BATCH}, sklearn digits; the optimizers train in lockstep (step i of each, "
        f"in rotating order, before step i + 1 of any); step time = mean over steps {args.steps // 2}-{args.steps}, "
        f"median of {repeats_done} repeat(s) (of {args.repeats} asked for); peak memory = max live "
        "tensor bytes in the profiler's memory timeline over 12 steady-state steps.",
        "",
        "| model | optimizer | step time (ms) | x Adam | x release | forwards/step | backwards/step | peak MiB "
        "| (peak - Adam peak) / param bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for model_name, rows in results.items():
        adam, release = rows["adam"], rows.get("release")
        for name, r in rows.items():
            vs_release = f"{r['step_time_s'] / release['step_time_s']:.2f}" if release else "n/a"
            lines.append(
                f"| {model_name} | {name} | {r['step_time_s'] * 1e3:.3f} | {r['step_time_s'] / adam['step_time_s']:.3f} | "
                f"{vs_release} | {r['forwards_per_step']:.3f} | {r['backwards_per_step']:.3f} | "
                f"{r['peak_bytes'] / 2**20:.2f} | {(r['peak_bytes'] - adam['peak_bytes']) / r['param_bytes']:+.2f} |"
            )
        s = rows["salsa"]
        verdicts.append(
            f"- {model_name}: SaLSa step time {s['step_time_s'] / adam['step_time_s']:.3f}x Adam (target <= 1.05: "
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
        steppers = make_steppers(release)
        if release is None:
            del steppers["release"]
        if args.optimizers:
            steppers = {n: v for n, v in steppers.items() if n in {"adam", "salsa", *args.optimizers}}
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, args, repeats_done, seconds))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
