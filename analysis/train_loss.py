"""The paper's metric: the final training loss read off the training-mode mini-batch losses the authors logged.

Every run directory holds train_loss.f32, the loss each optimizer step returned (one little-endian float32 per
step). The authors' table reports "final training loss" from such a curve but their scripts do not say how it was
read (docs/paper-protocol.md, the paper's metric). We take the mean over the last 5% of the steps (at least one step): one step's mini-batch
loss is noise-dominated near convergence (its spread over batches is of the order of the loss itself), and a
window of 5% averages tens to hundreds of batches on the paper's runs (575 steps on MRPC: 29) while the loss
moves little within it. The sensitivity table shows how the log averages and ranks change with the window.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from salsa.contract.files import STEP_LOSSES, not_plain, read_plain

from .stats import cell_stats
from .table import Table
from .tables import fmt, summary_rows

WINDOWS = {"last step": 0.0, "last 1%": 0.01, "last 5%": 0.05, "last 10%": 0.10, "last 20%": 0.20}
CHOSEN = "last 5%"
KEY = "paper_train_loss"


def read_losses(run_dir: Path) -> np.ndarray | None:
    path = Path(run_dir) / STEP_LOSSES
    if not_plain(path):  # never through a link, never a device: a run with one is refused (salsa.contract.verify)
        return None
    if not path.exists():
        return None
    data = read_plain(path)
    return np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4").astype(np.float64)


def window_mean(losses: np.ndarray, fraction: float) -> float:
    """Mean of the last ceil(fraction * steps) losses (at least the last one)."""
    if losses is None or len(losses) == 0:
        return float("nan")
    return float(losses[-max(1, math.ceil(fraction * len(losses))):].mean())


def paper_metric(run_dir: Path) -> dict:
    """The metric under every window, for one run: {"paper_train_loss": ..., "paper_train_loss[last 1%]": ...}."""
    losses = read_losses(run_dir)
    values = {f"{KEY}[{name}]": window_mean(losses, f) for name, f in WINDOWS.items()}
    return {KEY: values[f"{KEY}[{CHOSEN}]"], **values}


def sensitivity(cells: pd.DataFrame, planned: int, tasks, columns) -> Table:
    """Per window: each column's log average over the complete tasks and its average rank."""
    rows, data = {}, []
    for name in WINDOWS:
        key = f"{KEY}[{name}]"
        if key not in cells or cells[key].isna().all():
            continue
        stats = cell_stats(cells, key, planned, tasks, columns)
        means = stats.pivot(index="task", columns="column", values="mean").loc[list(tasks), list(columns)]
        summary = summary_rows(means, _Metric)
        label = name + (" (chosen)" if name == CHOSEN else "")
        rows[f"{label}: log average"] = summary.loc["log average"].map(fmt)
        rows[f"{label}: average rank"] = summary.loc["average rank"].map(fmt)
        data += [{"window": name, "column": c, "log_average": summary.loc["log average", c],
                  "average_rank": summary.loc["average rank", c]} for c in columns]
    display = pd.DataFrame(rows).T
    display.index.name = "window"
    notes = ["The paper's metric (training-mode mini-batch loss as the optimizer's step returned it) read with "
             f"different windows at the end of training; the tables use '{CHOSEN}' (analysis/train_loss.py says why).",
             "Log average: geometric mean over the tasks with a value in every column; rank 1 = lowest loss."]
    return Table("paper_train_loss_window_sensitivity", "Final training loss as the paper logged it: sensitivity to "
                 "the window", display, pd.DataFrame(data), notes=notes)


class _Metric:  # what summary_rows needs to know about a loss
    summary, higher_is_better = "log average", False
