import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats import average_ranks, cell_stats, geometric_mean, holm, paired_log_ttest, t_interval


def test_t_interval_matches_the_hand_computed_student_t_interval():
    low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n), sd = 1
    assert (low, high) == pytest.approx((2 - half, 2 + half))


def test_t_interval_needs_two_values():
    assert all(math.isnan(v) for v in t_interval([0.3]))


def test_geometric_mean():
    assert geometric_mean([1e-2, 1e-4]) == pytest.approx(1e-3)
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)


def test_average_ranks_give_ties_the_average_rank():
    means = pd.DataFrame({"A": [1.0, 2.0], "B": [1.0, 1.0], "C": [3.0, 1.0]}, index=["t1", "t2"])
    # t1: A, B tie for ranks 1-2 -> 1.5 each, C 3; t2: B, C tie -> 1.5, A 3
    assert average_ranks(means, higher_is_better=False).to_dict() == {"A": 2.25, "B": 1.5, "C": 2.25}
    # accuracies: higher is better, so the order flips
    assert average_ranks(means, higher_is_better=True).to_dict() == {"A": 1.75, "B": 2.5, "C": 1.75}


def test_means_equal_up_to_float_error_are_ties():
    means = pd.DataFrame({"A": [np.mean([0.02, 0.04, 0.06])], "B": [0.04], "C": [0.01]})
    assert average_ranks(means, higher_is_better=False).to_dict() == {"A": 2.5, "B": 2.5, "C": 1.0}


def test_paired_log_ttest_against_the_formula():
    a = pd.Series([0.005, 0.01, 0.015], index=[0, 1, 2])
    b = pd.Series([0.01, 0.025, 0.025, 0.5], index=[0, 1, 2, 3])  # seed 3 has no partner
    result = paired_log_ttest(a, b)
    d = np.log([0.5, 0.4, 0.6])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    from scipy.stats import t as student
    assert result["n_pairs"] == 3
    assert result["t"] == pytest.approx(t)
    assert result["p_value"] == pytest.approx(2 * student.sf(abs(t), 2))
    assert result["ratio_geomean"] == pytest.approx(math.exp(d.mean()))


def test_paired_log_ttest_without_spread_gives_no_p_value():
    result = paired_log_ttest(pd.Series([1.0, 2.0]), pd.Series([2.0, 4.0]))
    assert result["ratio_geomean"] == pytest.approx(0.5) and math.isnan(result["p_value"])
    # the same ratio on every seed, whose log differences may differ in the last bits (here they do: no spread
    # either, where scipy would warn of catastrophic cancellation)
    a, b = pd.Series([0.05, 0.1, 0.2]), pd.Series([0.1, 0.2, 0.4])
    result = paired_log_ttest(a, b)
    assert result["ratio_geomean"] == pytest.approx(0.5) and math.isnan(result["t"]) and math.isnan(result["p_value"])


def test_cell_stats_flags_short_cells_and_includes_empty_ones():
    cells = pd.DataFrame({"task": ["t"] * 3, "column": ["A", "A", "B"], "seed": [0, 1, 0],
                          "loss": [1.0, 3.0, 2.0]})
    stats = cell_stats(cells, "loss", planned=2, tasks=["t"], columns=["A", "B", "C"]).set_index("column")
    assert stats.loc["A", ["n", "mean", "flagged"]].tolist() == [2, 2.0, False]
    assert stats.loc["B", ["n", "flagged"]].tolist() == [1, True]
    assert stats.loc["C", "n"] == 0 and stats.loc["C", "flagged"]
    assert stats.loc["A", "std"] == pytest.approx(math.sqrt(2))


def test_cell_stats_averages_duplicate_seeds_per_seed_and_reports_them():
    cells = pd.DataFrame({"task": ["t"] * 3, "column": ["A"] * 3, "seed": [0, 0, 1], "loss": [1.0, 3.0, 4.0]})
    row = cell_stats(cells, "loss", planned=2, tasks=["t"], columns=["A"]).iloc[0]
    assert (row["n"], row["mean"], row["duplicate_seeds"]) == (2, 3.0, "0")  # seed 0 -> 2.0, seed 1 -> 4.0


def test_holm_adjusts_the_sorted_p_values_step_down():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to the 0.06 before it; NaN is no test
    assert holm([0.04, 0.01, float("nan"), 0.03]) == pytest.approx([0.06, 0.03, float("nan"), 0.06], nan_ok=True)
    assert holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # 0.5 x 2 = 1.0; 0.9 x 1 = 0.9, raised to the 1.0 before it
