"""download_project against objects shaped like the W&B public API's runs, filled the way the harness's
W&B mirror (salsa/train/loggers.py) fills them."""
import json

import pytest

from analysis.collect import collect_curves, collect_runs
from analysis.errors import AnalysisError
from analysis.wandb_source import TOTALS, download_project

from .runtree import write_run


class MirroredRun:
    """What WandbMirror leaves in W&B for one run directory."""

    def __init__(self, run_dir):
        summary = json.loads((run_dir / "summary.json").read_text())
        self.id, self.state = summary["run_id"], "finished"
        self.config = {"task": summary["task"], "seed": summary["seed"], "trainer": {"epochs": summary["epochs"]},
                       "dataset": {"name": summary["dataset"]}, "model": {"name": summary["model"]},
                       "optimizer": {"name": summary["optimizer"], "baseline": summary["baseline"], "lr": summary["lr"]}}
        self.summary = {"status": summary["status"], **summary["metrics"], **summary["totals"], "_runtime": 3.0}
        self.records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    def scan_history(self):
        for record in self.records:
            kind = record["kind"] if record["kind"] != "eval" else record["split"]
            yield {"step": record["step"], **{f"{kind}/{k}": v for k, v in record.items()
                                              if k not in ("kind", "split", "step") and v is not None}}


class Api:
    def __init__(self, runs):
        self._runs = runs

    def runs(self, project):
        assert project == "team/salsa"
        return self._runs


def test_runs_rebuilt_from_wandb_read_like_the_local_ones(tmp_path):
    run_dirs = [write_run(tmp_path / "local", "digits-mlp", "sgd", "tuned", 0.1, s, 0.1 * (s + 1)) for s in (0, 1)]
    cache = download_project("team/salsa", tmp_path / "cache", api=Api([MirroredRun(d) for d in run_dirs]))
    local, remote = collect_runs([tmp_path / "local"]), collect_runs([cache])
    same = ["run_id", "task", "column", "seed", "lr", "status", "final_train_loss", "val_acc_peak", *TOTALS]
    assert remote[same].equals(local[same])
    local_curves, remote_curves = collect_curves(local), collect_curves(remote)
    for kind in ("step", "eval", "final"):
        assert (remote_curves["kind"] == kind).sum() == (local_curves["kind"] == kind).sum()
    steps = remote_curves[remote_curves["kind"] == "step"]
    assert steps["loss"].tolist() == local_curves[local_curves["kind"] == "step"]["loss"].tolist()


def test_an_empty_project_is_an_error(tmp_path):
    with pytest.raises(AnalysisError, match="has no runs"):
        download_project("team/salsa", tmp_path / "cache", api=Api([]))
