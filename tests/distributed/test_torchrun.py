"""`torchrun --nproc_per_node=2 run.py` on the CPU (2 gloo processes, real subprocesses): the numbers of a single
process with the same global batch, files written by rank 0 only, the finished-run skip on every rank, clear errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.numerics import TRAINING_TOL as TOL

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
# dropout-free, BatchNorm-free; digits has 1,257 training examples: the last batch of 41 is split 20/21
COMMON = ("dataset=digits", "model=mlp", "model.dropout=0.0", "trainer.device=cpu", "trainer.epochs=2",
          "trainer.batch_size=64", "trainer.eval_batch_size=256", "trainer.log_every=5")
TIMING = ("step_time_s", "samples_per_s")
RUN_FILES = {"config.yaml", "metrics.jsonl", "summary.json", "checkpoint.pt", ".lock",  # .lock: the owner's flock
             "train_loss.f32"}  # every step's training-mode loss


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}


def single(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", f"paths.root={root}", *COMMON, *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)


def torchrun(root: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "run.py", f"paths.root={root}", *COMMON,
                           *args], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180)


def kill_mid_run(root: Path, *args: str) -> int:
    """A torchrun job whose workers SIGKILL themselves after step 12, two steps past the mid-epoch checkpoint at
    step 10 (the loop's test hook, on every rank at the same step: no clock); returns the checkpoint's step."""
    job = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", "tests/faulty_run.py", f"paths.root={root}", *COMMON,
                          *args], cwd=REPO, env={**_env(), "SALSA_TEST_KILL_AT": "step:12"}, capture_output=True, text=True, timeout=180)
    assert job.returncode != 0, job.stdout
    return torch.load(run_dir(root) / "checkpoint.pt", weights_only=True)["progress"]["step"]


def run_dir(root: Path) -> Path:
    [only] = list((root / "runs").iterdir())
    return only


def records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in (path / "metrics.jsonl").read_text().splitlines()]


def counts(summary: dict) -> dict:
    """The summary's totals that are counts (not measurements)."""
    return {k: v for k, v in summary["totals"].items() if k not in ("wall_time_s", "peak_memory_bytes")}


def files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def ours_in_traceback(stderr: str) -> bool:
    """Whether a worker printed a traceback through the project's code (torchrun prints its own, that's fine)."""
    return f'{REPO / "run.py"}", line' in stderr or f'{REPO / "salsa"}' in stderr


# Why not bitwise: one process reduces the global batch of 64 in one sum, two ranks reduce 32 each and all-reduce
# the two halves, and a batch of 32 may take other BLAS kernels (another summation order along the 256-wide
# layers). tests/numerics.py derives TOL for such float64 runs. Measured here: losses within 1e-15, weights within
# 1.4e-13 of the tensor's largest; weighting the last batch's 20/21 split as equal halves (a bug) moves the final
# train loss by 1.8e-3 relative and a weight by 5% of its layer's largest.
FP64 = ("trainer.precision=fp64",)


def assert_agree(got: dict, want: dict) -> None:
    """The same keys; losses within TOL, all else (counts, accuracies) equal. An accuracy counts argmaxes: a
    sample flips only if its two top logits lie within the rounding above (1e-13), which none of the 540 here do."""
    assert got.keys() == want.keys()
    for k, v in want.items():
        if isinstance(v, float) and "loss" in k:
            assert got[k] == pytest.approx(v, rel=TOL, abs=0), (k, got, want)
        else:
            assert got[k] == v, (k, got, want)


@pytest.mark.parametrize("optimizer", ["ours_salsa_adam", "torch_adam"])
def test_two_gloo_ranks_match_one_process_and_only_rank0_writes(tmp_path, optimizer):
    # ours_salsa_adam also checkpoints mid-epoch (every 5 steps) for the kill-and-resume part below
    every = ("trainer.checkpoint_every=5", "trainer.log_every=1") if optimizer == "ours_salsa_adam" else ()
    args = (f"optimizer={optimizer}", *FP64, *every)
    one = single(tmp_path / "one", *args)
    assert one.returncode == 0, one.stderr
    two = torchrun(tmp_path / "two", *args)
    assert two.returncode == 0, two.stderr + two.stdout
    assert two.stdout.count("run directory:") == 1  # rank 0 prints

    ref_dir, got_dir = run_dir(tmp_path / "one"), run_dir(tmp_path / "two")
    assert got_dir.name == ref_dir.name  # the world size is not part of the run id
    ref, got = (json.loads((d / "summary.json").read_text()) for d in (ref_dir, got_dir))
    assert (ref["world_size"], got["world_size"], got["status"]) == (1, 2, "finished")
    assert_agree(got["metrics"], ref["metrics"])
    assert counts(got) == counts(ref) and counts(got)["steps"] == 40
    if optimizer == "ours_salsa_adam":
        assert got["totals"]["line_searches"] > 0
    # the per-step losses (rank averages), the evaluations over the full splits and the final train loss
    got_records, ref_records = records(got_dir), records(ref_dir)
    assert len(got_records) == len(ref_records)
    for a, b in zip(got_records, ref_records):
        assert_agree(a, b)
    ref_state, got_state = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (ref_dir, got_dir))
    assert ref_state["model"].keys() == got_state["model"].keys()  # the bare module, not DDP's "module." names
    for k, want in ref_state["model"].items():  # within TOL of the tensor's largest weight (see above)
        assert want.dtype == torch.float64 and got_state["model"][k].shape == want.shape, k
        assert (got_state["model"][k] - want).abs().max() <= TOL * want.abs().max(), k
    assert len(got_state["rng_ranks"]) == 2 and "rng_ranks" not in ref_state

    # rank 0 wrote every file: one run directory with exactly its files, one Hydra output directory,
    # no duplicated lines in metrics.jsonl (checked above against the single process's records)
    written = files(tmp_path / "two")
    assert {Path(p).name for p in written if p.startswith("runs/")} == RUN_FILES
    assert len({Path(p).parts[1] for p in written if p.startswith("hydra/")}) == 1

    if optimizer == "ours_salsa_adam":  # a finished run is skipped on every rank, without touching a file
        again = torchrun(tmp_path / "two", *args)
        assert again.returncode == 0 and again.stdout.count("nothing to do") == 1, again.stderr
        assert {p: t for p, t in files(tmp_path / "two").items() if p.startswith("runs/")} == \
               {p: t for p, t in written.items() if p.startswith("runs/")}

        # killed with SIGKILL past a mid-epoch checkpoint, started again: bit-identical to the uninterrupted job
        killed_at = kill_mid_run(tmp_path / "killed", *args)
        # "running" (both workers killed) or "interrupted" (torchrun's SIGTERM reached rank 0 first): resumable either way
        status = json.loads((run_dir(tmp_path / "killed") / "summary.json").read_text())["status"]
        assert killed_at == 10 and status in ("running", "interrupted"), status
        resumed = torchrun(tmp_path / "killed", *args)
        assert resumed.returncode == 0, resumed.stderr
        killed = run_dir(tmp_path / "killed")
        assert records(killed) == records(got_dir) and json.loads((killed / "summary.json").read_text())["metrics"] == got["metrics"]
        assert torch.load(killed / "checkpoint.pt", weights_only=True)["model"]["1.weight"].equal(got_state["model"]["1.weight"])


def test_clear_errors_under_torchrun(tmp_path):
    odd = torchrun(tmp_path, "trainer.batch_size=63", "trainer.device=cuda")
    assert odd.returncode != 0
    # the device is checked first: this machine has no visible GPU
    assert "trainer.device=cuda but no CUDA device is visible" in odd.stderr and "gloo" in odd.stderr, odd.stderr
    assert not ours_in_traceback(odd.stderr)
    odd = torchrun(tmp_path, "trainer.batch_size=63")
    assert odd.returncode != 0 and "trainer.batch_size=63 is the global batch" in odd.stderr, odd.stderr
    assert "choose a multiple of 2" in odd.stderr and "error (rank 1)" in odd.stderr and not ours_in_traceback(odd.stderr)
    assert not (tmp_path / "runs").exists()
