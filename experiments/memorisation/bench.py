"""The memorisation benchmark: every case x optimizer x seed trained 20k steps past a training loss of 1e-3.

A run collapses when its loss, once below 1e-3, rises above 1e-2 again. The report lists per case and
optimizer the seeds, the collapses, the NonFiniteErrors, the step of the first loss below 1e-3, the largest
loss after it, forwards per step; figures: loss and step size over steps (every seed), forwards per step
(a moving average) of the optimizers over the run. Runs already recorded under --traces (same
--steps-past) are read back, so the report can gather runs made by several invocations.

    python -m experiments.memorisation.bench            # writes results/memorisation/
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from experiments.memorisation.cases import BATCH, EXAMPLES, MODELS, make_case
from experiments.memorisation.optimizers import OPTIMIZERS
from experiments.memorisation.trace import train

ROOT = Path(__file__).resolve().parents[2]
ZERO, COLLAPSE = 1e-3, 1e-2


def one_run(case_name: str, optimizer: str, seed: int, steps_past: int, traces: Path) -> dict:
    """Trains one run and saves its step records, or reads them back where a finished run left them."""
    path = traces / f"{case_name}-{optimizer}-{seed}.npz"
    if not path.exists() or "steps_past" in (saved := np.load(path)) and int(saved["steps_past"]) != steps_past:
        torch.set_num_threads(1)
        case = make_case(case_name, seed)
        with tempfile.TemporaryDirectory() as folder:
            build, step = OPTIMIZERS[optimizer](Path(folder))
            opt = build(case.model)
            started = time.perf_counter()
            trace = train(case, opt, step, steps_past, zero=ZERO)
            seconds = time.perf_counter() - started
        np.savez_compressed(path, seconds=seconds, error=trace.error, steps_past=steps_past, **trace.arrays())
    return summary(case_name, optimizer, seed, np.load(path))


def summary(case_name: str, optimizer: str, seed: int, a) -> dict:
    loss = a["loss"]
    error = str(a["error"]) if "error" in a else ""
    below = np.flatnonzero(loss < ZERO)
    first = int(below[0]) if len(below) else None
    after = loss[first:] if first is not None else loss[:0]
    return dict(case=case_name, optimizer=optimizer, seed=seed, steps=len(loss),
                seconds=float(a["seconds"]) if "seconds" in a else float("nan"), first_below=first,
                max_after=float(after.max()) if len(after) else float("nan"),
                collapsed=bool(len(after) and (after > COLLAPSE).any() or error),
                final=float(loss[-100:].max()), error=error,
                forwards_per_step=float(a["forwards"].mean()),
                forwards_per_step_past=float(a["forwards"][first:].mean()) if first is not None else float("nan"))


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def smooth(values: np.ndarray, window: int = 500) -> np.ndarray:
    return np.convolve(values, np.ones(window) / window, mode="valid") if len(values) >= window else values


def figures(rows: list[dict], traces: Path, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    cases = sorted({r["case"] for r in rows}, key=list(MODELS).index)
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    for case in cases:
        fig, axes = plt.subplots(2, len(optimizers), figsize=(3.2 * len(optimizers), 5.5), sharex=True, squeeze=False)
        for column, optimizer in enumerate(optimizers):
            for r in (r for r in rows if r["case"] == case and r["optimizer"] == optimizer):
                a = np.load(traces / f"{case}-{optimizer}-{r['seed']}.npz")
                axes[0, column].semilogy(np.maximum(a["loss"], 1e-10), lw=0.4, label=f"seed {r['seed']}")
                axes[1, column].semilogy(a["step_size"], lw=0.8)
            axes[0, column].axhline(COLLAPSE, color="k", ls=":", lw=0.6)
            axes[0, column].set_title(optimizer, fontsize=9)
            axes[1, column].set_xlabel("step")
        axes[0, 0].set_ylabel("training loss (0 drawn at 1e-10)")
        axes[1, 0].set_ylabel("step size eta")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(f"memorisation: {case}")
        fig.tight_layout()
        fig.savefig(out / f"{case}.png", dpi=110)
        plt.close(fig)
        written.append(f"{case}.png")
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.4), squeeze=False)
    for column, case in enumerate(cases):
        for optimizer in optimizers:
            seeds = [r["seed"] for r in rows if r["case"] == case and r["optimizer"] == optimizer]
            if seeds:
                a = np.load(traces / f"{case}-{optimizer}-{seeds[0]}.npz")
                axes[0, column].plot(smooth(a["forwards"]), lw=0.8, label=f"{optimizer} (seed {seeds[0]})")
        axes[0, column].set_title(f"{case} (mean over 500 steps)", fontsize=9)
        axes[0, column].set_xlabel("step")
    axes[0, 0].set_ylabel("forwards per step")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "forwards_per_step.png", dpi=110)
    plt.close(fig)
    return written + ["forwards_per_step.png"]


def report(rows: list[dict], args, seconds: float, pictures: list[str]) -> str:
    lines = [
        "# Memorisation: training long past a training loss of ~0",
        "",
        f"Command: `{' '.join(['python -m experiments.memorisation.bench'] + sys.argv[1:])}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; git {git_commit()}; torch {torch.__version__}; "
        f"{platform.machine()}, 1 thread per run, {args.jobs} run(s) at a time; {seconds:.0f} s in all.  ",
        f"Cases (experiments/memorisation/cases.py): {EXAMPLES // BATCH} fixed mini-batches "
        f"of {BATCH} digits, cycled; each run trains {args.steps_past} steps past the first loss below {ZERO:g}. "
        f"Collapse: the loss rises above {COLLAPSE:g} after it was below {ZERO:g}, or the run stops on a non-finite value.",
        "",
        "| case | optimizer | seeds | collapsed | errors | first loss < 1e-3 (step) | max loss after "
        "| final loss (max of last 100) | forwards/step after | s per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        for optimizer in dict.fromkeys(r["optimizer"] for r in rows):
            group = [r for r in rows if r["case"] == case and r["optimizer"] == optimizer]
            if not group:
                continue
            firsts = [r["first_below"] for r in group if r["first_below"] is not None]
            lines.append(
                f"| {case} | {optimizer} | {len(group)} | {sum(r['collapsed'] for r in group)} | "
                f"{sum(bool(r['error']) for r in group)} | {', '.join(map(str, firsts)) or 'never'} | "
                f"{max(r['max_after'] for r in group):.3g} | {max(r['final'] for r in group):.3g} | "
                f"{np.nanmean([r['forwards_per_step_past'] for r in group]):.3f} | {np.mean([r['seconds'] for r in group]):.0f} |"
            )
    errors = [f"- {r['case']} {r['optimizer']} seed {r['seed']}: {r['error']}" for r in rows if r["error"]]
    lines += ["", "Errors:" if errors else "No run raised.", *errors, ""]
    lines += [f"![{p}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps-past", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (each on one thread)")
    parser.add_argument("--recorded-only", action="store_true",
                        help="train nothing: report the runs of the selection that --traces already holds")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "memorisation")
    parser.add_argument("--traces", type=Path, default=ROOT / "outputs" / "memorisation",
                        help="per-run step records (.npz): a run whose file exists is read back, not trained again")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.traces.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs = [(c, o, s) for c in args.cases for o in args.optimizers for s in args.seeds]
    if args.recorded_only:
        runs = [(c, o, s) for c, o, s in runs if (args.traces / f"{c}-{o}-{s}.npz").exists()]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, c, o, s, args.steps_past, args.traces) for c, o, s in runs]
        rows = []
        for future in futures:
            rows.append(future.result())
            r = rows[-1]
            print(f"{r['case']} {r['optimizer']} seed {r['seed']}: collapsed={r['collapsed']} max_after={r['max_after']:.3g} "
                  f"fwd/step={r['forwards_per_step_past']:.3f} {r['seconds']:.0f}s {r['error']}", flush=True)
    pictures = figures(rows, args.traces, args.out)
    (args.out / "README.md").write_text(report(rows, args, time.time() - started, pictures))
    print((args.out / "README.md").read_text())


if __name__ == "__main__":
    main()
