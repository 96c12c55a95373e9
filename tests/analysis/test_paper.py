from pathlib import Path

import pytest

from analysis.paper import read_paper_csv, recomputed_summary

from .conftest import PAPER_CSV


@pytest.fixture(scope="module")
def recomputed():
    return recomputed_summary(read_paper_csv(PAPER_CSV)).data.set_index(["row", "column"])


def test_recomputed_ranks_are_those_in_the_csv_comment(recomputed):
    ranks = recomputed.loc["average_rank", "recomputed"]
    # the CSV comment: "recomputing the ranks gives SGD 4.875, SGD_SLS 5.375, SGD_SaLSa 3.625"
    assert ranks.to_dict() == {"ADAM": 2.75, "SGD": 4.875, "ADAM_SLS": 3.125, "SGD_SLS": 5.375,
                               "ADAM_SaLSa": 1.25, "SGD_SaLSa": 3.625}
    differs = recomputed.loc["average_rank", "differs"]
    assert sorted(differs[differs].index) == ["SGD", "SGD_SLS", "SGD_SaLSa"]


def test_recomputed_log_average_agrees_with_the_printed_digits(recomputed):
    log_average = recomputed.loc["log_average"]
    assert not log_average["differs"].any()
    assert log_average.loc["ADAM_SaLSa", "recomputed"] == pytest.approx(0.0148, abs=5e-5)  # the printed digits


def test_paper_csv_that_is_missing_is_a_clear_error(tmp_path):
    from analysis.errors import AnalysisError
    with pytest.raises(AnalysisError, match="not found"):
        read_paper_csv(Path(tmp_path / "nope.csv"))
