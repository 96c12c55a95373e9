"""A run killed with SIGKILL and started again ends bit-identical to an uninterrupted run (CPU)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import REPO, script_for

TIMING = ("step_time_s", "samples_per_s")
CASES = {  # dropout exercises the restored RNG, BatchNorm the restored buffers; both with SaLSa's full state
    "mlp-dropout": ["model=mlp", "model.dropout=0.3", "trainer.epochs=8", "trainer.log_every=5"],
    "cnn-batchnorm": ["model=cnn", "model.width=8", "trainer.epochs=3", "trainer.log_every=5"],
}


def start(root, args, **env):
    cmd = [sys.executable, str(script_for(env)), "dataset=mnist5k", "optimizer=ours_salsa_adam", "trainer.checkpoint_every=20",
           "trainer.device=cpu", f"paths.root={root}", *args]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def records(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def only_run_dir(root):
    [run_dir] = list((root / "runs").iterdir())
    return run_dir


@pytest.mark.parametrize("case", CASES)
def test_kill_9_then_resume_is_bit_identical(tmp_path, case):
    reference = start(tmp_path / "ref", CASES[case])
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    # SIGKILL after step 50, 10 steps past the mid-epoch checkpoint at step 40 (the loop's test hook: no clock)
    victim = start(tmp_path / "killed", CASES[case], SALSA_TEST_KILL_AT="step:50")
    assert victim.wait(timeout=300) == -signal.SIGKILL
    run_dir = only_run_dir(tmp_path / "killed")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    killed_at = torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]["step"]

    resumed = start(tmp_path / "killed", CASES[case])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    ref_dir = only_run_dir(tmp_path / "ref")
    assert ref_dir.name == run_dir.name
    ref, got = (json.loads((d / "summary.json").read_text()) for d in (ref_dir, run_dir))
    assert got["status"] == "finished" and got["metrics"] == ref["metrics"]
    # the per-step training losses (the paper's metric): cut back to the checkpoint and continued, one per step
    losses = (run_dir / "train_loss.f32").read_bytes()
    assert losses == (ref_dir / "train_loss.f32").read_bytes() and len(losses) == 4 * got["totals"]["steps"]
    assert killed_at == 40
    assert {k: v for k, v in got["totals"].items() if k not in ("wall_time_s", "peak_memory_bytes")} == \
           {k: v for k, v in ref["totals"].items() if k not in ("wall_time_s", "peak_memory_bytes")}
    assert records(run_dir) == records(ref_dir)
    ref_state, got_state = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (ref_dir, run_dir))
    assert all(torch.equal(ref_state["model"][k], got_state["model"][k]) for k in ref_state["model"])
