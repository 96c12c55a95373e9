"""Optimizer names in run files -> the paper's column names, and the order the columns are shown in."""

OPTIMIZER_COLUMN = {
    "adam": "ADAM",
    "adamw": "ADAM",  # the paper's GPT-2 row: its ADAM column is AdamW (ALGORITHM.md section 4)
    "sgd": "SGD",
    # the paper's constructions (PAPER_RUNS.md): the authors' AdamSLS with each column's settings
    "paper_sls_adam": "ADAM_SLS",
    "paper_sls_sgd": "SGD_SLS",
    "paper_salsa_adam": "ADAM_SaLSa",
    "salsa": "ADAM_SaLSa",  # paper_salsa_adam with the frequency rule where the paper used it (NLP)
    "paper_salsa_sgd": "SGD_SaLSa",
    # extra columns, reported beside the paper's, never in their place
    "release_salsa": "SaLSA(release)",
    "salsa_adam": "ADAM_SaLSa(ours)",
    "salsa_sgd": "SGD_SaLSa(ours)",
    "sls_adam": "ADAM_SLS(ours)",
    "sls_sgd": "SGD_SLS(ours)",
}

PAPER_COLUMNS = [
    "ADAM(paper)", "ADAM(tuned)", "SGD(paper)", "SGD(tuned)",
    "ADAM_SLS", "SGD_SLS", "ADAM_SaLSa", "SGD_SaLSa",
]
EXTRA_COLUMNS = ["SaLSA(release)", "ADAM_SaLSa(ours)", "SGD_SaLSa(ours)", "ADAM_SLS(ours)", "SGD_SLS(ours)"]
COLUMN_ORDER = PAPER_COLUMNS + EXTRA_COLUMNS

SALSA_COLUMNS = ("ADAM_SaLSa", "SGD_SaLSa", "SaLSA(release)", "ADAM_SaLSa(ours)", "SGD_SaLSa(ours)")
LINE_SEARCH_COLUMNS = ("ADAM_SLS", "SGD_SLS", "ADAM_SaLSa", "SGD_SaLSa", *EXTRA_COLUMNS)

# The paper's CSV columns -> ours: the paper's Adam/SGD used fixed ("paper") learning rates.
PAPER_TO_OURS = {
    "ADAM": "ADAM(paper)", "SGD": "SGD(paper)",
    "ADAM_SLS": "ADAM_SLS", "SGD_SLS": "SGD_SLS",
    "ADAM_SaLSa": "ADAM_SaLSa", "SGD_SaLSa": "SGD_SaLSa",
}

# The paper's task names -> the dataset name a run file carries (compared lowercase, alphanumerics only).
PAPER_TASK_DATASET = {
    "MNLI": "mnli", "QNLI": "qnli", "MRPC": "mrpc", "SST2": "sst2",
    "GPT-2": "openwebtext", "CIFAR10": "cifar10", "CIFAR100": "cifar100", "ImageNet": "imagenet",
}

# The SaLSa variant a tuned baseline is compared with in the tuning-cost table.
SALSA_FOR_BASELINE = {"adam": "ADAM_SaLSa", "adamw": "ADAM_SaLSa", "sgd": "SGD_SaLSa"}


def column_name(optimizer: str, baseline: str) -> str:
    """`adam` + `tuned` -> `ADAM(tuned)`; line searches (baseline `none`) -> `ADAM_SaLSa` etc.

    An optimizer the paper does not have keeps its own name, so new optimizers still show up.
    """
    base = OPTIMIZER_COLUMN.get(optimizer, optimizer)
    return base if baseline in (None, "none") else f"{base}({baseline})"


def ordered_columns(columns) -> list[str]:
    """Known columns in the paper's order, then any others alphabetically."""
    present = set(columns)
    return [c for c in COLUMN_ORDER if c in present] + sorted(present - set(COLUMN_ORDER))


def normalise(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())
