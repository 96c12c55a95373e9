"""Figures (PNG + PDF): training-loss and validation-accuracy curves, step sizes, line-search frequency,
and the log-average final loss per optimizer. Curves: mean over seeds with a +-1 sd band."""
import math
import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from .names import COLUMN_ORDER, LINE_KIND, LINE_SEARCH_COLUMNS, ordered_columns
from .output import Written

matplotlib.use("Agg")  # files only; switching after pyplot's import is fine while no figure exists

# Line style per kind of column (names.LINE_KIND), colour per column in the catalogue's order: print- and
# colour-blind-friendly, and an extra column never takes a paper column's colour.
DASHES = {"paper": (0, (5, 2)), "tuned": (0, (1, 1.5)), "sls": (0, (6, 2, 1, 2)), "salsa": "-"}
_TAB10, _DARK2 = matplotlib.colormaps["tab10"].colors, matplotlib.colormaps["Dark2"].colors
PALETTE = [_TAB10[i] for i in (0, 9, 1, 5, 2, 7, 3, 4, 6, 8)] + [_DARK2[i] for i in (6, 0, 5, 3, 2, 4, 1, 7)]
RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 9, "lines.linewidth": 1.6,
      "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 200}


def style(column: str) -> dict:
    known = column in COLUMN_ORDER
    return {"color": PALETTE[COLUMN_ORDER.index(column) % len(PALETTE)] if known else None,
            "linestyle": DASHES.get(LINE_KIND.get(column), "-"), "label": column}


def smooth(values: pd.Series, fraction: float) -> pd.Series:
    """Trailing moving average over `fraction` of the logged points (at least 3 points)."""
    return values.rolling(max(3, int(len(values) * fraction)), min_periods=1).mean()


def mean_band(curves: pd.DataFrame, x: str, y: str, log: bool, window: float = 0.0) -> pd.DataFrame:
    """Per seed (optionally smoothed), then per x over seeds: centre and +-1 sd (in log space if log)."""
    per_seed = []
    for _, run in curves.sort_values(x).groupby("seed"):
        run = run[run[y].astype(float) > 0] if log else run
        values = np.log(run[y].astype(float)) if log else run[y].astype(float)
        per_seed.append(pd.DataFrame({x: run[x].to_numpy(), "v": (smooth(values, window) if window else values).to_numpy()}))
    grouped = pd.concat(per_seed).groupby(x)["v"]
    centre, spread = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    low, high = centre - spread, centre + spread
    if log:
        centre, low, high = np.exp(centre), np.exp(low), np.exp(high)
    return pd.DataFrame({"centre": centre, "low": low, "high": high})


def task_grid(tasks: list, ylabel: str, xlabel: str, log: bool):
    if not tasks:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no logged data for this figure", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig, {}
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    # at least 6.4 in wide so the figure title and legend fit above a single panel
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.4, 3.4 * ncols), 2.7 * nrows + 0.6), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        ax.set_title(task)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    return fig, dict(zip(tasks, axes.flat))


def finish(fig, title: str, path: Path, provenance: str) -> Written:
    handles = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = ordered_columns(handles)
    if labels:  # no legend where no run had records to draw (e.g. fewer steps than trainer.log_every)
        fig.legend([handles[k] for k in labels], labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    fig.suptitle(title)
    rows = math.ceil(len(labels) / 4)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02 * max(1, 4 - len(fig.axes)), 1, 1))
    return Written(title, save(fig, path, provenance))


def save(fig, path: Path, provenance: str) -> list[Path]:
    """PNG and PDF, each carrying the provenance line in its metadata, written atomically."""
    written = []
    for fmt, meta in (("png", {"Description": provenance}), ("pdf", {"Subject": provenance})):
        target = path.with_suffix(f".{fmt}")
        temporary = target.with_name(f".{target.name}.tmp")
        fig.savefig(temporary, format=fmt, metadata=meta)
        os.replace(temporary, target)
        written.append(target)
    plt.close(fig)
    return written


def curve_figure(curves: pd.DataFrame, x: str, y: str, columns, log: bool, window: float,
                 labels: tuple, title: str, path: Path, provenance: str, scale: float = 1.0,
                 bounds: tuple = (-np.inf, np.inf)) -> Written:
    curves = curves.dropna(subset=[y])
    tasks = list(dict.fromkeys(curves["task"]))
    fig, axes = task_grid(tasks, labels[1], labels[0], log)
    for (task, column), group in curves[curves["column"].isin(columns)].groupby(["task", "column"], sort=False):
        band = (mean_band(group, x, y, log, window) * scale).clip(*bounds)
        axes[task].plot(band.index, band["centre"], **style(column))
        axes[task].fill_between(band.index, band["low"], band["high"], color=style(column)["color"], alpha=0.15, lw=0)
    return finish(fig, title, path, provenance)


def log_average_figure(summary: pd.Series, n_tasks: int, path: Path, provenance: str) -> Written:
    summary = summary.dropna()
    fig, ax = plt.subplots(figsize=(6.0, 0.4 * len(summary) + 1.3))
    positions = np.arange(len(summary))[::-1]
    for y, (column, value) in zip(positions, summary.items()):  # a dot plot: bar lengths mean nothing on a log axis
        ax.plot([value], [y], marker="o", markersize=8, color=style(column)["color"], linestyle="none")
        ax.annotate(f"{value:.3g}", (value, y), xytext=(7, 0), textcoords="offset points", va="center")
    ax.set_yticks(positions, summary.index)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(f"geometric mean over {n_tasks} tasks (log scale; lower is better)")
    ax.margins(x=0.2, y=0.1)
    title = "Log average of the final training loss per optimizer"
    ax.set_title(title)
    fig.tight_layout()
    return Written(title, save(fig, path, provenance))


def all_figures(curves: pd.DataFrame, log_average: pd.Series, n_tasks: int, directory: Path,
                provenance: str) -> list[Written]:
    directory.mkdir(parents=True, exist_ok=True)
    steps = curves[curves["kind"] == "step"]
    val = curves[(curves["kind"] == "eval") & (curves["split"] == "val")]
    every = ordered_columns(curves["column"].unique())
    searching = [c for c in every if c in LINE_SEARCH_COLUMNS]
    ls = steps.assign(line_search=pd.to_numeric(steps["line_search"], errors="coerce"))
    with plt.rc_context(RC):
        return [
            curve_figure(steps, "step", "loss", every, True, 0.04, ("step", "mini-batch training loss"),
                         "Training loss (moving average over 4% of the logged steps, at least 3; band: ±1 sd over seeds)",
                         directory / "train_loss", provenance),
            curve_figure(val, "epoch", "acc", every, False, 0.0, ("epoch", "validation accuracy (%)"),
                         "Validation accuracy (mean ± 1 sd over seeds)", directory / "val_accuracy",
                         provenance, scale=100.0),
            curve_figure(steps, "step", "step_size", searching, True, 0.0, ("step", "step size η"),
                         "Step size accepted by the line search (geometric mean ± 1 sd over seeds)",
                         directory / "step_size", provenance),
            curve_figure(ls, "step", "line_search", searching, False, 0.1,
                         ("step", "fraction of steps with a line search"),
                         "Line-search frequency (moving average over 10% of the logged steps, at least 3)",
                         directory / "line_search_frequency", provenance, bounds=(0.0, 1.0)),
            log_average_figure(log_average, n_tasks, directory / "log_average_final_loss", provenance),
        ]
