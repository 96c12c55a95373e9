"""The paper's headline claims (docs/paper-protocol.md, the paper's numbers and claims) against our runs, each with a verdict.

1. SaLSa beats the tuned Adam/SGD by +1.5 points of (peak validation) accuracy on average;
2. its average log loss is about 50% lower (ratio 0.5; the paper's metric, the logged training loss);
3. the frequency rule cuts the line search's extra compute from about 30% to about 3%.
Claims 1-2 pair each SaLSa column with the tuned baseline of the same direction (ADAM SaLSa - ADAM(tuned), SGD
SaLSa - SGD(tuned)) seed by seed (a seed fixes the initial weights and the data order) on every task that has
both; each seed's differences are averaged over tasks and pairs, and the 95% interval is a Student-t interval
over those per-seed averages (n = seeds). Claim 3 counts forward passes: a line-search trial is one forward, a training step
about three forward-equivalents (forward + backward), so the extra compute of a run is trial forwards / (3 steps);
runs with fewer line searches than steps have the frequency rule on. Verdicts: "reproduced" when the interval
excludes no effect and reaches the paper's value (or beyond it, in the claimed direction), for compute when it
overlaps [paper / 2, 2 x paper] ("about"); "not reproduced" when the interval excludes the paper's value on the
other side (compute: misses that range); "inconclusive" when it holds both no effect and the paper's value, or
rests on one seed; "not yet run" without runs.
"""
import numpy as np
import pandas as pd

from .names import SALSA_COLUMNS, TUNED_PAIRS
from .stats import t_interval
from .table import Table, frame
from .tables import fmt

PAIRS = TUNED_PAIRS


def _paired(cells: pd.DataFrame, metric: str, difference) -> tuple[pd.Series, list[str], list[str]]:
    """Per seed: the mean over (task, pair) of difference(salsa, baseline); the tasks and run ids used."""
    per_seed, tasks, run_ids = {}, set(), []
    for task, group in cells.dropna(subset=[metric]).groupby("task"):
        for salsa, baseline in PAIRS:
            a = group[group["column"] == salsa].groupby("seed")[metric].mean()
            b = group[group["column"] == baseline].groupby("seed")[metric].mean()
            common = a.index.intersection(b.index)
            if len(common) == 0:
                continue
            tasks.add(task)
            run_ids += list(group[group["column"].isin([salsa, baseline]) & group["seed"].isin(common)]["run_id"])
            for seed in common:
                per_seed.setdefault(seed, []).append(difference(a[seed], b[seed]))
    return pd.Series({s: np.mean(v) for s, v in per_seed.items()}, dtype=float), sorted(tasks), run_ids


def _verdict(low, high, n, paper, *, better_above: bool, no_effect: float) -> str:
    if n == 0:
        return "not yet run"
    if n < 2:
        return "inconclusive (one seed)"
    if better_above:
        return "reproduced" if low > no_effect and high >= paper else "not reproduced" if high < paper else "inconclusive"
    return "reproduced" if high < no_effect and low <= paper else "not reproduced" if low > paper else "inconclusive"


def _row(claim, paper_text, paper, values, transform, tasks, run_ids, unit, better_above, no_effect):
    low, high = t_interval(values) if len(values) else (np.nan, np.nan)
    mean = values.mean() if len(values) else np.nan
    mean, low, high = transform(mean), transform(low), transform(high)
    return {"claim": claim, "paper": paper_text, "paper_value": paper, "ours": mean, "ci95_low": low, "ci95_high": high,
            "unit": unit, "n": len(values), "tasks": " ".join(tasks), "columns": ", ".join(" vs ".join(p) for p in PAIRS),
            "runs": len(run_ids), "run_ids": " ".join(run_ids),
            "verdict": _verdict(low, high, len(values), paper, better_above=better_above, no_effect=no_effect)}


def _compute_rows(cells: pd.DataFrame) -> list[dict]:
    runs = cells[cells["column"].isin(SALSA_COLUMNS)].dropna(subset=["forwards", "steps", "line_searches"])
    extra = (runs["forwards"] - runs["steps"]) / (3 * runs["steps"]) * 100
    rule_on = runs["line_searches"] < runs["steps"]
    rows = []
    for label, paper, chosen in (("without the frequency rule", 30.0, ~rule_on), ("with the frequency rule", 3.0, rule_on)):
        values = extra[chosen]
        low, high = t_interval(values) if len(values) else (np.nan, np.nan)
        n = len(values)
        verdict = ("not yet run" if n == 0 else "inconclusive (one run)" if n < 2
                   else "reproduced" if high >= paper / 2 and low <= paper * 2 else "not reproduced")
        rows.append({"claim": f"line search's extra compute, {label}", "paper": f"about {paper:g}%", "paper_value": paper,
                     "ours": values.mean() if n else np.nan, "ci95_low": low, "ci95_high": high, "unit": "% of a step",
                     "n": n, "tasks": " ".join(sorted(runs[chosen]["task"].unique())),
                     "columns": ", ".join(sorted(runs[chosen]["column"].unique())), "runs": n,
                     "run_ids": " ".join(runs[chosen]["run_id"]), "verdict": verdict})
    return rows


def claims_table(cells: pd.DataFrame) -> Table:
    acc, acc_tasks, acc_runs = _paired(cells, "val_acc_peak", lambda a, b: 100 * (a - b))
    loss, loss_tasks, loss_runs = _paired(cells, "paper_train_loss", lambda a, b: np.log(a) - np.log(b))
    rows = [_row("accuracy: SaLSa - tuned Adam/SGD (peak validation accuracy)", "+1.5 points", 1.5, acc,
                 lambda v: v, acc_tasks, acc_runs, "points", True, 0.0),
            _row("log loss: SaLSa / tuned Adam/SGD (final training loss as logged)", "about 50% lower (ratio 0.5)", 0.5,
                 loss, np.exp, loss_tasks, loss_runs, "ratio", False, 1.0),
            *_compute_rows(cells)]
    data = pd.DataFrame(rows)
    display = frame({
        "paper": data["paper"],
        "ours [95% CI]": [("—" if r.n == 0 else f"{fmt(r.ours)} [{fmt(r.ci95_low)}, {fmt(r.ci95_high)}] {r.unit}")
                          for r in data.itertuples()],
        "rests on": [f"{r.runs} runs ({r.columns or '—'}), n={r.n}; tasks: {r.tasks or '—'}" for r in data.itertuples()],
        "verdict": data["verdict"]}, data["claim"], "claim")
    notes = [line.strip() for line in __doc__.split("\n\n")[1].splitlines() if line.strip()]
    return Table("claims", "The paper's headline claims, checked against our runs", display, data,
                 notes=[" ".join(notes)])
