"""Claim 3's values: the line search's extra compute per task x optimizer cell, with the frequency rule on and off.

Forward passes are counted: a line-search trial is one forward, a training step about three forward-equivalents
(forward + backward), so a run's extra compute is trial forwards / (3 steps), in % of a step. A run with fewer line
searches than steps had the frequency rule on. Runs of one task and optimizer are alike (the same searches on nearly
the same losses), so each cell's runs are averaged first and the intervals are over cells (n = cells), not runs.
The claim is about the paper's algorithm: its rows hold the paper's SaLSa columns alone (catalogue family salsa,
source paper), the rule on and off as the authors ran them; the release's and our SaLSa get rows of their own,
labelled extra columns.
"""
import pandas as pd

from .names import ENTRIES, label, order
from .verdicts import Claim

PAPER_SALSA = {e.name for e in ENTRIES if e.family == "salsa" and e.source == "paper"}
EXTRA_SALSA = {e.name: label(e) for e in sorted(ENTRIES, key=order) if e.family == "salsa" and e.source != "paper"}
RULE = {False: ("without the frequency rule", Claim(30.0, "about"), "about 30%"),
        True: ("with the frequency rule", Claim(3.0, "about"), "about 3%")}


def compute_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per task x optimizer x rule: the mean extra compute of its runs, their count and run ids."""
    runs = cells.dropna(subset=["forwards", "steps", "line_searches"])
    runs = runs[runs["optimizer"].isin(PAPER_SALSA | set(EXTRA_SALSA))]
    runs = runs.assign(extra=(runs["forwards"] - runs["steps"]) / (3 * runs["steps"]) * 100,
                       rule=runs["line_searches"] < runs["steps"])
    grouped = runs.groupby(["task", "optimizer", "column", "rule"])
    return grouped.agg(value=("extra", "mean"), runs=("run_id", "size"), run_ids=("run_id", " ".join)).reset_index()


def compute_rows(cells: pd.DataFrame) -> list[tuple]:
    """(claim text, paper text, Claim, the row's cells), the paper's columns first, then each extra column."""
    table = compute_cells(cells)
    paper = table[table["optimizer"].isin(PAPER_SALSA)]
    rows = []
    for rule, (words, claim, paper_text) in RULE.items():
        rows.append((f"line search's extra compute, {words} (the paper's SaLSa columns)", paper_text, claim,
                     paper[paper["rule"] == rule]))
    for name, column in EXTRA_SALSA.items():
        for rule, (words, claim, paper_text) in RULE.items():
            mine = table[(table["optimizer"] == name) & (table["rule"] == rule)]
            if len(mine):
                rows.append((f"line search's extra compute, {words}: {column} (extra column, not the paper's)",
                             paper_text, claim, mine))
    return rows
