"""Tables beside the paper's: missing cells, unfinished runs, paired SaLSa-vs-baseline tests, tuning record."""
import pandas as pd

from .names import SALSA_COLUMNS, ordered_columns
from .stats import holm, paired_log_ttest
from .table import Table, frame
from .tables import fmt


def missing_cells(cell_stats: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Every cell with fewer seeds than planned (or duplicate seeds), and every run refused (not finished, damaged
    files, zero steps, a duplicate) with the reason."""
    short = cell_stats[cell_stats["flagged"] | (cell_stats["duplicate_seeds"] != "")]
    unfinished = runs[runs["refused"] != ""]
    rows = [{"task": r.task, "column": r.column, "problem": f"{r.n}/{r.planned} seeds" +
             (f"; duplicate seeds {r.duplicate_seeds} (averaged per seed)" if r.duplicate_seeds else ""),
             "seeds": r.seeds, "run_id": ""} for r in short.itertuples()]
    rows += [{"task": r.task, "column": r.column, "problem": f"{r.refused} (not averaged)",
              "seeds": "" if pd.isna(r.seed) else str(r.seed), "run_id": r.run_id}
             for r in unfinished.itertuples()]
    data = pd.DataFrame(rows, columns=["task", "column", "problem", "seeds", "run_id"])
    display = data.set_index("task") if len(data) else frame(
        {"column": ["—"], "problem": ["none: every cell has its planned seeds"], "seeds": [""], "run_id": [""]},
        ["—"], "task")
    notes = [f"{len(short)} cells short of their planned seeds; {len(unfinished)} runs refused: not finished, "
             "files that do not match their summary, 0 training steps or duplicates (reported here, left out of every mean)."]
    return Table("missing_cells", "Missing cells and refused runs", display, data, notes=notes)


def paired_comparison(cells: pd.DataFrame, cell_stats: pd.DataFrame, metric: str = "final_train_loss") -> Table:
    """Per task: each SaLSa column against the baseline (any non-SaLSa column) with the lowest mean loss."""
    rows = []
    for task, stats in cell_stats[cell_stats["n"] > 0].groupby("task", sort=False):
        baselines = stats[~stats["column"].isin(SALSA_COLUMNS)]
        if baselines.empty:
            continue
        rival = baselines.loc[baselines["mean"].idxmin(), "column"]
        for salsa in stats["column"][stats["column"].isin(SALSA_COLUMNS)]:
            values = {c: cells[(cells["task"] == task) & (cells["column"] == c)].groupby("seed")[metric].mean()
                      for c in (salsa, rival)}
            rows.append({"task": task, "salsa": salsa, "best_baseline": rival,
                         **paired_log_ttest(values[salsa], values[rival])})
    data = pd.DataFrame(rows, columns=["task", "salsa", "best_baseline", "n_pairs", "ratio_geomean", "t", "p_value"])
    data["p_holm"] = holm(data["p_value"])
    display = frame({
        "SaLSa": data["salsa"], "best baseline": data["best_baseline"], "n pairs": data["n_pairs"],
        "loss ratio SaLSa/baseline": data["ratio_geomean"].map(fmt), "t": data["t"].map(fmt),
        "p (two-sided)": data["p_value"].map(fmt), "p (Holm)": data["p_holm"].map(fmt)}, data["task"], "task")
    notes = ["Paired t-test on log(final training loss), runs paired by seed (common seeds only). "
             "Ratio: geometric mean over pairs of SaLSa/baseline (< 1: SaLSa lower). "
             "Best baseline: the non-SaLSa column (including the SLS line searches) with the lowest mean. "
             "No p-value with fewer than 2 pairs or identical differences. "
             f"p (Holm): the {int(data['p_value'].notna().sum())} p-values of this table adjusted together with Holm's "
             "step-down rule (sorted p_(1) <= ... <= p_(m), adjusted p_(i) = max over j <= i of min(1, (m - j + 1) "
             "p_(j))): an adjusted p <= 0.05 keeps the chance of any false 'SaLSa differs' in the table at most 5%. "
             "The best baseline is chosen on the same runs (the lowest mean), which favours it: SaLSa's advantages "
             "look smaller, and its deficits larger, than they are."]
    return Table("paired_comparison", "SaLSa vs the best baseline per task (final training loss)", display, data,
                 notes=notes)


def tuning(record: pd.DataFrame) -> Table:
    display = frame({
        "lr_choice": record["column"], "lr grid": record["lr_grid"], "val loss per lr": record["val_loss_per_lr"],
        "winning lr": record["winner_lr"].map(fmt), "grid runs": record["grid_runs"],
        "grid wall time (s)": record["grid_wall_time_s"].map(fmt),
        "one SaLSa run (s)": [f"{fmt(t)} ({c})" for t, c in zip(record["salsa_run_wall_time_s"], record["salsa_column"])],
        "tuning cost (SaLSa runs)": record["tuning_cost_in_salsa_runs"].map(fmt)}, record["task"], "task")
    if record.empty:
        display = frame({"lr_choice": ["no tuned runs"]}, ["—"], "task")
    notes = ["The lr is chosen on the VALIDATION loss (val_loss_final) of the grid seed's runs, never on test. "
             "Tuning cost: the whole grid's wall time divided by the mean wall time of one run of the matching "
             "SaLSa variant (which needs no tuning)."]
    return Table("tuning", "Tuned baselines: the lr grid, the winner and the cost of tuning", display, record,
                 notes=notes)


def compute(cells: pd.DataFrame) -> Table:
    """Means over seeds per task x column of wall time and per-step passes."""
    per_run = cells.assign(forwards_per_step=cells["forwards"] / cells["steps"],
                           backwards_per_step=cells["backwards"] / cells["steps"],
                           line_search_frequency=cells["line_searches"] / cells["steps"])
    fields = ["steps", "wall_time_s", "forwards_per_step", "backwards_per_step", "line_search_frequency"]
    grouped = per_run.groupby(["task", "column"])
    data = grouped[fields].mean().reset_index()
    data.insert(2, "n", grouped.size().to_numpy())
    order = {column: i for i, column in enumerate(ordered_columns(data["column"]))}
    data = data.sort_values(["task", "column"], key=lambda s: s.map(order) if s.name == "column" else s)
    display = frame({
        "optimizer": data["column"], "runs": data["n"], "steps": data["steps"].map(fmt),
        "wall time (s)": data["wall_time_s"].map(fmt), "forwards / step": data["forwards_per_step"].map(fmt),
        "backwards / step": data["backwards_per_step"].map(fmt),
        "line searches / step": data["line_search_frequency"].map(fmt)}, data["task"], "task")
    notes = ["Means over the runs of each cell (the runs in the tables). Forwards count every forward pass, "
             "line-search probes included; the tuning grid's cost is in the tuning table."]
    return Table("compute", "Compute per run: wall time, passes per step, line-search frequency", display, data,
                 notes=notes)
