"""The image, built and run: `podman build` (or docker) of the Dockerfile, then, as the image's non-root default user
with a read-only root filesystem and no network, the default run, trainer.compile=true (inductor compiles C++),
Rotten Tomatoes from the image's data, a short reproduce sweep (no git in the image), torchrun with 2 ranks and
the test suite's image tests (tests/distributed). The image is removed afterwards.
Opt-in (minutes, ~7.5 GB of disk, a package index for pip): SALSA_SLOW_IMAGE=1. Where no registry can be reached,
the python:3.11-slim-bookworm base is made by tests/distributed/standin_base.sh (root, debootstrap)."""
import json
import os
import resource
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/python:3.11-slim-bookworm"
pytestmark = pytest.mark.skipif(os.environ.get("SALSA_SLOW_IMAGE") != "1",
                                reason="opt-in: SALSA_SLOW_IMAGE=1 builds the image (minutes, ~7.5 GB) and runs it")


def sh(args: list[str], timeout_s: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, **kwargs)


@pytest.fixture(scope="module")
def image():
    engines = [path for path in map(shutil.which, ("docker", "podman")) if path]
    engine = next((path for path in engines if sh([path, "info"], timeout_s=120).returncode == 0), None)
    if not engine:
        pytest.skip("no working docker or podman (a docker client without its daemon does not count)")
    made_base = False
    if sh([engine, "image", "inspect", BASE]).returncode != 0 and sh([engine, "pull", BASE], timeout_s=600).returncode != 0:
        if os.geteuid() != 0 or not shutil.which("debootstrap"):
            pytest.skip(f"cannot pull {BASE}, and the stand-in needs root and debootstrap")
        made = sh(["sh", str(Path(__file__).with_name("standin_base.sh")), engine, BASE])
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
        made_base = True
    tag = f"localhost/salsa-test:{uuid.uuid4().hex[:8]}"
    commit = sh(["git", "rev-parse", "HEAD"], cwd=REPO).stdout.strip() or "unknown"
    mounts = []      # pip reaches its index as on this host: its configuration and CA bundle (podman build -v)
    if "podman" in engine:
        mounts = [f"-v={p}:{p}:ro" for p in ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt") if Path(p).exists()]
        mounts.append("--network=host")
    build = sh([engine, "build", *mounts, f"--build-arg=GIT_COMMIT={commit}", "-t", tag, "."], cwd=REPO, timeout_s=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        yield engine, tag, commit
    finally:
        sh([engine, "rmi", "-f", tag])
        if made_base:
            sh([engine, "rmi", "-f", BASE])


def run_in(image, outputs: Path, *command: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
    """As the image's default user, read-only root, no network; writable: the outputs mount and /tmp."""
    engine, tag, _ = image
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    # explicit limits no higher than ours: podman otherwise raises them, which a sandboxed kernel (gVisor) refuses
    limits = [f"--ulimit=nofile={nofile[0]}:{nofile[1]}", "--ulimit=nproc=4096:4096"]
    return sh([engine, "run", "--rm", *limits, "--read-only", "--network=none", "--tmpfs=/tmp:rw,exec,size=4g",
               f"-v={outputs}:/opt/salsa/outputs", "-e", "OMP_NUM_THREADS=1", tag, *command], timeout_s=timeout_s)


@pytest.fixture
def outputs(tmp_path):
    tmp_path.chmod(0o777)          # the container's user (uid 1000) writes here
    return tmp_path


def summaries(outputs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(outputs.glob("**/runs/*/summary.json"))]


def test_default_run_as_non_root_records_the_commit(image, outputs):
    out = run_in(image, outputs)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [summary] = summaries(outputs)
    assert summary["status"] == "finished" and summary["env"]["git_commit"] == image[2]
    owner = {p.stat().st_uid for p in outputs.glob("runs/*/*")}
    assert owner == {1000}, owner                        # written by the image's user, not root


def test_compile_and_rotten_tomatoes(image, outputs):
    out = run_in(image, outputs, "python", "run.py", "trainer.compile=true", "trainer.max_steps=20", "trainer.epochs=1")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    out = run_in(image, outputs, "python", "run.py", "experiment=cpu_tier_rotten_tomatoes_bow", "trainer.max_steps=20")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert [s["status"] for s in summaries(outputs)] == ["finished", "finished"]


def test_reproduce_sweep_without_git(image, outputs):
    out = run_in(image, outputs, "python", "-m", "experiments.reproduce", "--grid", "tests/experiments/slurm_grid.yaml",
                 "--root", "outputs/sweep", "--out", "outputs/results", "--no-analysis")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = (outputs / "results" / "reproduce_report.md").read_text()
    assert f"git {image[2][:7]}" in report and "finished 7" in report


def test_torchrun_two_ranks(image, outputs):
    out = run_in(image, outputs, "torchrun", "--standalone", "--nproc_per_node=2", "run.py", "trainer.device=cpu",
                 "trainer.max_steps=10", "trainer.epochs=1")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [summary] = summaries(outputs)
    assert summary["status"] == "finished" and summary["world_size"] == 2


def test_the_image_tests_pass_inside(image, outputs):
    out = run_in(image, outputs, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/distributed",
                 "--ignore=tests/distributed/test_image.py", timeout_s=1800)
    assert out.returncode == 0 and " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]
