"""The claims table on run directories with known effects: a pair with one failing seed, a missing task, a tie,
a pair not run, one seed, five seeds. Every expected number is worked out here from the runs' values: the means and
Student-t intervals by formula, the sign-flip intervals and p-values by listing every sign pattern
(signflip_by_hand.py), the verdicts by the rules as the claims' notes state them."""
import math

import numpy as np
import pytest
from scipy import stats

from analysis.claims import claims_table
from analysis.collect import collect_runs
from analysis.selection import select_cells

from .runtree import write_run
from .signflip_by_hand import accepted, p_value

ADAM = ("salsa", "torch_adam", 1e-3)            # ADAM_SaLSa vs ADAM(tuned)
SGD = ("paper_salsa_sgd", "torch_sgd", 0.1)     # SGD_SaLSa vs SGD(tuned)
ACC = "accuracy: SaLSa - tuned Adam/SGD (peak validation accuracy), pooled (the paper's definition)"
LOSS = "log loss: SaLSa / tuned Adam/SGD (final training loss as logged), pooled (the paper's definition)"
ACC_ADAM, ACC_SGD = "accuracy: ADAM_SaLSa vs ADAM(tuned)", "accuracy: SGD_SaLSa vs SGD(tuned)"
LOSS_ADAM, LOSS_SGD = "log loss: ADAM_SaLSa vs ADAM(tuned)", "log loss: SGD_SaLSa vs SGD(tuned)"
LN_10_DIGITS = 2.302  # digits' constant-predictor loss is 2.3024 nats (nearly ln 10: its classes are nearly balanced)


def write_pair(root, task, pair, seed, salsa_acc, base_acc, salsa_loss=0.25, base_loss=0.5, status="finished"):
    salsa, baseline, lr = pair
    write_run(root, task, salsa, "none", None, seed, salsa_loss, acc_peak=salsa_acc, logged=True, status=status,
              searches=0)
    write_run(root, task, baseline, "tuned", lr, seed, base_loss, acc_peak=base_acc, logged=True)


def claims(root):
    runs = collect_runs([root])
    cells, record = select_cells(runs)
    table = claims_table(cells, runs, record)
    return table.data.set_index("claim"), table.notes


def t_interval(values):
    values = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


def check_sign_flip(row, values, shown=lambda v: v):
    """The row's sign-flip interval is the hull of the means the test accepts at 5%, and its p is the test's at 0."""
    low, high = row["signflip95_low"], row["signflip95_high"]
    if shown is np.exp:
        low, high = math.log(low), math.log(high)
    step = 1e-9 * max(1.0, abs(low), abs(high))
    assert accepted(values, low + step) and not accepted(values, low - step)
    assert accepted(values, high - step) and not accepted(values, high + step)
    assert row["p_exact"] == pytest.approx(p_value(values, 0.0))


@pytest.fixture(scope="module")
def failing_seed(tmp_path_factory):
    """Two tasks, both pairs, 10 seeds. ADAM SaLSa is 2.0-2.9 points above tuned Adam; SGD SaLSa is 2 points above
    tuned SGD but for seed 3 on digits, where it ends at the constant predictor's loss with 10% accuracy."""
    root = tmp_path_factory.mktemp("failing")
    values = {}
    for task in ("digits-mlp", "mnist5k-mlp"):
        for seed in range(10):
            adam = 0.82 + 0.001 * ((7 * seed) % 10)
            write_pair(root, task, ADAM, seed, adam, 0.80, salsa_loss=0.2 + 0.01 * seed, base_loss=0.5)
            failing = task == "digits-mlp" and seed == 3
            sgd = 0.10 if failing else 0.72 + 0.001 * seed
            write_pair(root, task, SGD, seed, sgd, 0.70, salsa_loss=2.31 if failing else 0.5, base_loss=0.5)
            values[task, "ADAM", seed] = (100 * (adam - 0.80), math.log(np.float32(0.2 + 0.01 * seed)) - math.log(0.5))
            values[task, "SGD", seed] = (100 * (sgd - 0.70), math.log(2.31 if failing else 0.5) - math.log(0.5))
    return claims(root), values


def per_seed(values, pairs, which):
    return [np.mean([values[t, p, s][which] for t in ("digits-mlp", "mnist5k-mlp") for p in pairs]) for s in range(10)]


def test_each_pair_has_its_row_beside_the_pooled_one(failing_seed):
    (table, _), values = failing_seed
    assert list(table.index[:6]) == [ACC, ACC_ADAM, ACC_SGD, LOSS, LOSS_ADAM, LOSS_SGD]
    for name, pairs in ((ACC, ("ADAM", "SGD")), (ACC_ADAM, ("ADAM",)), (ACC_SGD, ("SGD",))):
        expected = per_seed(values, pairs, 0)
        row = table.loc[name]
        assert (row["n"], row["ours"]) == (10, pytest.approx(np.mean(expected)))
        assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(t_interval(expected))
        check_sign_flip(row, expected)
        assert row["tasks"] == "digits-mlp mnist5k-mlp" and row["left_out"] == ""


def test_verdicts_of_the_pair_with_one_failing_seed(failing_seed):
    (table, _), values = failing_seed
    # ADAM: every seed 2.0-2.9 points up: both intervals exclude 0 and reach 1.5 -> reproduced
    assert table.loc[ACC_ADAM, "signflip95_low"] > 0 and table.loc[ACC_ADAM, "verdict"] == "reproduced"
    # SGD: seed 3 averages (10% - 70%) and +2 points: -29; both intervals hold 0 and 1.5 -> inconclusive
    row = table.loc[ACC_SGD]
    assert row["ci95_low"] < 0 and row["ci95_high"] > 1.5 and row["signflip95_low"] < 0 < 1.5 < row["signflip95_high"]
    assert row["verdict"] == "inconclusive"
    assert row["failed"] == "SGD_SaLSa 1/20 (0 diverged, 1 at the constant loss); SGD(tuned) 0/20"
    assert row["failed_runs"] == 1 and table.loc[ACC, "failed_runs"] == 1
    assert table.loc[ACC, "failed"] == "ADAM_SaLSa 0/20; ADAM(tuned) 0/20; " + row["failed"]
    # log loss, ADAM: ratios 0.4-0.58 (0.2..0.29 / 0.5): the intervals lie below 1 and reach 0.5 -> reproduced
    logs = per_seed(values, ("ADAM",), 1)
    loss = table.loc[LOSS_ADAM]
    assert loss["ours"] == pytest.approx(math.exp(np.mean(logs)))
    assert (loss["ci95_low"], loss["ci95_high"]) == pytest.approx(tuple(map(math.exp, t_interval(logs))))
    check_sign_flip(loss, logs, np.exp)
    assert loss["ci95_low"] <= 0.5 and loss["ci95_high"] < 1 and loss["verdict"] == "reproduced"
    # log loss, SGD: ratio 1 on 19 runs, 4.62 on one: the t interval holds 1, the sign-flip one lies at 1 or above,
    # both miss 0.5 -> not reproduced
    sgd = table.loc[LOSS_SGD]
    assert sgd["ci95_low"] > 0.5 and sgd["signflip95_low"] > 0.5 and sgd["verdict"] == "not reproduced"


def test_tasks_as_a_sample(failing_seed):
    (table, notes), values = failing_seed
    per_task = [np.mean([values[t, "ADAM", s][0] for s in range(10)]) for t in ("digits-mlp", "mnist5k-mlp")]
    row = table.loc[ACC_ADAM]
    assert (row["tasks_n"], row["tasks_mean"]) == (2, pytest.approx(np.mean(per_task)))
    # two equal per-task means: a zero-width t interval; two values can never give an exact p below 0.5
    assert (row["tasks_ci95_low"], row["tasks_ci95_high"]) == pytest.approx((np.mean(per_task),) * 2)
    assert (row["tasks_signflip95_low"], row["tasks_signflip95_high"]) == (-math.inf, math.inf)
    assert row["tasks_verdict"] == "inconclusive"
    scope = next(n for n in notes if n.startswith("Scope:"))
    assert "(digits-mlp, mnist5k-mlp)" in scope and "not over tasks in general" in scope
    assert any(n.startswith(f"- {ACC_ADAM}: ") and n.endswith("n = 2 tasks: inconclusive (over seeds: reproduced)")
               for n in notes)


def test_a_missing_task_is_left_out_of_every_seeds_average_and_said(tmp_path):
    for task in ("a-mlp", "b-mlp"):
        for seed in range(6):
            if (task, seed) != ("b-mlp", 4):
                write_pair(tmp_path, task, ADAM, seed, 0.9 + 0.001 * seed + (0.02 if task == "a-mlp" else 0.05), 0.9)
            else:
                write_run(tmp_path, task, "torch_adam", "tuned", 1e-3, seed, 0.5, acc_peak=0.9, logged=True)
    table, notes = claims(tmp_path)
    row = table.loc[ACC_ADAM]
    assert row["tasks"] == "a-mlp" and row["n"] == 6 and row["ours"] == pytest.approx(2.0 + 0.1 * np.mean(range(6)))
    assert row["left_out"] == "b-mlp (ADAM_SaLSa vs ADAM(tuned)) lacks seed 4"
    assert any("b-mlp (ADAM_SaLSa vs ADAM(tuned)) lacks seed 4" in n and n.startswith("Left out of every seed's")
               for n in notes)
    # data sets a and b have no class counts: no constant-predictor reference, and the notes say so
    assert any(n.endswith("references (nats): none; none for a, b: only divergences counted there.") for n in notes)


def test_a_tie_is_not_reproduced_and_a_pair_not_run_is_not_yet_run(tmp_path):
    for seed in range(6):
        write_pair(tmp_path, "digits-mlp", SGD, seed, 0.9, 0.9, salsa_loss=0.5, base_loss=0.5)
    table, _ = claims(tmp_path)
    acc, loss = table.loc[ACC_SGD], table.loc[LOSS_SGD]
    # differences 0 on every seed: both intervals are [0, 0], short of +1.5; ratio [1, 1], above 0.5
    assert (acc["ci95_low"], acc["ci95_high"], acc["signflip95_low"], acc["signflip95_high"]) == (0, 0, 0, 0)
    assert acc["p_exact"] == 1.0 and acc["verdict"] == "not reproduced"
    assert (loss["ci95_low"], loss["signflip95_high"]) == (1.0, 1.0) and loss["verdict"] == "not reproduced"
    assert table.loc[ACC_ADAM, "verdict"] == table.loc[LOSS_ADAM, "verdict"] == "not yet run"
    assert table.loc[ACC_ADAM, "n"] == 0 and table.loc[ACC, "n"] == 6


def test_one_seed_is_inconclusive(tmp_path):
    write_pair(tmp_path, "digits-mlp", ADAM, 0, 0.99, 0.5)
    table, _ = claims(tmp_path)
    assert table.loc[ACC_ADAM, "n"] == 1 and table.loc[ACC_ADAM, "verdict"] == "inconclusive (one seed)"


def test_five_seeds_the_intervals_disagree_so_inconclusive(tmp_path):
    differences = [1.8, 2.0, 2.2, 2.1, 1.9]
    for seed, d in enumerate(differences):
        write_pair(tmp_path, "digits-mlp", ADAM, seed, 0.8 + d / 100, 0.8)
    table, notes = claims(tmp_path)
    row = table.loc[ACC_ADAM]
    low, high = t_interval([100 * ((0.8 + d / 100) - 0.8) for d in differences])
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((low, high))
    assert low > 0 and high >= 1.5                        # Student-t alone: reproduced
    # 32 sign patterns: the two most extreme give p = 2/32 > 0.05, so the test accepts every mean: the whole line
    assert all(accepted(differences, mu) for mu in (-1e6, 0.0, 1e6))
    assert (row["signflip95_low"], row["signflip95_high"]) == (-math.inf, math.inf)
    assert row["p_exact"] == pytest.approx(2 / 32) == pytest.approx(p_value(differences, 0.0))
    assert row["verdict"] == "inconclusive"
    assert any(n.startswith("With 5 seeds the smallest exact two-sided p is 2/32 = 0.0625 > 0.05") for n in notes)


def test_both_intervals_short_of_the_paper_is_not_reproduced(tmp_path):
    for seed in range(10):
        write_pair(tmp_path, "digits-mlp", ADAM, seed, 0.80 - 0.001 * (seed % 3), 0.80)
    table, _ = claims(tmp_path)
    row = table.loc[ACC_ADAM]
    differences = [-0.1 * (seed % 3) for seed in range(10)]
    check_sign_flip(row, differences)
    assert row["ci95_high"] < 1.5 and row["signflip95_high"] < 1.5 and row["verdict"] == "not reproduced"


def test_a_diverged_run_is_counted_and_its_task_left_out(tmp_path):
    for task in ("digits-mlp", "mnist5k-mlp"):
        for seed in range(6):
            status = "failed" if (task, seed) == ("digits-mlp", 2) else "finished"
            write_pair(tmp_path, task, SGD, seed, 0.92, 0.90, status=status)
    table, _ = claims(tmp_path)
    row = table.loc[ACC_SGD]
    assert row["failed"] == "SGD_SaLSa 1/12 (1 diverged, 0 at the constant loss); SGD(tuned) 0/12"
    assert row["tasks"] == "mnist5k-mlp" and row["left_out"] == "digits-mlp (SGD_SaLSa vs SGD(tuned)) lacks seed 2"


def test_claim_3_holds_the_papers_columns_alone_over_cells(tmp_path):
    # runtree: a search costs 1.5 trial forwards, a step 3 forward-equivalents: extra = 0.5 * searches % of a step
    searches = {("a-mlp", "salsa"): (6, 8, 10), ("b-mlp", "salsa"): (4, 4, 4),                # the rule on
                ("a-mlp", "paper_salsa_sgd"): (100,) * 3, ("b-mlp", "paper_salsa_sgd"): (100,) * 3,  # off
                ("a-mlp", "release_salsa"): (2, 2, 2), ("a-mlp", "ours_salsa_adam"): (1, 2, 3)}
    for (task, optimizer), counts in searches.items():
        for seed, count in enumerate(counts):
            write_run(tmp_path, task, optimizer, "none", None, seed, 0.1, searches=count)
    table, _ = claims(tmp_path)
    on = table.loc["line search's extra compute, with the frequency rule (the paper's SaLSa columns)"]
    cells = [0.5 * np.mean((6, 8, 10)), 0.5 * 4]           # each task x optimizer cell averaged first: 4% and 2%
    assert (on["n"], on["counted"], on["runs"], on["columns"]) == (2, "cells", 6, "ADAM_SaLSa")
    assert on["ours"] == pytest.approx(3.0) and (on["ci95_low"], on["ci95_high"]) == pytest.approx(t_interval(cells))
    assert (on["signflip95_low"], on["signflip95_high"]) == (-math.inf, math.inf) and on["verdict"] == "inconclusive"
    off = table.loc["line search's extra compute, without the frequency rule (the paper's SaLSa columns)"]
    assert (off["n"], off["ours"], off["columns"]) == (2, pytest.approx(50.0), "SGD_SaLSa")
    release = table.loc["line search's extra compute, with the frequency rule: SaLSA(release) (extra column, not the paper's)"]
    assert (release["n"], release["ours"], release["verdict"]) == (1, pytest.approx(1.0), "inconclusive (one cell)")
    ours = table.loc["line search's extra compute, with the frequency rule: ADAM_SaLSa(ours) (extra column, not the paper's)"]
    assert ours["runs"] == 3 and ours["ours"] == pytest.approx(1.0)
    assert not any("without the frequency rule: " in claim for claim in table.index)  # no extra rows without runs


def test_claim_3_about_rule_inside_the_range_and_missing_it(tmp_path):
    # 3 tasks x the paper's 2 SaLSa columns = 6 cells: k = floor(0.025 * 2^6) = 1, so the sign-flip interval is
    # [the smallest cell, the largest cell] (the extreme subset means are single values)
    on = {"salsa": (20, 22, 24), "paper_salsa_sgd": (26, 28, 30)}   # 10-15% of a step
    for optimizer, counts in on.items():
        for task, count in zip(("a-mlp", "b-mlp", "c-mlp"), counts):
            for seed in range(2):
                write_run(tmp_path, task, optimizer, "none", None, seed, 0.1, searches=count)
                write_run(tmp_path, task, optimizer, "none", None, seed + 2, 0.1, searches=100)  # rule off: 50%
    table, _ = claims(tmp_path)
    rule_on = table.loc["line search's extra compute, with the frequency rule (the paper's SaLSa columns)"]
    cells = [0.5 * c for counts in on.values() for c in counts]
    assert (rule_on["n"], rule_on["signflip95_low"], rule_on["signflip95_high"]) == (6, min(cells), max(cells))
    assert (rule_on["ci95_low"], rule_on["ci95_high"]) == pytest.approx(t_interval(cells))
    assert rule_on["ci95_low"] > 6 and rule_on["verdict"] == "not reproduced"      # both miss [1.5, 6]
    rule_off = table.loc["line search's extra compute, without the frequency rule (the paper's SaLSa columns)"]
    assert (rule_off["n"], rule_off["ci95_low"], rule_off["signflip95_high"]) == (6, 50, 50)
    assert rule_off["verdict"] == "reproduced"                                     # both inside [15, 60]
