"""`python -m experiments.reproduce.calibrate --tier gpu` (make calibrate): times a few dozen training steps of every
(task, optimizer, precision) of a tier on this machine and writes them to results/calibration/<machine>.json and .md,
where the dry run's estimate finds them (experiments/reproduce/costs.py).

Each measurement is a real run of the harness (salsa.train.runner.run on the task's composed preset, the data under
paths.data) cut to --warmup + --steps steps of one seed in a temporary directory; the step time is the mean of the
loop's own step_time_s (optimizer step and closures, synchronised) over the steps after the warm-up. Not included:
evaluation, data loading, checkpoints. A (task, optimizer, precision) whose run cannot start here (data missing, out
of memory) is listed as not measured with the reason, and the others go on. The overrides are checked as run.py
checks its command line (salsa/train/keys.py), and every measurement's config is validated before the first starts.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from salsa.contract.files import METRICS
from salsa.registry import UserError
from salsa.train.keys import check_command_line
from salsa.train.schema import validate

from . import costs as C
from . import jobs as J
from .errors import SweepError
from .grid import CONF, REPO, add_choice, chosen
from .plan import Composer


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m experiments.reproduce.calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_choice(p)
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="steps run first and not timed (default 5)")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16", "fp64"),
                   help="default: each task's own precision, and bf16 too where CUDA is")
    p.add_argument("--tasks", nargs="+", help="only these tasks of the grid")
    p.add_argument("--optimizers", nargs="+", help="only these optimizers")
    p.add_argument("--out", type=Path, default=C.CALIBRATION, help="folder of the cost files (default results/calibration)")
    p.add_argument("overrides", nargs="*", help="config overrides of every measured run, e.g. paths.data=/data")
    return p.parse_args(argv)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cut_down(composer, args: list[str], steps: int):
    """The config of args cut to `steps` steps of one epoch, every step logged; validated (UserError)."""
    cfg = composer.compose(args)
    cut = [f"trainer.max_steps={steps}", "trainer.epochs=1", f"trainer.limit={cfg.trainer.batch_size * steps}", "trainer.log_every=1"]
    cfg = composer.compose(args + cut)
    validate(cfg)
    return cfg


def measure(cfg, warmup: int) -> dict:
    """One cut-down run of the harness; its key and mean step time (or the reason it could not run)."""
    from salsa.train.runner import run

    try:
        summary, run_dir, _ = run(cfg)
    except Exception as e:  # data missing (UserError), out of memory, a compile failure: listed, and the others go on
        return {"key": C.key(cfg), "error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    records = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    times = [r["step_time_s"] for r in records if r["kind"] == "step" and r["step"] > warmup]
    t = summary["totals"]
    return {"key": C.key(cfg), "step_s": statistics.fmean(times), "steps_timed": len(times),
            "forwards_per_step": t["forwards"] / t["steps"], "torch": torch.__version__,
            "hardware": summary["env"]["hardware"]}


def planned(grid, composer, a) -> list[tuple[str, str, object]]:
    """(task, what, cut-down config) for every (task, optimizer, precision) asked for, on the main stage's first
    seed; SweepError names the first whose config does not validate, before any is measured."""
    found = []
    for job in J.main_jobs(grid):
        if job.seed != grid.seeds[0] or (a.tasks and job.task not in a.tasks) or (a.optimizers and job.optimizer not in a.optimizers):
            continue
        base = [*job.args(), *a.overrides]
        own = composer.compose(base).trainer.precision
        for precision in a.precisions or [own, *(["bf16"] if torch.cuda.is_available() and own != "bf16" else [])]:
            what = f"{job.task} {job.optimizer} {precision}"
            try:
                found.append((job.task, what, cut_down(composer, [*base, f"trainer.precision={precision}"], a.steps + a.warmup)))
            except UserError as e:
                raise SweepError(f"{what}: {e}") from None
    return found


def measurements(grid, composer, a) -> list[tuple[str, dict]]:
    """(task, measurement) for every planned (task, optimizer, precision)."""
    done = []
    for task, what, cfg in planned(grid, composer, a):
        print(f"calibrate: {what} ...", end=" ", flush=True)
        m = measure(cfg, a.warmup)
        print(f"{m['step_s'] * 1000:.1f} ms/step" if "step_s" in m else f"not measured: {m['error']}", flush=True)
        done.append((task, m))
    return done


def merge(path: Path, device: str, found: list[tuple[str, dict]], command: str) -> dict:
    """The machine's cost file with the new measurements in place of older ones of the same key."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"machine": device, "entries": [], "not_measured": []}
    fresh = [{"task": task, **m, "device": device, "date": now, "includes_eval": False, "command": command}
             for task, m in found if "step_s" in m]
    failed = [{"task": task, "key": m["key"], "error": m["error"], "date": now} for task, m in found if "error" in m]
    keys = [e["key"] for e in fresh + failed]
    doc["entries"] = [e for e in doc["entries"] if e["key"] not in keys] + fresh
    doc["not_measured"] = [e for e in doc.get("not_measured", []) if e["key"] not in keys] + failed
    doc["updated"] = now
    return doc


def markdown(doc: dict) -> str:
    def setting(k):  # the key less the optimizer: what a step time is compared with Adam's under
        return tuple(v for name, v in k.items() if name != "optimizer")

    adam = {setting(e["key"]): e["step_s"] for e in doc["entries"] if e["key"]["optimizer"] == "torch_adam"}
    lines = [f"# Measured step costs: {doc['machine']}", "", doc.get("note", "Written by `make calibrate` "
             "(experiments/reproduce/calibrate.py); the dry run's estimate (`make reproduce-* DRY_RUN=1`) reads the .json."), "",
             "| data set | model | batch | micro | precision | compile | channels_last | optimizer | s/step | x adam | "
             "forwards/step | eval incl. | measured | torch |", "|" + "---|" * 14]
    for e in sorted(doc["entries"], key=lambda e: tuple(str(v) for v in e["key"].values())):
        k, base = e["key"], adam.get(setting(e["key"]))
        cells = [*(k[name] for name in C.KEY), f"{e['step_s']:.4g}", "" if base is None else f"{e['step_s'] / base:.2f}",
                 f"{e['forwards_per_step']:.2f}" if "forwards_per_step" in e else "", "yes" if e["includes_eval"] else "no",
                 e["date"][:16], e["torch"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    if doc.get("not_measured"):
        lines += ["", "Not measured:", *(f"- {e['task']} {e['key']['optimizer']} {e['key']['precision']}: {e['error']}"
                                         for e in doc["not_measured"])]
    commands = sorted({e["command"] for e in doc["entries"] if e.get("command")})
    return "\n".join(lines + ["", *(f"_made by `{c}`_  " for c in commands)]) + "\n"


def write(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(markdown(doc), encoding="utf-8")


def calibrate(argv) -> int:
    a = parse(argv)
    if a.steps < 1 or a.warmup < 0:
        raise SweepError("--steps must be >= 1 and --warmup >= 0")
    try:
        check_command_line(a.overrides, CONF)
    except UserError as e:
        raise SweepError(str(e)) from None
    grid = chosen(a)
    device = C.machine()
    path = a.out / f"{slug(device)}.json"
    command = "python -m experiments.reproduce.calibrate " + " ".join(argv)
    with tempfile.TemporaryDirectory(prefix="salsa-calibrate-") as root, Composer(Path(root)) as composer:
        found = measurements(grid, composer, a)
    if not found:
        raise SweepError("nothing to measure: --tasks/--optimizers select no (task, optimizer) of the grid")
    write(merge(path, device, found, command), path)
    shown = path.relative_to(REPO) if REPO in path.resolve().parents else path
    print(f"\n{sum('step_s' in m for _, m in found)} of {len(found)} measured on {device}: {shown} (and .md)")
    return 0 if all("step_s" in m for _, m in found) else 1


def main(argv=None) -> int:
    try:
        return calibrate(sys.argv[1:] if argv is None else argv)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from salsa.unforeseen import guarded
    sys.exit(guarded("python -m experiments.reproduce.calibrate", main))
