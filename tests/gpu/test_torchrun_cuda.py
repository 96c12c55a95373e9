"""torchrun on CUDA: one rank gives the numbers of a plain run; NCCL itself on one rank (an all-reduce in a process
group of one); two ranks over NCCL where two GPUs are (the global batch's numbers, within float64 rounding). On the
CPU (--device cpu) the same with gloo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.numerics import TRAINING_TOL
from tests.realformat import REPO

TORCHRUN = Path(sys.executable).with_name("torchrun")
ARGS = ("experiment=paper_cifar10", "model=mlp", "optimizer=ours_salsa_adam", "trainer.batch_size=8", "trainer.epochs=1",
        "trainer.precision=fp64", "download=false")


def env() -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**clean, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def launch(prefix: list[str], root: Path, data_root: Path, device: torch.device) -> dict:
    out = subprocess.run([*prefix, "run.py", f"paths.root={root}", f"paths.data={data_root}", f"trainer.device={device.type}", *ARGS],
                         cwd=REPO, env=env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    [summary] = [json.loads(p.read_text()) for p in (root / "runs").glob("*/summary.json")]
    return summary


def test_torchrun_one_rank_gives_a_plain_runs_numbers(device, data_root, tmp_path):
    plain = launch([sys.executable], tmp_path / "plain", data_root, device)
    one = launch([str(TORCHRUN), "--standalone", "--nproc_per_node=1"], tmp_path / "one", data_root, device)
    assert one["status"] == "finished" and one["metrics"] == plain["metrics"]


def test_nccl_all_reduce_on_one_rank(device, tmp_path):
    backend, init = ("nccl", "device_id=torch.device('cuda', 0)") if device.type == "cuda" else ("gloo", "")
    code = (f"import torch, torch.distributed as d; d.init_process_group('{backend}', {init}); "
            f"t = torch.full((4,), 2.0, device='{device.type}'); d.all_reduce(t); "
            "print(t.tolist(), d.get_backend()); d.destroy_process_group()")
    out = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=1", "--no-python", sys.executable,
                          "-c", code], env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"[2.0, 2.0, 2.0, 2.0] {backend}" in out.stdout


def test_two_ranks_over_nccl(device, data_root, tmp_path):
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip(f"two ranks over NCCL need two GPUs; {torch.cuda.device_count()} visible")
    plain = launch([sys.executable], tmp_path / "plain", data_root, device)
    two = launch([str(TORCHRUN), "--standalone", "--nproc_per_node=2"], tmp_path / "two", data_root, device)
    assert two["status"] == "finished" and two["world_size"] == 2 and two["totals"]["steps"] == plain["totals"]["steps"]
    for key in ("final_train_loss", "val_loss_final"):
        assert two["metrics"][key] == pytest.approx(plain["metrics"][key], rel=TRAINING_TOL, abs=0)
