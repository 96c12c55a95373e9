"""analysis.variants: optimizer variants told apart by their config.yaml, paired against a baseline."""
import pytest
import yaml

from analysis.errors import AnalysisError
from analysis.variants import load, table
from tests.analysis.runtree import write_run


def write_variant(root, c: float, finals, logged: bool = False):
    for seed, final in enumerate(finals):
        # lr=c only makes runtree's run ids differ between the variants (it hashes task, optimizer, lr, seed)
        run_dir = write_run(root, "digits-mlp", "ours_salsa_adam", "none", c, seed, final, logged=logged)
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"optimizer": {"name": "ours_salsa_adam", "c": c}}))


def test_a_variant_with_half_the_loss_on_every_seed(tmp_path):
    write_variant(tmp_path, 0.5, [0.1, 0.2, 0.4])
    write_variant(tmp_path, 0.3, [0.05, 0.1, 0.2])
    rows = table(load(tmp_path, ["c"]), baseline="c=0.5").set_index("variant")
    new = rows.loc["c=0.3"]
    assert new["loss_ratio_geomean"] == pytest.approx(0.5, rel=1e-12)  # exp(mean(log 0.5))
    # runtree's accuracy is 0.9 - final / 2: the paired differences are 0.025, 0.05, 0.1
    assert new["acc_diff"] == pytest.approx((0.025 + 0.05 + 0.1) / 3, rel=1e-12)
    assert new["loss_in_ci_or_better"] and new["acc_in_ci_or_better"]
    assert rows.loc["c=0.5", "n"] == 3
    assert "paper_loss_ratio_geomean" not in rows  # the runs logged no step losses


def test_the_paper_metric_is_tested_too_where_the_runs_logged_it(tmp_path):
    write_variant(tmp_path, 0.5, [0.1, 0.2, 0.4], logged=True)
    write_variant(tmp_path, 0.3, [0.05, 0.1, 0.2], logged=True)
    new = table(load(tmp_path, ["c"]), baseline="c=0.5").set_index("variant").loc["c=0.3"]
    # runtree logs `final` at every step in float32: the ratio of each seed's means is 0.5 to float32's rounding
    assert new["paper_loss_ratio_geomean"] == pytest.approx(0.5, rel=2**-22)
    assert new["paper_loss_in_ci_or_better"]


def test_runs_that_share_a_variant_and_a_seed_are_refused(tmp_path):
    write_variant(tmp_path / "a", 0.5, [0.1])
    for run_dir in (tmp_path / "a").iterdir():  # the same variant and seed once more, under another run id
        copy = tmp_path / "b" / "0123456789ab"
        copy.mkdir(parents=True)
        for f in run_dir.iterdir():
            (copy / f.name).write_text(f.read_text().replace(run_dir.name, copy.name))
    with pytest.raises(AnalysisError, match="several runs with seed 0"):
        load(tmp_path, ["c"])
