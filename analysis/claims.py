"""The paper's headline claims (docs/paper-protocol.md, the paper's numbers and claims) against our runs, each with a verdict.

1. SaLSa beats the tuned Adam/SGD by +1.5 points of (peak validation) accuracy on average;
2. its average log loss is about 50% lower (ratio 0.5; the paper's metric, the logged training loss);
3. the frequency rule cuts the line search's extra compute from about 30% to about 3%.

Claims 1-2 pair each SaLSa column with the tuned baseline of the same direction (ADAM SaLSa - ADAM(tuned), SGD SaLSa -
SGD(tuned)) seed by seed (a seed fixes the initial weights and the data order) on every task that has both. The pooled
row is the paper's definition: each seed's differences averaged over the tasks and both pairs; each pair also has a
row of its own, so one pair cannot hide the other. Every seed's average covers the same tasks: a task (of a pair)
that lacks a seed the others have is left out of every seed's average, and the notes name it. Both intervals are over
the per-seed averages (n = seeds), the ratio's over log ratios. Each row counts the runs of each side that failed to
train (analysis/failures.py: diverged, or ended at the loss of a constant predictor): a failed run that finished stays
in the averages; a diverged one has no loss, so its task is left out. Claim 3 (analysis/compute_claim.py) holds the
paper's SaLSa columns alone, the rule on and off as the authors ran them (the release's and our SaLSa in rows of their
own); the runs of one task x optimizer cell are alike, so each cell is averaged first and the intervals are over
cells (n = cells). Verdict rules: analysis/verdicts.py.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .compute_claim import compute_rows
from .failures import CONSTANT_LOSS, TOLERANCE, failures, without_reference
from .names import TUNED_PAIRS
from .signflip import rank, smallest_p
from .table import Table, frame
from .tables import fmt
from .verdicts import Claim, evidence, verdict
from .verdicts import __doc__ as RULES

PAIRS = TUNED_PAIRS


@dataclass(frozen=True)
class Quality:
    claim: str
    metric: str
    paper: str
    spec: Claim
    unit: str
    difference: object    # (salsa, baseline) -> the value averaged over seeds
    shown: object         # that value's scale -> the unit's


QUALITY = (
    Quality("accuracy: SaLSa - tuned Adam/SGD (peak validation accuracy)", "val_acc_peak", "+1.5 points",
            Claim(1.5, "above"), "points", lambda a, b: 100 * (a - b), lambda v: v),
    Quality("log loss: SaLSa / tuned Adam/SGD (final training loss as logged)", "paper_train_loss",
            "about 50% lower (ratio 0.5)", Claim(float(np.log(0.5)), "below"), "ratio",
            lambda a, b: np.log(a) - np.log(b), np.exp),
)


def units(cells: pd.DataFrame, metric: str, difference, pairs) -> pd.DataFrame:
    """One row per task x pair x seed that has both runs: the difference and the two runs' ids."""
    rows = []
    for task, group in cells.dropna(subset=[metric]).groupby("task"):
        for salsa, baseline in pairs:
            a, b = (group[group["column"] == c].groupby("seed") for c in (salsa, baseline))
            a_value, b_value = a[metric].mean(), b[metric].mean()
            for seed in a_value.index.intersection(b_value.index):
                ids = " ".join(list(a.get_group(seed)["run_id"]) + list(b.get_group(seed)["run_id"]))
                rows.append({"task": task, "pair": f"{salsa} vs {baseline}", "seed": seed,
                             "value": difference(a_value[seed], b_value[seed]), "run_ids": ids})
    return pd.DataFrame(rows, columns=["task", "pair", "seed", "value", "run_ids"])


def common_seeds(found: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The task x pairs that hold every seed any of them holds, and a line for each one left out."""
    seeds, kept, left_out = set(found["seed"]), [], []
    for (task, pair), group in found.groupby(["task", "pair"]):
        missing = sorted(seeds - set(group["seed"]))
        if missing:
            left_out.append(f"{task} ({pair}) lacks seed{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(str, missing))}")
        else:
            kept.append(group)
    return (pd.concat(kept) if kept else found.iloc[:0]), left_out


def failed_text(columns, cells: pd.DataFrame, failed: pd.DataFrame) -> tuple[str, int]:
    """Per column: failed runs / its runs (finished ones and diverged ones), and the number failed in all."""
    parts, total = [], 0
    for column in columns:
        mine = failed[failed["column"] == column]
        diverged, constant = (mine["failure"] == "diverged").sum(), (mine["failure"] == "constant loss").sum()
        runs = (cells["column"] == column).sum() + (~mine["run_id"].isin(cells["run_id"])).sum()
        parts.append(f"{column} {diverged + constant}/{runs}" + (
            f" ({diverged} diverged, {constant} at the constant loss)" if diverged + constant else ""))
        total += diverged + constant
    return "; ".join(parts), int(total)


def row(claim: str, paper: str, spec: Claim, values, per_task, shown, unit: str, counted: str, **extra) -> dict:
    found, by_task = evidence(values, spec.no_effect), evidence(per_task, spec.no_effect)
    return {"claim": claim, "paper": paper, "paper_value": shown(spec.paper), "ours": shown(found.mean),
            "ci95_low": shown(found.t[0]), "ci95_high": shown(found.t[1]),
            "signflip95_low": shown(found.flip[0]), "signflip95_high": shown(found.flip[1]), "p_exact": found.p,
            "unit": unit, "n": found.n, "counted": counted, "verdict": verdict(found, spec, counted[:-1]),
            "tasks_n": by_task.n, "tasks_mean": shown(by_task.mean), "tasks_ci95_low": shown(by_task.t[0]),
            "tasks_ci95_high": shown(by_task.t[1]), "tasks_signflip95_low": shown(by_task.flip[0]),
            "tasks_signflip95_high": shown(by_task.flip[1]), "tasks_verdict": verdict(by_task, spec, "task"), **extra}


def quality_rows(cells: pd.DataFrame, failed: pd.DataFrame) -> tuple[list[dict], list[str]]:
    rows, notes = [], []
    for quality in QUALITY:
        for pairs in (PAIRS, *((pair,) for pair in PAIRS)):
            kept, left_out = common_seeds(units(cells, quality.metric, quality.difference, pairs))
            columns = [c for pair in pairs for c in pair]
            text, total = failed_text(columns, cells, failed)
            name = quality.claim + ", pooled (the paper's definition)" if len(pairs) > 1 else \
                f"{quality.claim.split(':')[0]}: {' vs '.join(pairs[0])}"
            rows.append(row(name, quality.paper, quality.spec, kept.groupby("seed")["value"].mean(),
                            kept.groupby("task")["value"].mean(), quality.shown, quality.unit, "seeds",
                            tasks=" ".join(sorted(set(kept["task"]))), columns=", ".join(" vs ".join(p) for p in pairs),
                            runs=sum(len(ids.split()) for ids in kept["run_ids"]), run_ids=" ".join(kept["run_ids"]),
                            failed=text, failed_runs=total, left_out="; ".join(left_out)))
            notes += [line for line in left_out if line not in notes]
    return rows, notes


def compute_claim_rows(cells: pd.DataFrame) -> list[dict]:
    rows = []
    for claim, paper, spec, table in compute_rows(cells):
        rows.append(row(claim, paper, spec, table["value"], table.groupby("task")["value"].mean(), lambda v: v,
                        "% of a step", "cells", tasks=" ".join(sorted(set(table["task"]))),
                        columns=", ".join(sorted(set(table["column"]))), runs=int(table["runs"].sum()),
                        run_ids=" ".join(table["run_ids"]), failed="", failed_runs=0, left_out=""))
    return rows


def interval(low, high) -> str:
    return "—" if pd.isna(low) else f"[{fmt(low)}, {fmt(high)}]"


def scope_notes(data: pd.DataFrame) -> list[str]:
    tasks = sorted({t for text in data["tasks"] for t in text.split()})
    lines = [f"Scope: these verdicts hold for the tasks run here ({', '.join(tasks) or 'none'}): the intervals are over "
             "seeds (claim 3: over task x optimizer cells) on these tasks, not over tasks in general. Treating the tasks "
             "as a sample instead (the interval over per-task means, n = tasks):"]
    for r in data.itertuples():
        lines.append(f"- {r.claim}: " + ("no tasks" if r.tasks_n == 0 else
                     f"{fmt(r.tasks_mean)}, Student-t {interval(r.tasks_ci95_low, r.tasks_ci95_high)}, sign-flip "
                     f"{interval(r.tasks_signflip95_low, r.tasks_signflip95_high)}, n = {r.tasks_n} task{'s' * (r.tasks_n > 1)}: "
                     f"{r.tasks_verdict} (over {r.counted}: {r.verdict})"))
    return lines


def seeds_note(data: pd.DataFrame) -> list[str]:
    seeds = sorted({n for n, counted in zip(data["n"], data["counted"]) if counted == "seeds" and n >= 2})
    short = [n for n in seeds if rank(0.95, n) == 0]
    if not short:
        return []
    return [f"With {short[-1]} seeds the smallest exact two-sided p is 2/{2 ** short[-1]} = {smallest_p(short[-1]):.4g} > 0.05: "
            "the 95% sign-flip interval is the whole line, so no claim 1-2 row can read reproduced or not reproduced, "
            "only inconclusive; 6 seeds are the fewest that can decide (10 give a sign-flip interval of coverage 0.951)."]


def claims_table(cells: pd.DataFrame, runs: pd.DataFrame, record: pd.DataFrame) -> Table:
    """cells: the runs that fill the cells; runs: every collected run (for the diverged ones); record: tuning record."""
    failed = failures(runs, cells, record)
    rows, left_out = quality_rows(cells, failed)
    data = pd.DataFrame(rows + compute_claim_rows(cells))
    display = frame({
        "paper": data["paper"],
        "ours, Student-t 95%": [("—" if r.n == 0 else f"{fmt(r.ours)} {interval(r.ci95_low, r.ci95_high)} {r.unit}")
                                for r in data.itertuples()],
        "sign-flip 95% (exact p of no effect)": [
            "—" if r.n == 0 else interval(r.signflip95_low, r.signflip95_high) +
            ("" if r.counted == "cells" else f" (p = {fmt(r.p_exact)})") for r in data.itertuples()],
        "n": [f"{r.n} {r.counted[:-1] if r.n == 1 else r.counted}" for r in data.itertuples()],
        "failed to train / runs": [r.failed or "—" for r in data.itertuples()],
        "rests on": [f"{r.runs} runs ({r.columns or '—'}); tasks: {r.tasks or '—'}" for r in data.itertuples()],
        "verdict": data["verdict"]}, data["claim"], "claim")
    no_reference = without_reference(cells)
    references = [f"{d} {CONSTANT_LOSS[d]:.4g}" for d in sorted(set(cells["dataset"])) if d in CONSTANT_LOSS]
    notes = [" ".join(__doc__.split("\n\n")[1].split()), " ".join(__doc__.split("\n\n")[2].split()),
             " ".join(RULES.split("\n\n")[0].split()) + " " + " ".join(RULES.split("\n\n")[1].split()),
             f"Failed to train: diverged, or a final training loss at least {1 - TOLERANCE:g} x the constant "
             "predictor's (the entropy of the training class frequencies, analysis/failures.py); references (nats): "
             f"{', '.join(references) or 'none'}"
             + (f"; none for {', '.join(no_reference)}: only divergences counted there." if no_reference else "."),
             *seeds_note(data), *scope_notes(data)]
    if left_out:
        notes.append("Left out of every seed's average (of each claim 1-2 row that holds it), as a task that lacks a "
                     f"seed cannot enter the other seeds' averages: {'; '.join(left_out)}.")
    return Table("claims", "The paper's headline claims, checked against our runs", display, data, notes=notes)
