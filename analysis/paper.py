"""The paper's published final training losses: recomputed summary rows, and side by side with ours."""
from pathlib import Path

import pandas as pd

from .errors import AnalysisError
from .names import PAPER_TASK_DATASET, PAPER_TO_OURS, normalise
from .stats import average_ranks, geometric_mean
from .table import Table, frame
from .tables import fmt

SUMMARY_LABELS = ("log_average", "average_rank")


def read_paper_csv(path: Path) -> pd.DataFrame:
    """The table rows (tasks x paper columns) plus the printed summary rows, indexed by task."""
    if not path.exists():
        raise AnalysisError(f"paper table {path} not found (pass --paper-csv)")
    try:
        table = pd.read_csv(path, comment="#").set_index("task")
    except (pd.errors.ParserError, KeyError) as exc:
        raise AnalysisError(f"corrupt file {path}: {exc}") from None
    return table


def paper_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c in PAPER_TO_OURS]


def recomputed_summary(table: pd.DataFrame) -> Table:
    """Printed vs recomputed log average and average rank (the comment in the CSV says the ranks differ)."""
    columns = paper_columns(table)
    tasks = table.drop(index=list(SUMMARY_LABELS))[columns].astype(float)
    recomputed = {"log_average": tasks.apply(geometric_mean), "average_rank": average_ranks(tasks, False)}
    rows, data = {}, []
    for label in SUMMARY_LABELS:
        printed = table.loc[label, columns].astype(float)
        again = recomputed[label]
        tolerance = 1e-9 if label == "average_rank" else 0.005 * printed  # printed log averages: 3 digits
        differs = (again - printed).abs() > tolerance
        rows[f"{label} (printed)"] = printed.map(fmt)
        rows[f"{label} (recomputed)"] = [fmt(v) + (" ≠" if d else "") for v, d in zip(again, differs)]
        data += [{"row": label, "column": c, "printed": printed[c], "recomputed": again[c], "differs": differs[c]}
                 for c in columns]
    display = pd.DataFrame(rows).T
    display.index.name = "paper row"
    notes = [f"Recomputed from the paper's {len(tasks)} per-task values: log average = geometric mean over tasks, "
             "average rank with ties sharing the average rank. ≠ marks a recomputed value that differs from the "
             "printed one (beyond rounding of the printed digits)."]
    return Table("paper_summary_recomputed", "The paper's summary rows, printed vs recomputed", display,
                 pd.DataFrame(data), notes=notes)


def comparison(table: pd.DataFrame, cell_stats: pd.DataFrame, runs: pd.DataFrame, ours: str) -> Table:
    """One row per paper task x column: the paper's value, ours (mean ± std, n), ours / paper."""
    dataset_of_task = runs.drop_duplicates("task").set_index("task")["dataset"].map(normalise)
    model_of_task = runs.drop_duplicates("task").set_index("task")["model"]
    stats = cell_stats.set_index(["task", "column"])
    rows, unmatched = [], []
    for paper_task in table.index.drop(list(SUMMARY_LABELS)):
        dataset = PAPER_TASK_DATASET.get(paper_task, normalise(paper_task))
        matched = list(dataset_of_task.index[dataset_of_task == dataset])
        if not matched:
            unmatched.append(paper_task)
        for task, column in ((t, c) for t in matched for c in paper_columns(table)):
            cell = stats.loc[(task, PAPER_TO_OURS[column])] if (task, PAPER_TO_OURS[column]) in stats.index else None
            mean = cell["mean"] if cell is not None else float("nan")
            rows.append({"paper_task": paper_task, "paper_model": table.loc[paper_task, "model"],
                         "paper_column": column, "paper": float(table.loc[paper_task, column]),
                         "task": task, "model": model_of_task[task], "column": PAPER_TO_OURS[column], "mean": mean,
                         "std": cell["std"] if cell is not None else float("nan"),
                         "n": int(cell["n"]) if cell is not None else 0,
                         "ratio": mean / float(table.loc[paper_task, column])})
    data = pd.DataFrame(rows, columns=["paper_task", "paper_model", "paper_column", "paper", "task", "model",
                                       "column", "mean", "std", "n", "ratio"])
    display = frame({
        "our task (model)": [f"{t} ({m})" for t, m in zip(data["task"], data["model"])],
        "column": data["column"], "paper": data["paper"].map(fmt),
        "ours": [("—" if n == 0 else f"{fmt(m)} ± {fmt(s)} ({n})") for m, s, n in zip(data["mean"], data["std"], data["n"])],
        "ours / paper": data["ratio"].map(fmt)},
        [f"{t} ({m})" for t, m in zip(data["paper_task"], data["paper_model"])], "paper task (model)")
    notes = [f"Ours: {ours}.",
             "Paper: the published final training loss (results/paper_table_final_train_loss.csv). "
             "The paper's ADAM and SGD columns used fixed learning rates, so they are set against our (paper) baselines.",
             "Our tasks are matched to the paper's by data set; compare models before reading the ratio."]
    if unmatched:
        notes.append(f"Paper tasks without runs of ours: {', '.join(unmatched)}.")
    return Table("paper_comparison", "Final training loss: the paper's published numbers vs ours", display, data,
                 notes=notes)
