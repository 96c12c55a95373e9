"""A CUDA run killed with SIGKILL and started again ends with the numbers of an uninterrupted one: the checkpoint
carries the CUDA RNG (dropout masks, the augmentation's crops) and the line search's state. An MLP with dropout on
CIFAR-10 files (matrix products and dropout are deterministic on CUDA for fixed shapes; cuDNN's convolution backward
is not, without torch.use_deterministic_algorithms, so a conv net could not be compared bit for bit)."""
import json
import os
import signal
import subprocess
import sys

import torch

from tests.realformat import REPO

TIMING = ("step_time_s", "samples_per_s")
ARGS = ("experiment=paper_cifar10", "model=mlp", "model.dropout=0.3", "optimizer=ours_salsa_adam", "trainer.batch_size=8",
        "trainer.epochs=2", "trainer.checkpoint_every=4", "trainer.log_every=1", "download=false")


def start(root, data_root, device, **env):
    script = REPO / ("tests/faulty_run.py" if "SALSA_TEST_KILL_AT" in env else "run.py")  # faulty_run: the kill hook
    cmd = [sys.executable, str(script), f"paths.root={root}", f"paths.data={data_root}", f"trainer.device={device.type}", *ARGS]
    return subprocess.run(cmd, cwd=REPO, env={**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8", **env},
                          capture_output=True, text=True, timeout=300)


def run_dir(root):
    [only] = list((root / "runs").iterdir())
    return only


def records(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_kill_9_then_resume_on_cuda_gives_the_same_numbers(device, data_root, tmp_path):
    reference = start(tmp_path / "ref", data_root, device)
    assert reference.returncode == 0, reference.stderr
    # SIGKILL after step 10, two steps past the checkpoint at step 8 (the loop's test hook: no clock)
    victim = start(tmp_path / "killed", data_root, device, SALSA_TEST_KILL_AT="step:10")
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    killed = run_dir(tmp_path / "killed")
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["progress"]["step"] == 8
    resumed = start(tmp_path / "killed", data_root, device)
    assert resumed.returncode == 0, resumed.stderr
    ref = run_dir(tmp_path / "ref")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (ref, killed))
    assert b["status"] == "finished" and b["metrics"] == a["metrics"] and b["totals"]["steps"] == a["totals"]["steps"] > 10
    assert (killed / "train_loss.f32").read_bytes() == (ref / "train_loss.f32").read_bytes()
    assert records(killed) == records(ref)
