"""`python -m experiments.reproduce --tier paper|cpu [--dry-run]`: the grid's runs as Hydra multiruns of run.py.

Stages: main (6 optimizers x 5 seeds per task), tune (the lr grid of Adam/SGD on one seed), selection (lowest
val_loss_final, written to <out>/tuning_selection.json), tuned (the winner on every seed), then the analysis
(`python -m analysis`) into <out>. Finished runs are never launched again; interrupted ones resume.
Exit status: 0 all runs finished or diverged, 1 some failed (see the report), 2 a usage or grid error.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

from analysis.selection import DONE
from hydra_plugins.salsa_launchers.failures import read_failures

from . import jobs as J
from . import launch, report, selection
from .blocks import cartesian_blocks
from .errors import SweepError
from .grid import REPO, add_choice, chosen
from .plan import Composer, default_costs, plan


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m experiments.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_choice(p)
    p.add_argument("--dry-run", action="store_true",
                   help="list every run, what is finished, the commands and the compute estimate; launch nothing")
    p.add_argument("--launcher", help="conf/hydra/launcher option (local | slurm | slurm_cpu); default: the grid's")
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="a SLURM setting (hydra.launcher.KEY) of every job, after the grid's `slurm:` resources; "
                        "repeatable: --slurm partition=cpu --slurm timeout_min=60 (conf/hydra/launcher/slurm.yaml)")
    p.add_argument("--jobs", type=int, help="parallel local jobs (hydra.launcher.n_jobs); default: the grid's")
    p.add_argument("--root", type=Path, help="paths.root of the runs (default: the grid's)")
    p.add_argument("--out", type=Path, help="where the selection, the report and the tables go (default: the grid's)")
    p.add_argument("--no-analysis", action="store_true", help="stop after the runs (no tables and plots)")
    return p.parse_args(argv)


def stamp(argv) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:         # no git (the image): the commit it was built from
        commit = os.environ.get("SALSA_GIT_COMMIT", "")[:7]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"python -m experiments.reproduce {' '.join(argv)} ({when}, git {commit or 'unknown'})"


def slurm_settings(grid, pairs: list[str], launcher: str) -> dict:
    """The grid's `slurm:` settings, then --slurm KEY=VALUE's; checked against the launcher's keys."""
    if pairs and not launch.is_slurm(launcher):
        raise SweepError(f"--slurm sets a SLURM launcher's resources, but the launcher is '{launcher}': add --launcher slurm")
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise SweepError(f"--slurm takes KEY=VALUE (a hydra.launcher setting, e.g. partition=cpu), got {bad[0]!r}")
    settings = {**grid.slurm, **dict(p.split("=", 1) for p in pairs)}
    known = launch.slurm_keys()
    unknown = sorted(set(settings) - known)
    if unknown:
        raise SweepError(f"unknown SLURM setting(s) {', '.join(unknown)}; the settings are: {', '.join(sorted(known))}")
    return settings


def awaiting_selection(grid, records, tune_runs) -> list[tuple]:
    """(task, optimizer, number of tuned runs, cost per run) for pairs whose winner is not known yet."""
    left = []
    for r in records:
        if r["winner_lr"] is None:
            costs = [t.cost_s for t in tune_runs if t.job.task == r["task"] and t.job.optimizer == r["optimizer"]]
            n = len([s for s in grid.seeds if s != grid.tuning_seed])
            left.append((r["task"], r["optimizer"], n, sum(costs) / len(costs)))
    return left


def display(args: list[str]) -> str:
    """A launch command as a user would type it in the repository root."""
    return " ".join(["python", *args[1:]]).replace(f"{REPO}/", "")


class Sweep:
    def __init__(self, grid, launcher: str, jobs, slurm: dict):
        self.grid, self.launcher, self.jobs, self.slurm, self.recorded, self.launched = grid, launcher, jobs, slurm, {}, 0

    def commands(self, stage: str, runs) -> list[list[str]]:
        todo = [r.job.args() for r in runs if r.status not in ("finished", "diverged")]
        return [launch.command(block, self.grid, launch.sweep_dir(self.grid, stage, i), self.launcher, self.jobs, self.slurm)
                for i, block in enumerate(cartesian_blocks(todo))]

    def launch(self, stage: str, runs) -> None:
        """The stage's blocks: on SLURM all submitted at once (each multirun only waits for its array), locally
        one after another (each uses every worker)."""
        commands = self.commands(stage, runs)
        together = launch.is_slurm(self.launcher)
        started = []
        for args in commands:
            print(f"\n== {stage}: {display(args)}", flush=True)
            started.append(launch.start(args, self.grid))
            if not together:
                started[-1].wait()
        for process, args in zip(started, commands):
            process.wait()
            self.launched += 1
            self.recorded.update(read_failures(Path(next(a for a in args if a.startswith("hydra.sweep.dir=")).split("=", 1)[1])))
        for run in runs:
            run.refresh()


def extend_tuning(grid, composer, tune_runs: list, sweep=None) -> tuple[list, list[dict]]:
    """Selection with grid extension: while a winner sits at an edge of its lr grid (and the pair has had fewer than
    grid.max_extensions extensions) the next lr beyond that edge runs too, launched by `sweep` or, in a dry run,
    listed (the extension stops at the first one not yet finished). Returns (tune runs, selection records)."""
    records = selection.select(grid, tune_runs)
    for _ in range(grid.max_extensions):
        more = plan(grid, J.extension_jobs(grid, records), composer)
        if not more:
            break
        if sweep is not None:
            sweep.launch("tune", more)
        tune_runs = tune_runs + more
        records = selection.select(grid, tune_runs)
        if any(r.status not in DONE for r in more):
            break
    return tune_runs, records


def dry_run(grid, stages, sweep, records, tune_runs) -> int:
    for stage, runs in stages.items():
        print(f"\n{stage}: {len(runs)} runs")
        for run in runs:
            print(report.run_line(run))
    waiting = awaiting_selection(grid, records, tune_runs)
    for task, optimizer, n, _ in waiting:
        print(f"  [ pending] {task:<20} {optimizer:<10} lr=<grid winner> {n} seeds, once the grid has finished")
    print("\nmultirun commands for what is not finished:")
    for stage, runs in stages.items():
        for args in sweep.commands(stage, runs):
            print("  " + display(args))
    if waiting:
        print("  (then the tuned stage, with the lr the grid selects)")
    print("\ntuning cost (the tuned baselines' grids; SaLSa runs once):")
    print("\n".join(report.tuning_cost_lines(grid, tune_runs, stages["main"])))
    print("\n" + "\n".join(report.estimate_lines(grid, stages, waiting, default_costs().here, sweep.jobs)))
    if grid.scope:
        print(f"\nwhat this tier can and cannot test: {grid.scope}")
    return 0


def reproduce(argv) -> int:
    args = parse(argv)
    grid = chosen(args)
    grid = dataclasses.replace(grid, **{k: v for k, v in (("root", args.root), ("out", args.out)) if v is not None})
    launcher = args.launcher or grid.launcher
    if not (REPO / "conf" / "hydra" / "launcher" / f"{launcher}.yaml").exists():
        raise SweepError(f"unknown launcher '{launcher}': the options are conf/hydra/launcher/*.yaml (local, slurm)")
    sweep = Sweep(grid, launcher, args.jobs if args.jobs is not None else grid.jobs, slurm_settings(grid, args.slurm, launcher))
    started = time.perf_counter()
    with Composer(grid.root.resolve()) as composer:
        main_runs = plan(grid, J.main_jobs(grid), composer)
        tune_runs, records = extend_tuning(grid, composer, plan(grid, J.tune_jobs(grid), composer))
        tuned_runs = plan(grid, J.tuned_jobs(grid, selection.winners(records)), composer)
        stages = {"main": main_runs, "tune": tune_runs, "tuned": tuned_runs}
        if args.dry_run:
            return dry_run(grid, stages, sweep, records, tune_runs)
        print("\n".join(report.estimate_lines(grid, stages, awaiting_selection(grid, records, tune_runs),
                                              default_costs().here, sweep.jobs)), flush=True)
        sweep.launch("main", main_runs)
        sweep.launch("tune", tune_runs)
        stages["tune"] = tune_runs = extend_tuning(grid, composer, tune_runs, sweep)[0]
        records = selection.select(grid, tune_runs)
        written = selection.write(records, grid.out, stamp(argv))
        stages["tuned"] = tuned_runs = plan(grid, J.tuned_jobs(grid, selection.winners(records)), composer)
        sweep.launch("tuned", tuned_runs)
    everything = [r for runs in stages.values() for r in runs]
    problems = report.failure_lines(everything, sweep.recorded, shown(grid.root.resolve()))
    failed = [r for r in everything if r.status not in ("finished", "diverged")]
    unselected = [r for r in records if r["winner_lr"] is None]
    wall = time.perf_counter() - started
    text = summary_text(grid, stages, sweep, problems, records, unselected, wall, stamp(argv), written)
    grid.out.mkdir(parents=True, exist_ok=True)
    (grid.out / "reproduce_report.md").write_text(text, encoding="utf-8")  # before the analysis, whose front page links it
    analysis_status = 0 if args.no_analysis else analyse(grid)
    print("\n" + text)
    return 1 if failed or unselected or analysis_status else 0


def summary_text(grid, stages, sweep, problems, records, unselected, wall, source, written) -> str:
    c = report.counts([r for runs in stages.values() for r in runs])
    lines = [f"# Reproduce: tier {grid.tier}", "", f"Command: `{source}`  ", f"Wall time: {wall:.0f} s of runs, before the analysis "
             f"({sweep.launched} multirun launches)  ", f"Runs: {sum(c.values())} planned; finished {c['finished']}, "
             f"diverged {c['diverged']}, not finished {c['running'] + c['missing']}  ",
             f"Tuned-baseline selection: {', '.join(str(shown(p)) for p in written)}"]
    extended = [r for r in records if r["extensions"]]
    if extended:
        lines += ["", "Grids extended because the winner sat at an edge: " + "; ".join(
            f"{r['task']}/{r['optimizer']} + lr {', '.join(f'{lr:g}' for lr in r['extensions'])}" for r in extended)]
    edges = [r for r in records if r["winner_at_grid_edge"]]
    if edges:
        lines += ["", f"Winner still at an edge after {grid.max_extensions} extensions (the limit): "
                  + "; ".join(f"{r['task']}/{r['optimizer']} lr {r['winner_lr']:g}" for r in edges)]
    if unselected:
        lines += ["", "No lr selected for: " + "; ".join(f"{r['task']}/{r['optimizer']} ({r['not_selected_because']})" for r in unselected)]
    if grid.scope:
        lines += ["", "## What this tier can and cannot test", "", grid.scope]
    lines += ["", "## Runs that did not finish", "", *(problems or ["  none"]), ""]
    return "\n".join(lines)


def shown(path: Path) -> Path:
    """Paths inside the repository relative to it (the commands recorded in results/ stay portable)."""
    path = path.resolve()
    return path.relative_to(REPO) if REPO in path.parents else path


def analyse(grid) -> int:
    args = [sys.executable, "-m", "analysis", "--root", str(shown(grid.root.resolve() / "runs")), "--out", str(shown(grid.out)),
            "--planned-seeds", str(len(grid.seeds))]
    paper_csv = REPO / "results" / "paper_table_final_train_loss.csv"
    if paper_csv.exists():
        args += ["--paper-csv", str(shown(paper_csv))]
    print(f"\n== analysis: {' '.join(args[1:])}", flush=True)
    return subprocess.run(args, cwd=REPO).returncode


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return reproduce(argv)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
