"""A disk that is full before the run starts, a sweep one of whose runs fills the disk, and two identical sweeps at
once: each ends in its own lines, no traceback (run.py in subprocesses as a user runs it; the full disk is a small
tmpfs, which needs root, as in the CI container: without it those cases skip and say why)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_py

from tests.wandb_offline import subprocess_env

ONE_EPOCH = ["trainer.epochs=1", "trainer.device=cpu"]
RECORDS = [("step", 10), ("step", 20), ("eval", 20), ("eval", 20), ("final", 20)]  # one epoch of 20 steps, finished


def tmpfs(path, size: str) -> None:
    """A tmpfs of `size` mounted at path (made if missing); needs root, as in the CI container, else the test skips."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"mount -t tmpfs failed ({out.stderr.strip()}): the case needs root, as in the CI container")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs at tmp_path/root: room for a small model's run, not for the default model's checkpoint."""
    root = tmp_path / "root"
    tmpfs(root, "256k")
    yield root
    subprocess.run(["umount", str(root)], check=True)


def fill(root):
    (root / "filler").write_bytes(bytes(os.statvfs(root).f_bavail * os.statvfs(root).f_frsize))


def records(run_dir):
    return [(r["kind"], r["step"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


def test_a_disk_full_before_the_run_starts_is_one_line(small_disk, tmp_path):
    fill(small_disk)
    at_root = run_py(f"paths.root={small_disk}", *ONE_EPOCH)  # Hydra's folder under paths.root: its check says so
    assert at_root.returncode == 1 and "Traceback" not in at_root.stderr, at_root.stderr
    assert at_root.stderr.splitlines() == [f"error: the disk is full: cannot write {small_disk} (ENOSPC: No space left on "
                                           "device); free space (or choose paths.root on another disk), then run the same "
                                           "command again"]
    sweep = run_py(f"paths.root={small_disk}", *ONE_EPOCH, "seed=0,1", "--multirun")  # the sweep's folder too
    assert sweep.returncode == 1 and sweep.stderr.splitlines() == at_root.stderr.splitlines(), sweep.stderr
    hydra_elsewhere = run_py(f"paths.root={small_disk}", *ONE_EPOCH, f"hydra.run.dir={tmp_path / 'hydra'}")
    assert hydra_elsewhere.returncode == 1 and "Traceback" not in hydra_elsewhere.stderr, hydra_elsewhere.stderr
    [line] = hydra_elsewhere.stderr.splitlines()
    assert line.startswith(f"error: the disk is full: cannot write {small_disk}/runs/") and "(ENOSPC" in line
    assert not list(small_disk.rglob("*.tmp")) and not list(small_disk.rglob(".write_probe*"))


def test_a_sweep_goes_on_past_a_run_that_fills_the_disk(small_disk):
    """The default model's checkpoint (1 MB) does not fit, the small model's run does: the sweep runs both, says
    which failed and why, and ends with one closing line."""
    out = run_py(f"paths.root={small_disk}", *ONE_EPOCH, "model.width=256,8", "--multirun", timeout=240)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 2 and "the disk is full: cannot write" in errors[0] and "checkpoint.pt (ENOSPC" in errors[0]
    assert errors[1].startswith("error: runs of the sweep failed")
    statuses = {json.loads((d / "summary.json").read_text())["status"] for d in (small_disk / "runs").iterdir()}
    assert statuses == {"finished", "interrupted"}


def test_two_identical_sweeps_at_once_run_each_run_once(tmp_path):
    """The first sweep stops itself in its first run (SIGSTOP through the loop's hook); the second, started then,
    waits for that run with one line, and once the first goes on both end with exit 0: every run finished once."""
    args = [f"paths.root={tmp_path}", *ONE_EPOCH, "seed=0,1", "--multirun"]
    first = subprocess.Popen([sys.executable, str(REPO / "tests/faulty_run.py"), *args], cwd=REPO,
                             env=subprocess_env(SALSA_TEST_KILL_AT="step:5:SIGSTOP"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    second, log = None, tmp_path / "second.err"
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        with open(log, "w") as err:
            second = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args], cwd=REPO, env=subprocess_env(),
                                      stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + 120
        while "waiting for it to finish" not in log.read_text() and time.monotonic() < deadline:
            assert second.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=240)
    second_out, _ = second.communicate(timeout=240)
    second_err = log.read_text()
    assert first.returncode == 0 and "Traceback" not in first_err, first_err
    assert second.returncode == 0 and "Traceback" not in second_err, second_err
    [waited, *_] = [line for line in second_err.splitlines() if line.startswith("warning")]
    assert waited.startswith(f"warning: run directory {tmp_path}/runs/") and f"is in use by pid {first.pid}" in waited
    assert not [line for line in first_err.splitlines() + second_err.splitlines() if line.startswith("error")]
    assert "seed 0: finished earlier (same config and seed: nothing to do)" in second_out
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
        assert records(run_dir) == RECORDS and not list(run_dir.glob("*.corrupt.*"))
