"""`make reproduce-cpu LAUNCHER=slurm` on a real single-node SLURM cluster (tests/experiments/slurm_cluster.py) with
a small grid (slurm_grid.yaml): while the main stage's array runs, one task is cancelled and one requeued. The sweep
waits for the siblings, reports the cancelled run with SLURM's state, and ends; every other run finishes with the
metrics the local launcher gives; the next invocation launches only the cancelled run, the one after it nothing.
Opt-in (minutes, root, Debian's slurm-wlm slurmdbd munge mariadb-server): SALSA_SLOW_SLURM=1."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.experiments.slurm_cluster import cluster, missing_tools

REPO = Path(__file__).resolve().parents[2]
GRID = Path(__file__).with_name("slurm_grid.yaml")
pytestmark = pytest.mark.skipif(os.environ.get("SALSA_SLOW_SLURM") != "1",
                                reason="opt-in: SALSA_SLOW_SLURM=1 starts a SLURM cluster and runs a sweep on it (minutes)")


def reproduce(root: Path, env: dict, *, launcher: str | None = None) -> subprocess.Popen:
    """`make reproduce-cpu` on the test grid (-o install: the environment is the one running this test)."""
    args = ["make", "--no-print-directory", "-o", "install", "reproduce-cpu", f"GRID={GRID}",
            f"ARGS=--root {root / 'outputs'} --out {root / 'results'} --no-analysis"]
    log = open(root.with_suffix(".log"), "w")             # this invocation's output
    return subprocess.Popen(args + ([f"LAUNCHER={launcher}"] if launcher else []), cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def multirun(root: Path, env: dict, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", "--multirun", "hydra/launcher=slurm", f"paths.root={root}", "seed=0",
                           *overrides], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def finish(process: subprocess.Popen, root: Path, timeout_s: float = 900) -> tuple[int, str]:
    try:
        status = process.wait(timeout=timeout_s)        # a hang is a failure, never a stuck test
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the sweep did not end within {timeout_s:.0f} s:\n{root.with_suffix('.log').read_text()[-3000:]}")
    return status, root.with_suffix(".log").read_text()


def summaries(root: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (root / "outputs" / "runs").glob("*/summary.json")}


def tasks(env: dict) -> dict:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], env=env, capture_output=True, text=True).stdout
    return dict(line.split("|") for line in out.split())


def test_reproduce_cpu_on_slurm_survives_cancel_and_requeue(tmp_path):
    if os.geteuid() != 0 or missing_tools():
        pytest.skip(f"needs root and {', '.join(missing_tools()) or 'root'} (apt-get install slurm-wlm slurmdbd munge mariadb-server)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    status, text = finish(reproduce(local, env), local)
    assert status == 0, text[-3000:]
    expected = summaries(local)
    assert len(expected) == 7 and all(s["status"] == "finished" for s in expected.values())

    with cluster(tmp_path / "cluster") as env:
        env = {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        sweep = reproduce(slurm, env, launcher="slurm")
        deadline = time.monotonic() + 300
        while sorted(state for state in tasks(env).values()).count("RUNNING") < 2:    # 2 cores: 2 run, 2 pend
            assert sweep.poll() is None and time.monotonic() < deadline, slurm.with_suffix(".log").read_text()[-3000:]
            time.sleep(1)
        cancelled, requeued = sorted(task for task, state in tasks(env).items() if state == "RUNNING")[:2]
        subprocess.run(["scancel", cancelled], env=env, check=True)
        subprocess.run(["scontrol", "requeue", requeued], env=env, check=True)
        status, text = finish(sweep, slurm)
        assert status == 2 and "reproduce-cpu] Error 1" in text, text[-3000:]    # reproduce: 1, the cancelled run failed ...
        report = (slurm / "results" / "reproduce_report.md").read_text()
        [line] = [line for line in report.splitlines() if "FAILED" in line]
        assert f"SLURM job {cancelled} ended as CANCELLED" in line, report
        # ... alone: its siblings (the requeued one included) and the later stages finished
        runs = summaries(slurm)
        assert sum(s["status"] == "finished" for s in runs.values()) == 6 and set(runs) <= set(expected)
        # the report's command reruns it alone, into the same root, as printed
        rerun = report.split("rerun alone: ", 1)[1].splitlines()[0]
        assert f"paths.root={slurm / 'outputs'}" in rerun and rerun.startswith("python run.py ")
        # again: only the cancelled run is launched (one array), then nothing at all
        status, text = finish(reproduce(slurm, env, launcher="slurm"), slurm)
        assert status == 0 and text.count("\n== ") == 1, text[-3000:]
        status, text = finish(reproduce(slurm, env, launcher="slurm"), slurm)
        assert status == 0 and text.count("\n== ") == 0 and "already finished: 7" in text, text[-3000:]
        # the GPU defaults on this CPU partition: sbatch refuses (one error, no traceback) ...
        out = multirun(tmp_path / "gpu", env)
        assert out.returncode == 1 and "sbatch refused the job array" in out.stderr and "Traceback" not in out.stderr, out.stderr
        # ... and with gpus_per_node=0 alone the job (10 CPUs) can never start: cancelled, with SLURM's reason
        out = multirun(tmp_path / "cpus", env, "hydra.launcher.gpus_per_node=0")
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        [failure] = [json.loads(p.read_text()) for p in (tmp_path / "cpus").rglob("failure.json")]
        assert "PartitionConfig" in failure["error"] and "hydra/launcher=slurm_cpu" in failure["error"], failure
    runs = summaries(slurm)
    assert runs.keys() == expected.keys()
    for run_id, summary in runs.items():                # CPU: bitwise the same numbers as the local launcher
        assert summary["metrics"] == expected[run_id]["metrics"], run_id
        assert summary["totals"]["steps"] == expected[run_id]["totals"]["steps"]
        assert summary["env"]["argv"][0].endswith("run.py") and "--multirun" in summary["env"]["argv"]
