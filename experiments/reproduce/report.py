"""What a sweep will do (the dry run) and what it did (the failure report): plain text, also as markdown."""
from __future__ import annotations

import shlex
from collections import Counter

STATUS_WORD = {"finished": "done", "diverged": "diverged", "running": "resume", "missing": "to run"}


def run_line(run) -> str:
    j = run.job
    lr = f"lr={j.lr:g}" if j.lr is not None else "lr=config"
    return (f"  [{STATUS_WORD[run.status]:>8}] {j.task:<20} {j.optimizer:<10} {lr:<12} seed={j.seed:<3} "
            f"{run.run_id}  {run.steps:>9,} steps  ~{run.cost_s / 3600:.3g} h")


def counts(runs) -> Counter:
    return Counter(r.status for r in runs)


def estimate_lines(grid, stages: dict, awaiting: list[tuple[str, str, int, float]]) -> list[str]:
    everything = [r for runs in stages.values() for r in runs]
    total = sum(r.cost_s for r in everything) + sum(n * cost for *_, n, cost in awaiting)
    left = sum(r.cost_s for r in everything if r.status not in ("finished", "diverged")) + sum(n * cost for *_, n, cost in awaiting)
    c = counts(everything)
    waiting = sum(n for *_, n, _ in awaiting)
    lines = [f"planned runs: {len(everything) + waiting} ("
             + ", ".join(f"{stage} {len(runs)}" for stage, runs in stages.items())
             + (f", tuned {waiting} more once the grid has chosen their lr" if waiting else "") + ")",
             f"already finished: {c['finished']}, diverged (terminal): {c['diverged']}, "
             f"to resume: {c['running']}, to run: {c['missing'] + waiting}",
             f"compute estimate: {total / 3600:.6g} {grid.compute_unit} in all, {left / 3600:.6g} {grid.compute_unit} left "
             f"(steps x step_cost_s x optimizer_cost per run, + run_overhead_s; assumptions in {grid.path.name})"]
    return lines


def tuning_cost_lines(grid, tune_runs, main_runs) -> list[str]:
    """The tuned baselines' grid cost against one line-search run (SaLSa needs no grid)."""
    lines = []
    for task in grid.tasks.values():
        salsa = [r.cost_s for r in main_runs if r.job.task == task.name and r.job.optimizer.startswith("salsa")]
        one_salsa = sum(salsa) / len(salsa) if salsa else float("nan")
        for optimizer in task.tune:
            grid_cost = sum(r.cost_s for r in tune_runs if r.job.task == task.name and r.job.optimizer == optimizer)
            lines.append(f"  {task.name:<20} {optimizer:<6} {len(task.tune[optimizer])} lr x 1 seed = "
                         f"{grid_cost / 3600:.3g} {grid.compute_unit} = {grid_cost / one_salsa:.1f} SaLSa runs")
    return lines


def failure_lines(runs, recorded: dict, root) -> list[str]:
    """Runs that did not finish after the launch: diverged ones (NaN/Inf, a result) and failed ones, each with the
    command that reruns it alone (in the repository root, into the sweep's paths.root), quoted for the shell."""
    lines = []
    for run in runs:
        if run.status == "finished":
            continue
        j = run.job
        unrecorded = ("interrupted (status running, resumes from its checkpoint)" if run.status == "running"
                      else "no run record; see the sweep output above")
        what = f"diverged: {run.error}" if run.status == "diverged" else f"FAILED: {recorded.get(run.run_id) or unrecorded}"
        lines.append(f"  {j.stage}/{j.task}/{j.optimizer}/seed {j.seed}" + (f"/lr {j.lr:g}" if j.lr is not None else "")
                     + f" ({run.run_id}) {what}\n    rerun alone: python run.py {shlex.join([f'paths.root={root}', *j.args()])}")
    return lines
