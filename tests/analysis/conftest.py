from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import PAPER_CSV_NAME, SHARED_PAPER_CSV, main

from .runtree import PLANNED, write_tree

# The shared reference copy where the checkout has one, else the copy committed under results/.
PAPER_CSV = SHARED_PAPER_CSV if SHARED_PAPER_CSV.exists() else Path(__file__).parents[2] / "results" / PAPER_CSV_NAME


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
