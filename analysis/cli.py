"""`python -m analysis --root outputs/runs --out results`: every table and figure from the run directories."""
import argparse
import sys
from pathlib import Path

from . import paper, reports
from .claims import claims_table
from .collect import collect_curves, collect_runs
from .errors import AnalysisError
from .frontpage import Headline, write_front_page
from .names import PAPER_COLUMNS, ordered_columns
from .output import Written, copy_with_source, writable, write_table, write_text
from .plots import all_figures
from .provenance import provenance
from .selection import select_cells
from .stats import cell_stats
from .table import Table, to_csv
from .tables import CLEAN_METRIC, METRICS, PAPER_METRIC, ci_table, complete_tasks, metric_table, summary_rows
from .train_loss import sensitivity

PAPER_CSV_NAME = "paper_table_final_train_loss.csv"
PAPER_CSV = Path(__file__).resolve().parents[1] / "results" / PAPER_CSV_NAME  # the paper's table, in this repository
PAPER_CSV_TITLE = "The paper's published final training losses (its first line names the file it was copied from)"


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("--root", type=Path, action="append", default=[],
                        help="a results root holding run directories (repeatable)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read the runs of this W&B project")
    parser.add_argument("--wandb-cache", type=Path, default=Path(".cache/wandb-runs"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--planned-seeds", type=int, default=5, help="seeds planned per cell (default 5)")
    parser.add_argument("--paper-csv", type=Path,
                        help=f"the paper's table (default {PAPER_CSV}, else the copy in --out)")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    if not args.root and not args.wandb:
        parser.error("give at least one --root or --wandb")
    return args


def build_tables(runs, planned: int, paper_table, paper_csv: Path):
    """Every table, in memory (nothing is written until all of them exist), and those the front page shows."""
    finished = runs[runs["refused"] == ""]
    if finished.empty:
        refused = sorted(set(runs.loc[runs["status"] == "finished", "refused"]))
        raise AnalysisError(f"no finished runs among {len(runs)} runs (statuses: "
                            f"{', '.join(sorted(set(map(str, runs['status']))))})"
                            f"{'; finished but refused: ' + '; '.join(refused) if refused else ''}; nothing written")
    cells, record = select_cells(runs)
    tasks, columns = sorted(cells["task"].unique()), ordered_columns(cells["column"].unique())
    absent = [c for c in PAPER_COLUMNS if c not in columns]
    tables, stats, by_metric = [], {}, {}
    for metric in METRICS:
        if metric.key not in cells or cells[metric.key].isna().all():
            continue
        stats[metric.key] = cell_stats(cells, metric.key, planned, tasks, columns)
        by_metric[metric.key] = metric_table(stats[metric.key], metric, planned, absent)
        tables += [by_metric[metric.key], ci_table(stats[metric.key], metric)]
    if CLEAN_METRIC.key not in stats:
        raise AnalysisError(f"no finished run reports {CLEAN_METRIC.key}; nothing written")
    main = stats[CLEAN_METRIC.key]
    # the side-by-side with the paper uses the paper's own metric where the runs recorded their step losses
    logged = PAPER_METRIC if PAPER_METRIC.key in stats else CLEAN_METRIC
    headline = Headline(claims_table(cells, runs, record), paper.comparison(paper_table, stats[logged.key], runs, logged.title),
                        by_metric[logged.key], paper_csv)
    tables += [paper.recomputed_summary(paper_table), headline.comparison,
               reports.missing_cells(main, runs), reports.paired_comparison(cells, main),
               reports.tuning(record), reports.compute(cells), headline.claims]
    if PAPER_METRIC.key in stats:
        tables.append(sensitivity(cells, planned, tasks, columns))
    return tables, headline, cells, main


def run(argv) -> list[Path]:
    args = parse(argv)
    writable(args.out)
    roots = list(args.root)
    if args.wandb:
        from .wandb_source import download_project
        roots.append(download_project(args.wandb, args.wandb_cache / args.wandb.replace("/", "_")))
    paper_csv = args.paper_csv or (PAPER_CSV if PAPER_CSV.exists() else args.out / PAPER_CSV_NAME)
    paper_table = paper.read_paper_csv(paper_csv)
    runs = collect_runs(roots)
    tables, headline, cells, main = build_tables(runs, args.planned_seeds, paper_table, args.out / PAPER_CSV_NAME)
    means = main.pivot(index="task", columns="column", values="mean")[ordered_columns(main["column"].unique())]
    curves = collect_curves(cells)  # read (and checked) even with --no-figures

    stamp = provenance(argv)
    everything = Table("runs", "Every run found, one row per run (CSV only)", runs, runs)
    written = [Written(everything.title, [write_text(args.out / "tables" / "runs.csv", to_csv(everything, stamp))])]
    written += [write_table(table, args.out / "tables", stamp) for table in tables]
    if paper_csv.resolve() != headline.paper_csv.resolve():
        written.append(Written(PAPER_CSV_TITLE, [copy_with_source(paper_csv, headline.paper_csv, stamp)]))
    if not args.no_figures:
        log_average = summary_rows(means, CLEAN_METRIC).loc[CLEAN_METRIC.summary]
        written += all_figures(curves, log_average, len(complete_tasks(means)[0]), args.out / "figures", stamp)
    return [path for entry in written for path in entry.paths] + [write_front_page(args.out, headline, written, stamp)]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        written = run(argv)
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files:")
    for path in written:
        print(f"  {path}")
    return 0
