"""logger=wandb: the offline run it writes, read back with wandb's record format, equals the run directory;
WANDB_MODE wins over logger.mode; an unreachable W&B service does not stop a run; a mirror that cannot write all of
the run (its folder full, a file-size limit) is reported in one line and in summary.json, and the run finishes with
its own files whole."""
import json
import resource
import socket
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import REPO, compose_cfg
from test_full_disk_and_sweeps import tmpfs

from salsa.contract.runid import identify
from salsa.contract.verify import damage
from tests.wandb_offline import OfflineApi, subprocess_env


def test_offline_run_read_back_equals_the_run_directory(wandb_offline_runs):
    run_dirs = sorted((wandb_offline_runs / "runs").iterdir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        [run] = OfflineApi(run_dir / "wandb").runs("salsa-test")  # offline although logger.mode=online
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (run.id, run.state) == (summary["run_id"], "finished")
        assert {k: v for k, v in run.config.items() if k != "_wandb"} == yaml.safe_load((run_dir / "config.yaml").read_text())
        mirrored = {"status": summary["status"], **summary["metrics"], **summary["totals"]}
        assert {k: run.summary[k] for k in mirrored} == mirrored
        # one history row per metrics.jsonl record: "step" and "<kind>/<key>" (kind: step, val, test, final)
        expected = []
        for record in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()):
            kind = record["split"] if record["kind"] == "eval" else record["kind"]
            expected.append({"step": record["step"], **{f"{kind}/{k}": v for k, v in record.items()
                                                        if k not in ("kind", "split", "step") and v is not None}})
        assert [{k: v for k, v in row.items() if not k.startswith("_")} for row in run.scan_history()] == expected
        [losses] = run.files(names=["train_loss.f32"])  # every step's loss, byte for byte
        assert losses.name == "train_loss.f32" and losses.path.read_bytes() == (run_dir / "train_loss.f32").read_bytes()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_wandb_falls_back_to_offline_and_the_run_finishes(tmp_path):
    env = subprocess_env(WANDB_MODE="online", WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}", WANDB_API_KEY="x" * 40,
                         WANDB_INIT_TIMEOUT="5", WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"),
                         WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"))
    out = subprocess.run([sys.executable, str(REPO / "run.py"), "logger=wandb", "trainer.epochs=1", f"paths.root={tmp_path}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    [offline] = (run_dir / "wandb").glob("offline-run-*")
    assert "W&B is unreachable" in out.stderr and f"wandb sync {offline}" in out.stderr, out.stderr
    [run] = OfflineApi(run_dir / "wandb").runs("salsa-test")
    assert run.state == "finished" and len(list(run.scan_history())) == len((run_dir / "metrics.jsonl").read_text().splitlines())


# 60 steps with a record each: the mirror's log (about 55 KB) outgrows what the run's own files need (18 KB at most)
SMALL = ["trainer.epochs=3", "trainer.device=cpu", "trainer.log_every=1", "model.width=8", "model.depth=1"]
TIMING = ("step_time_s", "samples_per_s")


def run_py(root, *args, limit=None, **env):
    def child():  # the file-size limit of this command alone (Python ignores SIGXFSZ: a write past it fails, EFBIG)
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return subprocess.run([sys.executable, str(REPO / "run.py"), f"paths.root={root}", *args], cwd=REPO,
                          env=subprocess_env(**env), capture_output=True, text=True, timeout=180, preexec_fn=child)


@pytest.fixture(scope="module")
def unmirrored(tmp_path_factory):
    """The same run without a mirror (logger is not part of the run id): the files a complete run has."""
    root = tmp_path_factory.mktemp("local")
    assert run_py(root, *SMALL).returncode == 0
    [run_dir] = (root / "runs").iterdir()
    return run_dir


def full_wandb_folder(root):
    """The run's wandb/ folder is a 64 KiB tmpfs: the mirror's log fills it (needs root, as in the CI container)."""
    wandb_dir = identify(compose_cfg(f"paths.root={root}", "logger=wandb", *SMALL)).path / "wandb"
    tmpfs(wandb_dir, "64k")
    return wandb_dir


@pytest.mark.parametrize("fault", ["full folder", "file-size limit"])
def test_a_mirror_that_cannot_write_is_reported_and_the_run_finishes_whole(fault, unmirrored, tmp_path):
    wandb_dir = full_wandb_folder(tmp_path) if fault == "full folder" else None
    try:
        out = run_py(tmp_path, "logger=wandb", *SMALL, limit=32768 if wandb_dir is None else None, WANDB_MODE="offline",
                     WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"), WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"))
    finally:
        if wandb_dir is not None:
            subprocess.run(["umount", str(wandb_dir)], check=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    [line] = [line for line in out.stderr.splitlines() if "W&B mirror" in line]
    [run_dir] = (tmp_path / "runs").iterdir()
    cause = "the disk holding" if wandb_dir is not None else "the file-size limit (ulimit -f) is 32768 bytes"
    assert line.startswith(f"warning: the W&B mirror could not write {run_dir}/wandb/offline-run-") and cause in line
    assert f"The run directory {run_dir} is complete and remains the source of truth" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and not damage(run_dir, summary)
    assert summary["mirror"]["wandb"].startswith(f"incomplete: run-{summary['run_id']}.wandb ") and cause in summary["mirror"]["wandb"]
    # the run's own files: those of the run without a mirror, bit for bit (timings aside)
    assert [{k: v for k, v in json.loads(r).items() if k not in TIMING} for r in (run_dir / "metrics.jsonl").read_text().splitlines()] == \
        [{k: v for k, v in json.loads(r).items() if k not in TIMING} for r in (unmirrored / "metrics.jsonl").read_text().splitlines()]
    assert (run_dir / "train_loss.f32").read_bytes() == (unmirrored / "train_loss.f32").read_bytes()
    got, want = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (run_dir, unmirrored))
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_whole_mirror_adds_nothing_to_the_summary(wandb_offline_runs):
    for run_dir in (wandb_offline_runs / "runs").iterdir():
        assert "mirror" not in json.loads((run_dir / "summary.json").read_text())
