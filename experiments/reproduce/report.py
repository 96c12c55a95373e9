"""What a sweep will do (the dry run) and what it did (the failure report): plain text, also as markdown."""
from __future__ import annotations

import shlex
from collections import Counter

from analysis.names import SALSA_FOR_BASELINE, column_name

STATUS_WORD = {"finished": "done", "diverged": "diverged", "running": "resume", "missing": "to run", "damaged": "redo"}


def run_line(run) -> str:
    j = run.job
    lr = f"lr={j.lr:g}" if j.lr is not None else "lr=config"
    return (f"  [{STATUS_WORD[run.status]:>8}] {j.task:<20} {j.optimizer:<10} {lr:<12} seed={j.seed:<3} "
            f"{run.run_id}  {run.steps:>9,} steps  ~{run.cost_s / 3600:.3g} h  {cost_basis(run)}")


def cost_basis(run) -> str:
    return run.measured.label() if run.measured else "assumed"


def counts(runs) -> Counter:
    return Counter(r.status for r in runs)


def estimate_lines(grid, stages: dict, awaiting: list[tuple[str, str, int, float]], here: str | None = None,
                   jobs: int | None = None) -> list[str]:
    """The counts, the compute estimate (measured lines in their GPU's hours, assumed ones in the grid's unit), where
    each cost comes from, and the wall time on this machine (`here`) for the runs measured on it."""
    everything = [r for runs in stages.values() for r in runs]
    # the tuned runs still waiting for their lr cost what their grid's runs cost (the lr does not enter a cost key)
    basis = {(r.job.task, r.job.optimizer): r.measured for r in stages.get("tune", [])}
    costed = [(r.cost_s, r.measured, r.status not in ("finished", "diverged")) for r in everything]
    costed += [(cost, basis.get((task, optimizer)), True) for task, optimizer, n, cost in awaiting for _ in range(n)]
    total, left = sum(c for c, _, _ in costed), sum(c for c, _, todo in costed if todo)
    c = counts(everything)
    waiting = sum(n for *_, n, _ in awaiting)
    lines = [f"planned runs: {len(everything) + waiting} ("
             + ", ".join(f"{stage} {len(runs)}" for stage, runs in stages.items())
             + (f", tuned {waiting} more once the grid has chosen their lr" if waiting else "") + ")",
             f"already finished: {c['finished']}, diverged (terminal): {c['diverged']}, "
             f"to resume: {c['running']}, to run: {c['missing'] + waiting}"
             + (f", damaged (done again): {c['damaged']}" if c["damaged"] else ""),
             f"compute estimate: {total / 3600:.6g} {grid.compute_unit} in all, {left / 3600:.6g} {grid.compute_unit} left "
             f"(per run: steps x the measured step time where results/calibration has one, else steps x step_cost_s x "
             f"optimizer_cost of {grid.path.name}; + run_overhead_s)"]
    sources = {}
    for cost, m, _ in costed:
        name = m.describe() if m else f"assumed ({grid.path.name})"
        n, s = sources.get(name, (0, 0.0))
        sources[name] = (n + 1, s + cost)
    lines += [f"  {n} runs, {s / 3600:.4g} h: {name}" for name, (n, s) in sorted(sources.items())]
    assumed = sorted({(r.job.task, r.job.optimizer) for r in everything if r.measured is None})
    if assumed:
        lines.append("  still assumed (task/optimizer): " + ", ".join(f"{t}/{o}" for t, o in assumed))
    mine = [cost for cost, m, todo in costed if todo and m is not None and m.device == here]
    todo = sum(1 for *_, t in costed if t)
    jobs = jobs or 1
    if mine:
        lines.append(f"wall time on this machine ({here}): {sum(mine) / jobs / 3600:.4g} h for the {len(mine)} of {todo} runs "
                     f"left that were measured here ({jobs} at a time)"
                     + ("" if len(mine) == todo else f"; the other {todo - len(mine)} have no measurement from this machine"))
    else:
        lines.append(f"wall time on this machine ({here}): unknown, none of the {todo} runs left was measured here "
                     f"(make calibrate TIER={grid.tier} measures them)")
    return lines


def tuning_cost_lines(grid, tune_runs, main_runs) -> list[str]:
    """The tuned baselines' grid cost against one run of the SaLSa column the catalogue pairs them with (SaLSa needs
    no grid)."""
    lines = []
    for task in grid.tasks.values():
        for optimizer in task.tune:
            salsa = [r.cost_s for r in main_runs if r.job.task == task.name
                     and column_name(r.job.optimizer, None) == SALSA_FOR_BASELINE.get(optimizer)]
            one_salsa = sum(salsa) / len(salsa) if salsa else float("nan")
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
                      else f"damaged: {run.error}" if run.status == "damaged" else "no run record; see the sweep output above")
        what = f"diverged: {run.error}" if run.status == "diverged" else f"FAILED: {recorded.get(run.run_id) or unrecorded}"
        lines.append(f"  {j.stage}/{j.task}/{j.optimizer}/seed {j.seed}" + (f"/lr {j.lr:g}" if j.lr is not None else "")
                     + f" ({run.run_id}) {what}\n    rerun alone: python run.py {shlex.join([f'paths.root={root}', *j.args()])}")
    return lines
