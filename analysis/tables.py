"""Per-metric tables in the paper's layout: tasks x optimizers, a summary row and the average rank."""
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .stats import average_ranks, geometric_mean, tie_safe
from .table import Table


@dataclass(frozen=True)
class Metric:
    key: str                 # summary.json metrics field
    title: str
    higher_is_better: bool
    summary: str             # "log average" (geometric mean over tasks) or "average" (arithmetic)
    scale: float = 1.0       # the runs' value -> the title's unit (accuracies: fractions -> %), in every file


METRICS = [
    Metric("final_train_loss", "Final training loss, the clean metric (eval mode, full pass over the training set)",
           False, "log average"),
    Metric("paper_train_loss", "Final training loss as the paper logged it (training-mode mini-batch losses, "
           "mean over the last 5% of steps)", False, "log average"),
    Metric("val_acc_peak", "Peak validation accuracy (%)", True, "average", 100.0),
    Metric("val_acc_final", "Final validation accuracy (%)", True, "average", 100.0),
    Metric("val_loss_final", "Final validation log loss", False, "log average"),
]
CLEAN_METRIC, PAPER_METRIC = METRICS[0], METRICS[1]


def in_unit(cell_stats: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The cells' numbers in the title's unit, as the CSV holds them."""
    return cell_stats.assign(**{c: cell_stats[c] * metric.scale for c in ("mean", "std", "ci95_low", "ci95_high")})


def fmt(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.4g}"


def format_cell(row, scale: float) -> str:
    if row.n == 0:
        return "—"
    spread = 0.0 if row.std <= 1e-12 * abs(row.mean) else row.std  # equal values: no float-noise spread
    text = fmt(row.mean * scale) + ("" if row.n < 2 else f" ± {fmt(spread * scale)}")
    return text + (f" ({row.n}/{row.planned})†" if row.flagged else f" ({row.n})")


def complete_tasks(means: pd.DataFrame) -> tuple[list, list]:
    complete = means.notna().all(axis=1)
    return list(means.index[complete]), list(means.index[~complete])


def summary_rows(means: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The summary row and the average rank, over the tasks with a value in every column."""
    tasks, _ = complete_tasks(means)
    full = means.loc[tasks]
    if not tasks:
        empty = pd.Series(np.nan, index=means.columns)
        return pd.DataFrame({metric.summary: empty, "average rank": empty}).T
    aggregate = full.apply(geometric_mean) if metric.summary == "log average" else full.mean()
    return pd.DataFrame({metric.summary: aggregate, "average rank": average_ranks(full, metric.higher_is_better)}).T


def best(values: pd.Series, higher_is_better: bool):
    values = tie_safe(values.dropna())
    if values.empty:
        return []
    target = values.max() if higher_is_better else values.min()
    return list(values.index[values == target])


def notes(means: pd.DataFrame, metric: Metric, planned: int, absent_columns) -> list[str]:
    tasks, excluded = complete_tasks(means)
    text = [f"Cells: mean ± std over seeds (n seeds); † fewer than the {planned} planned seeds "
            f"(listed in missing_cells). Best per row in bold.",
            f"{metric.summary} ({'geometric' if metric.summary == 'log average' else 'arithmetic'} mean over tasks) "
            f"and average rank (1 = best, ties share the average rank) over the {len(tasks)} of {len(means)} "
            f"tasks with a value in every column" + (f"; left out: {', '.join(map(str, excluded))}." if excluded else ".")]
    if absent_columns:
        text.append(f"No runs at all for: {', '.join(absent_columns)}.")
    text.append("Tuned baselines use the lr that won on val_loss_final (see tuning).")
    if metric.scale != 1:
        text.append("Values in % in every file (the CSV too); the average rank is a rank.")
    return text


def metric_table(cell_stats: pd.DataFrame, metric: Metric, planned: int, absent_columns=()) -> Table:
    tasks = list(dict.fromkeys(cell_stats["task"]))
    columns = list(dict.fromkeys(cell_stats["column"]))
    means = cell_stats.pivot(index="task", columns="column", values="mean").loc[tasks, columns]
    display = cell_stats.assign(text=[format_cell(r, metric.scale) for r in cell_stats.itertuples()])
    display = display.pivot(index="task", columns="column", values="text").loc[tasks, columns]
    summary = summary_rows(means, metric)
    shown = summary.copy()
    shown.loc[metric.summary] = shown.loc[metric.summary] * metric.scale
    display = pd.concat([display, shown.apply(lambda row: row.map(fmt), axis=1)])
    display.index.name = "task"
    bold = {(task, c) for task in tasks for c in best(means.loc[task], metric.higher_is_better)}
    bold |= {(metric.summary, c) for c in best(summary.loc[metric.summary], metric.higher_is_better)}
    bold |= {("average rank", c) for c in best(summary.loc["average rank"], higher_is_better=False)}
    n_complete = len(complete_tasks(means)[0])
    extra = [{"task": label, "column": c, "n": n_complete, "mean": v * (metric.scale if label == metric.summary else 1)}
             for label, row in summary.iterrows() for c, v in row.items()]
    data = pd.concat([in_unit(cell_stats, metric).assign(metric=metric.key), pd.DataFrame(extra).assign(metric=metric.key)],
                     ignore_index=True)
    return Table(metric.key, metric.title, display, data, bold, notes(means, metric, planned, absent_columns))


def ci_table(cell_stats: pd.DataFrame, metric: Metric) -> Table:
    tasks = list(dict.fromkeys(cell_stats["task"]))
    columns = list(dict.fromkeys(cell_stats["column"]))
    text = [("—" if r.n == 0 else fmt(r.mean * metric.scale) +
             (f" [{fmt(r.ci95_low * metric.scale)}, {fmt(r.ci95_high * metric.scale)}]" if r.n >= 2 else " [n=1]"))
            for r in cell_stats.itertuples()]
    display = cell_stats.assign(text=text).pivot(index="task", columns="column", values="text").loc[tasks, columns]
    note = ("Mean and 95% Student-t confidence interval over seeds: mean ± t(0.975, n-1)·sd/√n; "
            "no interval with one seed." + (" Values in % in every file (the CSV too)." if metric.scale != 1 else ""))
    return Table(f"{metric.key}_ci95", f"{metric.title}: 95% confidence intervals", display,
                 in_unit(cell_stats, metric).assign(metric=metric.key), notes=[note])
