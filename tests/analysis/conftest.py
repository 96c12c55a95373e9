
import pandas as pd
import pytest

from analysis.cli import PAPER_CSV, main  # noqa: F401  (PAPER_CSV: for the tests)

from .runtree import PLANNED, write_tree


def read_csv(path):
    return pd.read_csv(path, comment="#")


@pytest.fixture(scope="session")
def analysed(tmp_path_factory):
    """The whole command, once, on the hand-built results tree: (output dir, exit code)."""
    base = tmp_path_factory.mktemp("analysis")
    root = write_tree(base / "runs")
    out = base / "results"
    code = main(["--root", str(root), "--out", str(out), "--planned-seeds", str(PLANNED), "--paper-csv", str(PAPER_CSV)])
    return out, code
