"""logger=wandb: the offline run it writes, read back with wandb's record format, equals the run directory;
WANDB_MODE wins over logger.mode; an unreachable W&B service does not stop a run."""
import json
import socket
import subprocess
import sys

import yaml
from conftest import REPO

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
