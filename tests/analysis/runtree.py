"""Writes run directories in the format of docs/run-directory.md, with known final losses, for the tests."""
import json
import math
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from salsa.contract.runid import config_hash

PLANNED = 3
SEEDS = (0, 1, 2)

# final_train_loss per seed; the expected numbers in the tests are worked out by hand from these.
DIGITS = {  # task digits-mlp: complete
    ("torch_adam", "paper", 1e-3): (0.02, 0.04, 0.06),      # mean 0.04
    ("torch_sgd", "paper", 0.1): (0.1, 0.2, 0.3),            # mean 0.2
    ("torch_adam", "tuned", 1e-3): (0.01, 0.025, 0.025),     # mean 0.02 (the lr that wins on validation)
    ("paper_sls_adam", "none", None): (0.04, 0.04, 0.04),    # mean 0.04: ties with adam(paper)
    ("paper_salsa_adam", "none", None): (0.005, 0.01, 0.015),  # mean 0.01
    ("paper_salsa_sgd", "none", None): (0.05, 0.1, 0.15),    # mean 0.1
}
CIFAR = {  # task cifar10-cnn: ours_salsa_sgd has 2 finished seeds (seed 2 failed)
    ("torch_adam", "paper", 1e-3): (0.1, 0.2, 0.3),          # mean 0.2
    ("torch_sgd", "paper", 0.1): (0.4, 0.8, 1.2),            # mean 0.8
    ("torch_adam", "tuned", 1e-3): (0.05, 0.1, 0.15),        # mean 0.1
    ("paper_sls_adam", "none", None): (0.2, 0.4, 0.6),       # mean 0.4
    ("paper_salsa_adam", "none", None): (0.025, 0.05, 0.075),  # mean 0.05
    ("paper_salsa_sgd", "none", None): (0.3, 0.5),           # mean 0.4, flagged 2/3
}
# The tuning grids on seed 0: (lr, val_loss_final, test_loss_final). Test loss would pick another lr.
DIGITS_GRID = [(1e-4, 0.5, 0.1), (1e-3, 0.3, 0.6), (1e-2, 0.4, 0.05)]
CIFAR_GRID = [(1e-4, 0.9, 0.9), (1e-3, 0.7, 0.7)]
WALL = {"paper_salsa_adam": 12.0, "paper_salsa_sgd": 12.0}  # every other run: 10 s
STEPS = 100


def totals(optimizer: str, searches: int = None) -> dict:
    """A run's totals; `searches` line searches (default by optimizer) of 1.5 trial forwards each."""
    if searches is None:
        searches = {"paper_sls_adam": STEPS, "paper_sls_sgd": STEPS, "paper_salsa_adam": 20, "paper_salsa_sgd": 20}.get(optimizer, 0)
    return {"steps": STEPS, "wall_time_s": WALL.get(optimizer, 10.0), "forwards": STEPS + 1.5 * searches,
            "backwards": STEPS, "line_searches": searches, "peak_memory_bytes": None}


def curve(final: float, optimizer: str) -> list[dict]:
    lines = []
    for step in range(10, STEPS + 1, 10):
        lines.append({"kind": "step", "step": step, "epoch": step / 20, "loss": final * (1 + 20 * math.exp(-step / 25)),
                      "step_size": 0.1 * (1 + step / 100), "line_search": optimizer.startswith("sls") or step % 20 == 0,
                      "backtracks": 1, "forwards": 2, "backwards": 1, "step_time_s": 0.01, "samples_per_s": 1e4})
        if step % 20 == 0:
            lines.append({"kind": "eval", "step": step, "epoch": step // 20, "split": "val",
                          "loss": 2 * final, "acc": 0.9 - final / 2 + step / 2000})
    return lines + [{"kind": "final", "step": STEPS, "final_train_loss": final}]


def write_run(root: Path, task: str, optimizer: str, lr_choice: str, lr, seed: int, final: float,
              val_loss: float = None, test_loss: float = None, status: str = "finished", searches: int = None,
              acc_peak: float = None, logged: bool = False) -> Path:
    """One run directory; `logged` also writes train_loss.f32, every step's loss equal to `final` (in float32)."""
    dataset, model = task.split("-")
    config = OmegaConf.create({"task": task, "seed": seed, "optimizer": {"name": optimizer, "lr_choice": lr_choice, "lr": lr}})
    digest = config_hash(config)  # named by its config's hash, as run.py names it
    run_dir = root / digest[:12]
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
    summary = {
        "schema": 1, "status": status, "run_id": digest[:12], "config_hash": digest, "task": task,
        "dataset": dataset, "model": model, "optimizer": optimizer, "lr_choice": lr_choice, "lr": lr, "seed": seed,
        "epochs": 5,
        "metrics": {"final_train_loss": final if status == "finished" else None, "train_loss_running_mean": 3 * final,
                    "val_loss_final": val_loss if val_loss is not None else 2 * final,
                    "val_acc_final": 0.9 - final / 2, "val_loss_best": 1.5 * final,
                    "val_acc_peak": 0.91 - final / 2 if acc_peak is None else acc_peak,
                    "test_loss_final": test_loss, "test_acc_final": None},
        "totals": totals(optimizer, searches), "env": {"git_commit": "abc", "git_dirty": False, "versions": {}, "hardware": "cpu"},
        "error": "diverged: loss is NaN" if status == "failed" else None,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if logged:
        np.full(STEPS, final, dtype="<f4").tofile(run_dir / "train_loss.f32")
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in curve(final, optimizer)))
    return run_dir


def write_tree(root: Path) -> Path:
    for task, cells, grid in (("digits-mlp", DIGITS, DIGITS_GRID), ("cifar10-cnn", CIFAR, CIFAR_GRID)):
        for (optimizer, lr_choice, lr), finals in cells.items():
            for seed, final in zip(SEEDS, finals):
                if (lr_choice, seed) != ("tuned", 0):  # seed 0 of the tuned cell is the grid's run
                    write_run(root, task, optimizer, lr_choice, lr, seed, final)
        for lr, val_loss, test_loss in grid:
            final = cells[("torch_adam", "tuned", 1e-3)][0] if lr == 1e-3 else 0.5
            write_run(root, task, "torch_adam", "tuned", lr, 0, final, val_loss, test_loss)
    write_run(root, "cifar10-cnn", "paper_salsa_sgd", "none", None, 2, 0.2, status="failed")
    # a third task without SGD runs: left out of the log average and the average rank
    for seed in SEEDS:
        write_run(root, "tiny-cnn", "torch_adam", "paper", 1e-3, seed, 1.0)
        write_run(root, "tiny-cnn", "paper_salsa_adam", "none", None, seed, 0.5)
    write_run(root, "tiny-cnn", "paper_salsa_sgd", "none", None, 0, 0.7, status="running")
    return root
