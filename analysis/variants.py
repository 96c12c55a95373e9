"""Variants of one optimizer side by side: runs that differ in optimizer options -> a table with paired tests.

    python -m analysis.variants --root outputs/ablations/runs --out results/ablations \
        --keys c beta3 --baseline "c=0.3 beta3=0.99"

A run's variant is the values of --keys in its config.yaml (optimizer group). Per task and variant: mean and
95% t-interval over seeds of the final training loss (the clean metric and, where the runs logged their step losses,
the paper's: analysis/train_loss.py), the final validation accuracy, forwards per step and step time; against
--baseline, paired tests over the common seeds (paired t-test on log loss, analysis/stats.py; paired t-test on
accuracy) and whether the variant's mean lies in the baseline's interval or is better.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats as scipy_stats

from .collect import collect_runs
from .errors import AnalysisError
from .stats import paired_log_ttest, t_interval
from .table import Table, to_markdown


def variant_of(run_dir: str, keys: list[str]) -> str:
    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    return " ".join(f"{k}={config['optimizer'].get(k)}" for k in keys)


def load(root: Path, keys: list[str]) -> pd.DataFrame:
    runs = collect_runs([root])
    runs = runs[runs["status"] == "finished"].copy()
    runs["variant"] = [variant_of(d, keys) for d in runs["run_dir"]]
    runs["forwards_per_step"] = runs["forwards"] / runs["steps"]
    runs["step_time_ms"] = 1e3 * runs["wall_time_s"] / runs["steps"]
    repeated = runs.groupby(["task", "variant", "seed"]).size()
    if (repeated > 1).any():
        task, variant, seed = repeated[repeated > 1].index[0]
        raise AnalysisError(f"{task}, {variant}: several runs with seed {seed}; name the keys they differ in with --keys")
    return runs


# the losses tested against the baseline, and the prefix of their columns: the clean metric and the paper's
LOSSES = {"final_train_loss": "loss", "paper_train_loss": "paper_loss"}


def logged_losses(runs: pd.DataFrame) -> list[str]:
    """The LOSSES every run has (the paper's metric needs the runs' step losses)."""
    return [m for m in LOSSES if m in runs and runs[m].notna().all()]


def table(runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    rows = []
    losses = logged_losses(runs)
    for (task, variant), group in runs.groupby(["task", "variant"]):
        base = runs[(runs["task"] == task) & (runs["variant"] == baseline)].set_index("seed")
        mine = group.set_index("seed")
        row = {"task": task, "variant": variant, "n": len(group)}
        for metric in (*losses, "val_acc_final", "forwards_per_step", "step_time_ms"):
            low, high = t_interval(mine[metric])
            row.update({metric: mine[metric].mean(), f"{metric}_ci": f"[{low:.4g}, {high:.4g}]"})
        if variant != baseline and len(base):
            for metric in losses:
                test = paired_log_ttest(mine[metric], base[metric])
                _, high = t_interval(base[metric])
                row.update({f"{LOSSES[metric]}_ratio_geomean": test["ratio_geomean"], f"{LOSSES[metric]}_p": test["p_value"],
                            f"{LOSSES[metric]}_in_ci_or_better": bool(row[metric] <= high)})
            common = mine.index.intersection(base.index)
            acc = scipy_stats.ttest_rel(mine.loc[common, "val_acc_final"], base.loc[common, "val_acc_final"]) \
                if len(common) >= 2 and np.ptp(mine.loc[common, "val_acc_final"] - base.loc[common, "val_acc_final"]) > 0 else None
            low_a, _ = t_interval(base["val_acc_final"])
            row.update(
                acc_diff=float((mine.loc[common, "val_acc_final"] - base.loc[common, "val_acc_final"]).mean()),
                acc_p=float(acc.pvalue) if acc is not None else float("nan"),
                acc_in_ci_or_better=bool(row["val_acc_final"] >= low_a),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, command: str, baseline: str) -> str:
    shown = frame.set_index("task").fillna("").astype(object)
    for column in shown.columns:
        if frame[column].dtype == float:
            shown[column] = [f"{v:.4g}" if v != "" else "" for v in shown[column]]
    notes = [f"Baseline of the paired tests: {baseline}. Means with 95% t-intervals over seeds; loss_ratio_geomean and "
             "loss_p: paired t-test on log final training loss (analysis/stats.py), paper_loss_* the same on the "
             "paper's metric (paper_train_loss: training-mode mini-batch losses, mean over the last 5% of steps); "
             "acc_diff, acc_p: paired t-test on "
             "the final validation accuracy; *_in_ci_or_better: the variant's mean lies in the baseline's interval "
             "or beyond it on the better side."]
    table = Table("variants", "Optimizer variants side by side", shown, frame, notes=notes)
    return to_markdown(table, f"python -m analysis.variants {command}")


def figure(runs: pd.DataFrame, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (*logged_losses(runs), "val_acc_final", "forwards_per_step", "step_time_ms")
    tasks = sorted(runs["task"].unique())
    variants = sorted(runs["variant"].unique())
    fig, axes = plt.subplots(len(metrics), len(tasks), figsize=(3.6 * len(tasks), 2.6 * len(metrics)), squeeze=False)
    for i, metric in enumerate(metrics):
        for j, task in enumerate(tasks):
            ax = axes[i, j]
            for x, variant in enumerate(variants):
                values = runs[(runs["task"] == task) & (runs["variant"] == variant)][metric]
                ax.scatter([x] * len(values), values, s=10)
                ax.errorbar([x], [values.mean()], fmt="_k", ms=14)
            ax.set_xticks(range(len(variants)), [v.replace(" ", "\n") for v in variants], fontsize=5, rotation=60)
            if metric in LOSSES:
                ax.set_yscale("log")
            ax.set_title(f"{task}: {metric}", fontsize=8)
    fig.tight_layout()
    path = out / "variants.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keys", nargs="+", required=True, help="optimizer config keys that tell the variants apart")
    parser.add_argument("--baseline", required=True, help='the variant the others are tested against, e.g. "c=0.5 beta3=0.9"')
    parser.add_argument("--only", nargs="+", help="keep these variants only (as written in the table)")
    args = parser.parse_args(argv)
    runs = load(args.root, args.keys)
    if args.only:
        runs = runs[runs["variant"].isin(args.only)]
    args.out.mkdir(parents=True, exist_ok=True)
    frame = table(runs, args.baseline)
    frame.to_csv(args.out / "variants.csv", index=False)
    command = " ".join(f'"{a}"' if " " in a else a for a in (argv or sys.argv[1:]))
    (args.out / "variants.md").write_text(markdown(frame, command, args.baseline), encoding="utf-8")
    figure(runs, args.out)
    print((args.out / "variants.md").read_text())
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except AnalysisError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
