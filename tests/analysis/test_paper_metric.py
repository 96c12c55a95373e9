"""The paper's metric read off train_loss.f32, its window sensitivity, and the headline-claims table."""
import numpy as np
import pytest
from scipy import stats

from analysis.claims import claims_table
from analysis.collect import collect_runs
from analysis.selection import select_cells
from analysis.train_loss import paper_metric, window_mean

from .runtree import write_run


def write_losses(run_dir, losses):
    np.asarray(losses, dtype="<f4").tofile(run_dir / "train_loss.f32")


def test_windows_average_the_last_steps(tmp_path):
    write_losses(tmp_path, np.arange(1, 101))  # steps 1..100, loss = step number (exact in float32)
    metric = paper_metric(tmp_path)
    assert metric["paper_train_loss[last step]"] == 100
    assert metric["paper_train_loss[last 1%]"] == 100
    assert metric["paper_train_loss[last 5%]"] == metric["paper_train_loss"] == np.mean([96, 97, 98, 99, 100])
    assert metric["paper_train_loss[last 20%]"] == np.mean(np.arange(81, 101))
    assert window_mean(np.array([2.0, 4.0, 8.0]), 0.05) == 8.0   # at least one step
    assert np.isnan(paper_metric(tmp_path / "absent")["paper_train_loss"])


SALSA = {"a-mlp": (0.1, 0.2, 0.3), "b-mlp": (0.2, 0.2, 0.2)}
TUNED = {"a-mlp": (0.3, 0.4, 0.5), "b-mlp": (0.4, 0.6, 0.8)}


def claims(runs):
    cells, record = select_cells(runs)
    return claims_table(cells, runs, record).data


@pytest.fixture
def cells(tmp_path):
    for task in SALSA:
        for seed in range(3):
            for optimizer, baseline, lr, final in (("paper_salsa_adam", "none", None, SALSA[task][seed]),
                                                   ("torch_adam", "tuned", 1e-3, TUNED[task][seed])):
                write_losses(write_run(tmp_path, task, optimizer, baseline, lr, seed, final), [9.0] * 19 + [final])
    return collect_runs([tmp_path])


def test_claims_pair_salsa_with_the_tuned_baseline_seed_by_seed(cells):
    table = claims(cells).set_index("claim")
    acc = table.iloc[0]  # pooled: the ADAM pair alone here
    # runtree: val_acc_peak = 0.91 - final / 2, so the difference in points is 100 * (tuned - salsa) / 2 per task
    per_seed = [np.mean([50 * (TUNED[t][s] - SALSA[t][s]) for t in SALSA]) for s in range(3)]
    half = stats.t.ppf(0.975, 2) * np.std(per_seed, ddof=1) / np.sqrt(3)
    assert acc["ours"] == pytest.approx(np.mean(per_seed))
    assert (acc["ci95_low"], acc["ci95_high"]) == pytest.approx((np.mean(per_seed) - half, np.mean(per_seed) + half))
    # Student-t alone says reproduced; 3 seeds give no exact p below 0.25, so the sign-flip interval does not
    assert acc["ci95_low"] > 0 and acc["ci95_high"] > 1.5 and acc["verdict"] == "inconclusive"
    assert acc["runs"] == 12 and acc["tasks"] == "a-mlp b-mlp"
    loss = table.iloc[3]  # the last 5% of 20 steps is the last step: the run's `final`
    # the file holds float32 losses; the analysis works in float64 on them (a few float64 roundings: rel 1e-12)
    logs = [np.mean([np.log(float(np.float32(SALSA[t][s]))) - np.log(float(np.float32(TUNED[t][s]))) for t in SALSA])
            for s in range(3)]
    assert loss["ours"] == pytest.approx(np.exp(np.mean(logs)), rel=1e-12)
    assert loss["ci95_high"] < 0.5 and loss["verdict"] == "inconclusive"   # 60% lower by t; 3 seeds: no exact p


def test_an_interval_holding_both_no_effect_and_the_papers_value_is_inconclusive(tmp_path):
    for seed, (salsa, tuned) in enumerate([(0.1, 0.3), (0.3, 0.1), (0.2, 0.2)]):  # accuracy +10, -10, 0 points
        write_run(tmp_path, "a-mlp", "paper_salsa_adam", "none", None, seed, salsa)
        write_run(tmp_path, "a-mlp", "torch_adam", "tuned", 1e-3, seed, tuned)
    acc = claims(collect_runs([tmp_path])).iloc[0]
    assert acc["ci95_low"] < 0 < 1.5 < acc["ci95_high"] and acc["verdict"] == "inconclusive"


def test_compute_claim_counts_trial_forwards_and_says_what_was_not_run(cells):
    table = claims(cells)
    without, with_rule = table.iloc[6], table.iloc[7]
    assert without["verdict"] == "not yet run" and without["n"] == 0
    # runtree: 20 line searches in 100 steps (the rule is on) and 1.5 trial forwards per search
    assert with_rule["ours"] == pytest.approx(100 * 30 / 300) and with_rule["runs"] == 6
    assert with_rule["n"] == 2 and with_rule["counted"] == "cells"   # the 2 tasks' cells, 3 runs each
    # 10% is not "about 3%" by Student-t ([10, 10]); two cells give the sign-flip interval no bounds
    assert with_rule["ci95_low"] > 6 and with_rule["verdict"] == "inconclusive"


def test_claims_without_runs_are_not_yet_run(tmp_path):
    write_run(tmp_path, "a-mlp", "torch_adam", "paper", 1e-3, 0, 0.1)
    table = claims(collect_runs([tmp_path]))
    assert list(table["verdict"]) == ["not yet run"] * 8
