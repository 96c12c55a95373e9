"""The numbers behind the tables: per-cell statistics, geometric means, ranks, paired tests.

Confidence intervals are Student-t intervals over seeds: mean +- t_{0.975, n-1} * sd / sqrt(n)
(sd with n-1 in the denominator). The paired comparison is a paired t-test on log(final loss), its p-values
adjusted for the family of tests with Holm's step-down rule (holm).
"""
import numpy as np
import pandas as pd
from scipy import stats


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def geometric_mean(values) -> float:
    return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


def tie_safe(values):
    """Round to 12 significant digits, so means that are equal up to float error count as ties."""
    return values.map(lambda v: float(f"{v:.12g}") if pd.notna(v) else v)


def average_ranks(means: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """means: tasks x columns. Rank 1 = best in each task, ties share the average rank; mean over tasks."""
    return tie_safe(means).rank(axis=1, ascending=not higher_is_better, method="average").mean(axis=0)


def cell_stats(cells: pd.DataFrame, metric: str, planned: int, tasks, columns) -> pd.DataFrame:
    """One row per task x column (empty cells included): n, planned, mean, std, CI, seeds, flags.

    Runs sharing a seed in one cell (two configs that differ elsewhere) are averaged per seed and flagged.
    """
    rows = []
    for task in tasks:
        for column in columns:
            runs = cells[(cells["task"] == task) & (cells["column"] == column)].dropna(subset=[metric])
            per_seed = runs.groupby("seed")[metric].mean()
            low, high = t_interval(per_seed)
            rows.append({
                "task": task, "column": column, "n": len(per_seed), "planned": planned,
                "mean": per_seed.mean(), "std": per_seed.std(ddof=1), "ci95_low": low, "ci95_high": high,
                "seeds": " ".join(str(s) for s in per_seed.index),
                "duplicate_seeds": " ".join(str(s) for s, k in runs["seed"].value_counts().items() if k > 1),
                "flagged": len(per_seed) < planned,
            })
    return pd.DataFrame(rows)


def paired_log_ttest(a: pd.Series, b: pd.Series) -> dict:
    """a, b: values indexed by seed. Paired t-test on log(a) - log(b) over the common seeds."""
    common = a.index.intersection(b.index)
    log_a, log_b = np.log(a[common].to_numpy(float)), np.log(b[common].to_numpy(float))
    diff = log_a - log_b
    result = {"n_pairs": len(common), "ratio_geomean": float(np.exp(diff.mean())) if len(common) else np.nan,
              "t": np.nan, "p_value": np.nan}
    # equal ratios give differences that still differ by the rounding of the logs (a few ulps of |log|): no spread
    rounding = 8 * np.finfo(float).eps * max(np.abs(log_a).max(initial=0.0), np.abs(log_b).max(initial=0.0))
    if len(common) >= 2 and diff.std(ddof=1) > rounding:
        test = stats.ttest_rel(log_a, log_b)
        result.update(t=float(test.statistic), p_value=float(test.pvalue))
    return result


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment over the finite p-values (NaN stays NaN): with p_(1) <= ... <= p_(m),
    adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)). Rejecting where adjusted p <= alpha keeps the
    chance of any false rejection in the family at most alpha, whatever the dependence between the tests."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted
