"""A kill -9 at each phase of the loop, then the same command: metrics.jsonl equals the uninterrupted run's line
for line (timings aside), and so do the summary's metrics and the final weights. The kill comes from the loop's
phase hook, handed in by tests/faulty_run.py (SALSA_TEST_KILL_AT=<phase>:<n>), so each point is hit exactly."""
import json

import pytest
import torch
from conftest import run_py

# 3 epochs of 20 steps; checkpoints at steps 10, 20 (after the epoch's evaluation), 30, ..., 60; dropout draws RNG
ARGS = ["trainer.epochs=3", "trainer.checkpoint_every=10", "trainer.log_every=5", "model.dropout=0.2",
        "trainer.device=cpu"]
TIMING = ("step_time_s", "samples_per_s")
KILL_POINTS = {
    "step:1": "before the first checkpoint: starts again from step 0",
    "step:15": "mid-epoch, between two checkpoints",
    "save:1": "right after a mid-epoch checkpoint",
    "eval:1": "right after the first epoch-end evaluation was logged, before its checkpoint",
    "save:2": "right after the checkpoint that follows an epoch-end evaluation",
    "eval:3": "right after the last evaluation, before the final checkpoint",
    "final:1": "during the final pass: after the final record, before the finished summary",
}


def untimed(totals):
    return {k: v for k, v in totals.items() if k not in ("wall_time_s", "peak_memory_bytes")}


def lines(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    out = run_py(f"paths.root={root}", *ARGS)
    assert out.returncode == 0, out.stderr
    [run_dir] = (root / "runs").iterdir()
    return run_dir


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_at_each_phase_resumes_to_the_same_files(point, reference, tmp_path):
    killed = run_py(f"paths.root={tmp_path}", *ARGS, env={"SALSA_TEST_KILL_AT": point})
    assert killed.returncode == -9, killed.stderr
    run_dir = tmp_path / "runs" / reference.name
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    resumed = run_py(f"paths.root={tmp_path}", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert lines(run_dir) == lines(reference)
    got, ref = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    assert got["status"] == "finished" and got["metrics"] == ref["metrics"]
    assert untimed(got["totals"]) == untimed(ref["totals"])
    got_w, ref_w = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (run_dir, reference))
    assert all(torch.equal(got_w[k], ref_w[k]) for k in ref_w)
