"""The whole command on the hand-built tree (runtree.py): every number checked against a hand computation."""
import math

import pytest

from .conftest import read_csv

GEO = math.sqrt  # the geometric mean of two tasks is the square root of the product


def cells(out, name="final_train_loss"):
    table = read_csv(out / "tables" / f"{name}.csv")
    return table.set_index(["task", "column"])


def test_command_succeeds(analysed):
    assert analysed[1] == 0


def test_cell_means_stds_and_counts(analysed):
    table = cells(analysed[0])
    assert table.loc[("digits-mlp", "ADAM(paper)"), "mean"] == pytest.approx(0.04)
    assert table.loc[("digits-mlp", "ADAM(paper)"), "std"] == pytest.approx(0.02)
    assert table.loc[("cifar10-cnn", "SGD(paper)"), "mean"] == pytest.approx(0.8)
    # the tuned cell holds the winning lr's runs: seed 0 from the grid, seeds 1-2 from the final runs
    assert table.loc[("digits-mlp", "ADAM(tuned)"), "mean"] == pytest.approx(0.02)
    assert table.loc[("digits-mlp", "ADAM(tuned)"), "n"] == 3


def test_failed_run_is_not_averaged_and_the_short_cell_is_flagged(analysed):
    cell = cells(analysed[0]).loc[("cifar10-cnn", "SGD_SaLSa")]
    assert cell["mean"] == pytest.approx(0.4)  # (0.3 + 0.5) / 2: the failed seed 2 (0.2) stays out
    assert (cell["n"], cell["flagged"]) == (2, True)
    markdown = (analysed[0] / "tables" / "final_train_loss.md").read_text()
    assert "0.4 ± 0.1414 (2/3)†" in markdown


def test_missing_cell_report(analysed):
    report = read_csv(analysed[0] / "tables" / "missing_cells.csv")
    problems = set(zip(report["task"], report["column"], report["problem"]))
    assert ("cifar10-cnn", "SGD_SaLSa", "2/3 seeds") in problems
    assert ("tiny-cnn", "SGD(paper)", "0/3 seeds") in problems
    assert ("cifar10-cnn", "SGD_SaLSa", "run failed: diverged: loss is NaN (not averaged)") in problems
    assert ("tiny-cnn", "SGD_SaLSa", "run running (not averaged)") in problems
    assert not any(t == "digits-mlp" for t, _, _ in problems)


def test_log_average_over_the_complete_tasks_only(analysed):
    summary = cells(analysed[0]).loc["log average"]["mean"]
    # tiny-cnn lacks SGD(paper) and others, so the summary is over digits-mlp and cifar10-cnn
    assert summary["ADAM(paper)"] == pytest.approx(GEO(0.04 * 0.2))
    assert summary["ADAM_SaLSa"] == pytest.approx(GEO(0.01 * 0.05))
    assert summary["SGD_SaLSa"] == pytest.approx(GEO(0.1 * 0.4))
    markdown = (analysed[0] / "tables" / "final_train_loss.md").read_text()
    assert "over the 2 of 3 tasks with a value in every column; left out: tiny-cnn." in markdown
    assert "No runs at all for: SGD(tuned), SGD_SLS." in markdown


def test_average_rank_with_ties(analysed):
    ranks = cells(analysed[0]).loc["average rank"]["mean"]
    # digits: SaLSa 1, tuned 2, ADAM(paper) = ADAM_SLS = 0.04 -> 3.5 each, SGD_SaLSa 5, SGD 6
    # cifar:  SaLSa 1, tuned 2, ADAM(paper) 3, ADAM_SLS = SGD_SaLSa = 0.4 -> 4.5 each, SGD 6
    assert ranks.to_dict() == pytest.approx({"ADAM(paper)": 3.25, "ADAM(tuned)": 2.0, "SGD(paper)": 6.0,
                                             "ADAM_SLS": 4.0, "ADAM_SaLSa": 1.0, "SGD_SaLSa": 4.75})


def test_best_per_row_in_bold(analysed):
    markdown = (analysed[0] / "tables" / "final_train_loss.md").read_text()
    digits = next(line for line in markdown.splitlines() if line.startswith("| digits-mlp"))
    assert digits.count("**") == 2 and "**0.01 ± 0.005 (3)**" in digits
    accuracy = (analysed[0] / "tables" / "val_acc_peak.md").read_text()
    assert "**90.5 ± 0.25 (3)**" in accuracy  # highest accuracy is best: 0.91 - 0.01/2 in %


def test_accuracy_files_hold_the_percentages_their_title_names(analysed):
    for name in ("val_acc_peak", "val_acc_peak_ci95"):
        path = analysed[0] / "tables" / f"{name}.csv"
        assert path.read_text().startswith("# Peak validation accuracy (%)")
        assert cells(analysed[0], name).loc[("digits-mlp", "ADAM_SaLSa"), "mean"] == pytest.approx(90.5)  # 0.905
    table = cells(analysed[0], "val_acc_peak")
    assert table.loc[("average rank", "ADAM_SaLSa"), "mean"] == 1.0  # a rank stays a rank


def test_confidence_intervals(analysed):
    cell = cells(analysed[0], "final_train_loss_ci95").loc[("digits-mlp", "SGD(paper)")]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # values 0.1, 0.2, 0.3: sd 0.1
    assert (cell["ci95_low"], cell["ci95_high"]) == pytest.approx((0.2 - half, 0.2 + half))


def test_tuned_lr_is_chosen_on_validation_not_test(analysed):
    record = read_csv(analysed[0] / "tables" / "tuning.csv").set_index("task")
    assert record.loc["digits-mlp", "winner_lr"] == pytest.approx(1e-3)  # test loss would have picked 1e-2
    assert record.loc["digits-mlp", "grid_runs"] == 3
    assert record.loc["digits-mlp", "grid_wall_time_s"] == pytest.approx(30.0)
    assert record.loc["digits-mlp", "tuning_cost_in_salsa_runs"] == pytest.approx(30.0 / 12.0)
    assert record.loc["cifar10-cnn", "grid_runs"] == 2


def test_paired_comparison(analysed):
    paired = read_csv(analysed[0] / "tables" / "paired_comparison.csv").set_index(["task", "salsa"])
    row = paired.loc[("digits-mlp", "ADAM_SaLSa")]
    assert row["best_baseline"] == "ADAM(tuned)" and row["n_pairs"] == 3
    from scipy.stats import t as student
    d = [math.log(0.5), math.log(0.4), math.log(0.6)]
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    assert row["p_value"] == pytest.approx(2 * student.sf(abs(mean / (sd / math.sqrt(3))), 2))
    # Holm over the table's p-values: the i-th smallest times (m - i + 1), made non-decreasing, capped at 1
    p = sorted(paired["p_value"].dropna())
    adjusted = [min(1.0, max((len(p) - j) * p[j] for j in range(i + 1))) for i in range(len(p))]
    assert row["p_holm"] == pytest.approx(adjusted[p.index(row["p_value"])])
    assert paired["p_holm"].isna().sum() == paired["p_value"].isna().sum()


def test_compute_table(analysed):
    compute = read_csv(analysed[0] / "tables" / "compute.csv").set_index(["task", "column"])
    salsa = compute.loc[("digits-mlp", "ADAM_SaLSa")]
    assert salsa["forwards_per_step"] == pytest.approx(1.3)
    assert salsa["line_search_frequency"] == pytest.approx(0.2)
    assert compute.loc[("digits-mlp", "ADAM_SLS"), "line_search_frequency"] == pytest.approx(1.0)


def test_paper_comparison_side_by_side(analysed):
    comparison = read_csv(analysed[0] / "tables" / "paper_comparison.csv").set_index(["task", "column"])
    row = comparison.loc[("cifar10-cnn", "ADAM(paper)")]
    assert (row["paper_task"], row["paper"]) == ("CIFAR10", pytest.approx(0.01394))
    assert row["ratio"] == pytest.approx(0.2 / 0.01394)
    copy = (analysed[0] / "paper_table_final_train_loss.csv").read_text()
    assert copy.startswith("# source: ") and "MNLI,bert-base-uncased" in copy


def test_every_file_carries_its_command_and_date(analysed):
    out = analysed[0]
    for path in (out / "tables").iterdir():
        head = path.read_text()[:400]
        assert "generated by `python -m analysis --root" in head and " UTC" in head, path
    for path in (out / "figures").glob("*.png"):
        assert b"generated by" in path.read_bytes(), path


def test_every_figure_is_written_and_non_empty(analysed):
    figures = analysed[0] / "figures"
    for name in ("train_loss", "val_accuracy", "step_size", "line_search_frequency", "log_average_final_loss"):
        png, pdf = figures / f"{name}.png", figures / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000, pdf


def test_one_row_per_run(analysed):
    runs = read_csv(analysed[0] / "tables" / "runs.csv")
    # digits 17 cell runs + 3 grid runs, cifar 16 + 2, tiny 6; then 1 failed and 1 running
    assert len(runs) == 46 and runs["run_id"].is_unique
    assert runs["status"].value_counts().to_dict() == {"finished": 44, "failed": 1, "running": 1}
    assert set(runs["column"]) >= {"ADAM(paper)", "ADAM(tuned)", "SGD(paper)", "ADAM_SLS", "ADAM_SaLSa", "SGD_SaLSa"}


def test_latex_tables_are_plain_ascii(analysed):
    for path in (analysed[0] / "tables").glob("*.tex"):
        text = path.read_text()
        assert text.isascii(), (path, sorted({c for c in text if not c.isascii()}))
        assert "^" not in text.replace(r"$^\dagger$", ""), path  # a caret outside math mode stops LaTeX
        assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
