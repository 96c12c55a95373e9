"""Nothing in a run directory reaches outside it, and a run is what its config says (docs/run-directory.md).

Real mechanisms throughout: symbolic links to files outside the run and to /dev/zero, a FIFO, a summary.json whose
"files" name ../../../x and /dev/zero, an edited summary, a directory renamed to another config's id, fields of the
wrong type, a CIFAR batch that is a pickle with a side effect, a garbage one and one as large as a real batch. Each
is met by run.py, `python -m salsa.contract.verify`, the analysis and the sweep's plan as a user meets them: one
line, no traceback, a non-zero exit where it must fail, and nothing outside the run directory touched."""
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, compose_cfg, run_py

from analysis.collect import collect_runs
from experiments.reproduce.plan import PlannedRun
from salsa.contract.runid import LARGEST_SEED, identify
from salsa.contract.verify import damage, digest_of, sealed
from salsa.data.cifar import read_batch
from salsa.registry import UserError
from tests.analysis.conftest import PAPER_CSV

FINISHED = ["trainer.epochs=1", "trainer.device=cpu"]
PAUSED = ["trainer.epochs=1", "trainer.device=cpu", "trainer.checkpoint_every=10", "seed=1"]  # killed at step 15
TIMEOUT = 60  # a command that hangs on /dev/zero or a FIFO fails the test instead of hanging it


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A runs folder with a finished run (seed 0) and a run killed at step 15 (seed 1, checkpoint at step 10)."""
    root = tmp_path_factory.mktemp("earlier")
    assert run_py(f"paths.root={root}", *FINISHED).returncode == 0
    assert run_py(f"paths.root={root}", *PAUSED, env={"SALSA_TEST_KILL_AT": "step:15"}).returncode == -9
    return root / "runs"


@pytest.fixture
def runs(earlier, tmp_path) -> Path:
    shutil.copytree(earlier, tmp_path / "runs", symlinks=True)
    return tmp_path / "runs"


def finished_dir(runs: Path) -> Path:
    return identify(compose_cfg(f"paths.root={runs.parent}", *FINISHED)).path


def paused_dir(runs: Path) -> Path:
    return identify(compose_cfg(f"paths.root={runs.parent}", *PAUSED)).path


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def write_summary(run_dir: Path, value: dict) -> None:
    (run_dir / "summary.json").write_text(json.dumps(value, indent=2))


def digest(folder: Path) -> dict:
    """Every plain file's hash (links are compared by their target, never followed)."""
    return {str(p.relative_to(folder)): os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


def verify(runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "salsa.contract.verify", str(runs)], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT)


def analyse(runs: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", "--root", str(runs), "--out", str(out), "--paper-csv",
                           str(PAPER_CSV)], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)


def one_line(text: str, start: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith(start)]
    return line


def clean(out: subprocess.CompletedProcess, rc: int) -> None:
    assert out.returncode == rc, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr


def planned(run_dir: Path) -> PlannedRun:
    return PlannedRun(None, run_dir.name, run_dir, 0, 0.0).refresh()


def refusal(runs: Path, run_dir: Path) -> str:
    table = collect_runs([runs]).set_index("run_dir")
    return table.at[str(run_dir), "refused"]


def damaged_everywhere(runs: Path, run_dir: Path, said: str, *, plan_says_it: bool = True) -> None:
    """verify (exit 1) and the analysis call run_dir damaged for `said`, and the sweep plans it again (its plan's
    error saying it too unless plan_says_it is False)."""
    checked = verify(runs)
    clean(checked, 1)
    assert said in one_line(checked.stdout, f"damaged    {run_dir}")
    assert said in refusal(runs, run_dir)
    plan = planned(run_dir)
    assert plan.status == "damaged" and (not plan_says_it or said in plan.error)


# --- 1. the run directory is closed: only its own plain files, by their fixed names ---

@pytest.mark.parametrize("name", ["../../../x", "/dev/zero"])
def test_a_summary_vouching_for_a_path_outside_the_run_is_damage_and_nothing_outside_is_touched(runs, name):
    done = finished_dir(runs)
    outside = runs.parent.parent / "x"
    outside.write_text("not the run's")
    s = summary(done)
    s["files"][name] = {"sha256": "0" * 64, "bytes": 1}
    write_summary(done, sealed(s))  # its digest made again: only the name is wrong
    said = f"summary.json vouches for {json.dumps(name)}, which is not a file of a run"

    damaged_everywhere(runs, done, said)

    again = run_py(f"paths.root={runs.parent}", *FINISHED, timeout=TIMEOUT)
    clean(again, 0)
    assert said in again.stderr and "moved aside to summary.json.corrupt.1" in again.stderr
    assert outside.read_text() == "not the run's" and not list(runs.parent.parent.glob("x.corrupt.*"))
    assert summary(done)["status"] == "finished" and not damage(done, summary(done))
    assert summary(done)["metrics"] == json.loads((done / "summary.json.corrupt.1").read_text())["metrics"]


@pytest.mark.parametrize("name", ["train_loss.f32", "metrics.jsonl", "checkpoint.pt", ".lock", ".checkpoint.pt.tmp"])
def test_a_link_in_an_unfinished_run_is_refused_and_its_target_never_written(runs, name):
    paused = paused_dir(runs)
    victim = runs.parent / "victim"
    victim.write_bytes(b"someone else's file\n")
    (paused / name).unlink(missing_ok=True)
    (paused / name).symlink_to(victim)
    before = digest(paused)
    out = run_py(f"paths.root={runs.parent}", *PAUSED, timeout=TIMEOUT)
    clean(out, 2)
    assert out.stderr.strip() == (f"error: {paused / name} is a symbolic link, not a plain file: a run directory holds "
                                  "only the plain files the harness writes, and it never follows or opens anything "
                                  "else; remove or move it away, then run again")
    assert victim.read_bytes() == b"someone else's file\n" and digest(paused) == before


@pytest.mark.parametrize("name", ["train_loss.f32", "metrics.jsonl"])
def test_a_hard_link_is_never_written_in_place(runs, name):
    paused = paused_dir(runs)
    victim = runs.parent / "victim"
    os.link(paused / name, victim)  # the same file under a name outside the run
    before = {**digest(paused), ".lock": None}, victim.read_bytes()
    out = run_py(f"paths.root={runs.parent}", *PAUSED, timeout=TIMEOUT)
    clean(out, 2)
    assert out.stderr == (f"error: {paused / name} has 2 hard links: writing it in place would change the file under "
                          "its other names too; replace it by a copy of itself (cp, not ln), then run again\n")
    assert ({**digest(paused), ".lock": None}, victim.read_bytes()) == before  # .lock: the owner's line, rewritten


def test_a_run_directory_that_is_a_link_is_refused_and_planned_again(runs, tmp_path):
    done = finished_dir(runs)
    elsewhere = tmp_path / "elsewhere"
    done.rename(elsewhere)
    done.symlink_to(elsewhere)
    before = digest(elsewhere)
    assert planned(done).status == "damaged" and planned(done).error == f"{done} is a symbolic link, not a run directory"
    out = run_py(f"paths.root={runs.parent}", *FINISHED, timeout=TIMEOUT)
    clean(out, 2)
    assert out.stderr == (f"error: {done} is a symbolic link, not a run directory: the harness writes its runs into "
                          "directories it makes itself; remove or move it away, then run again\n")
    assert digest(elsewhere) == before  # not even the write probe went through it


@pytest.mark.parametrize("make", ["link to /dev/zero", "FIFO"])
def test_a_device_or_fifo_in_a_finished_run_never_hangs_verify_the_analysis_the_sweep_or_run_py(runs, make, tmp_path):
    done = finished_dir(runs)
    (done / "train_loss.f32").unlink()
    if make == "FIFO":
        os.mkfifo(done / "train_loss.f32")
    else:
        (done / "train_loss.f32").symlink_to("/dev/zero")
    kind = "a FIFO" if make == "FIFO" else "a symbolic link"
    before = digest(runs)

    damaged_everywhere(runs, done, f"train_loss.f32 is {kind}, not a plain file", plan_says_it=False)
    analysed = analyse(runs, tmp_path / "results")
    assert "Traceback" not in analysed.stderr and analysed.returncode != 0  # no finished run left to average
    out = run_py(f"paths.root={runs.parent}", *FINISHED, timeout=TIMEOUT)
    clean(out, 2)
    assert out.stderr.startswith(f"error: {done / 'train_loss.f32'} is {kind}, not a plain file") and out.stderr.count("\n") == 1
    assert digest(runs) == before


def test_a_malicious_cifar_pickle_runs_no_code_and_a_garbage_one_is_one_line(tmp_path, data_root):
    data = tmp_path / "data"
    shutil.copytree(data_root / "cifar10", data / "cifar10")
    marker = tmp_path / "pwned"

    class SideEffect:
        def __reduce__(self):
            return open, (str(marker), "w")  # plain pickle.load would create the file
    batch = data / "cifar10" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": SideEffect(), b"labels": [1]}, protocol=2))
    args = ["dataset=cifar10", "model=mlp", "download=false", f"paths.data={data}", f"paths.root={tmp_path}"]
    out = run_py(*args, timeout=TIMEOUT)
    clean(out, 2)
    assert not marker.exists() and not list((tmp_path / "runs").iterdir())  # no code ran, no run directory left
    line = one_line(out.stderr, "error:")
    assert line == (f"error: {batch} is not a CIFAR batch (UnpicklingError: it names io.open, which a CIFAR batch never "
                    f"holds); delete {batch} and download it again (download=true) or unpack the CIFAR archive again")
    pickle.loads(batch.read_bytes())  # the side effect is real: an ordinary pickle.load runs it
    assert marker.exists()

    batch.write_bytes(np.random.default_rng(0).bytes(5000))
    out = run_py(*args, timeout=TIMEOUT)
    clean(out, 2)
    assert one_line(out.stderr, "error:").startswith(f"error: {batch} is not a CIFAR batch (UnpicklingError")


def test_a_cifar_file_as_large_as_a_batch_is_checked_against_the_published_md5_before_it_is_unpickled(tmp_path):
    batch = tmp_path / "data_batch_1"
    entry = {b"data": np.zeros((10000, 3072), dtype=np.uint8), b"labels": [0] * 10000}
    batch.write_bytes(pickle.dumps(entry, protocol=2))  # the size of the real batch, not its content
    md5 = "c99cafc152244af753f735de768cd75f"  # torchvision.datasets.CIFAR10.train_list
    with pytest.raises(UserError, match=f"does not match the md5 torchvision publishes for it \\({md5}\\)"):
        read_batch(batch, b"labels", md5)
    x, y, published = read_batch(batch, b"labels", hashlib.md5(batch.read_bytes()).hexdigest())
    assert published and x.shape == (10000, 3, 32, 32) and len(y) == 10000


# --- 2. a run directory is the run its config says ---

def test_a_run_directory_renamed_to_another_configs_id_is_not_that_run(runs, tmp_path):
    done, paused = finished_dir(runs), paused_dir(runs)
    shutil.rmtree(paused)
    done.rename(paused)  # seed 0's finished run, under seed 1's id
    before = digest(runs)
    said = f"the directory is named {paused.name} but its config.yaml hashes to {done.name}"

    damaged_everywhere(runs, paused, said)
    out = run_py(f"paths.root={runs.parent}", *PAUSED, timeout=TIMEOUT)
    clean(out, 2)
    assert out.stderr == (f"error: run directory {paused} holds the run of another config (its config.yaml hashes to "
                          f"{done.name}): it was renamed or copied there; move it back to {done} or away, then run again\n")
    assert digest(runs) == before


# --- 3. the summary vouches for itself ---

def test_an_edited_summary_is_damage_everywhere_and_run_py_does_the_run_again_identically(runs, tmp_path):
    done = finished_dir(runs)
    original = summary(done)
    edited = {**original, "metrics": {**original["metrics"], "final_train_loss": 0.001}}
    write_summary(done, edited)
    said = "summary.json was edited after the run wrote it (its digest does not match its content)"

    damaged_everywhere(runs, done, said, plan_says_it=False)

    again = run_py(f"paths.root={runs.parent}", *FINISHED, timeout=TIMEOUT)
    clean(again, 0)
    assert said in again.stderr and json.loads((done / "summary.json.corrupt.1").read_text()) == edited
    redone = summary(done)
    assert redone["metrics"] == original["metrics"] and redone["digest"] == digest_of(redone)
    assert planned(done).status == "finished" and verify(runs).returncode == 0


def test_a_summary_without_its_digest_is_unverified(runs):
    done = finished_dir(runs)
    write_summary(done, {k: v for k, v in summary(done).items() if k != "digest"})
    checked = verify(runs)
    clean(checked, 0)
    assert one_line(checked.stdout, f"unverified {done}").endswith("finished before summaries recorded their digest")


@pytest.mark.parametrize("field, value, said", [
    ("metrics", "x", 'summary.json\'s metrics is "x", not an object of numbers or nulls'),
    ("seed", "abc", f'summary.json\'s seed is "abc", not an integer from 0 to {LARGEST_SEED}'),
    ("seed", 2**64 - 1, f"summary.json's seed is {2**64 - 1}, not an integer from 0 to {2**53}"),  # the analysis reads seeds to 2**53
    ("files", [1], "summary.json's files is [1], not an object"),
    ("status", 7, "summary.json's status is 7, not running | finished | failed | interrupted"),
])
def test_summary_fields_of_the_wrong_type_are_one_line(runs, tmp_path, field, value, said):
    done = finished_dir(runs)
    write_summary(done, sealed({**summary(done), field: value}))
    before = digest(runs)
    checked = verify(runs)
    clean(checked, 1)
    assert said in one_line(checked.stdout, f"damaged    {done}")
    analysed = analyse(runs, tmp_path / "results")
    clean(analysed, 2)
    assert analysed.stderr.startswith(f"error: corrupt file {done / 'summary.json'}: {said}") and analysed.stderr.count("\n") == 1
    assert planned(done).status in ("damaged", "missing")  # a status that is not one is not finished: planned again
    assert digest(runs) == before


# --- 4. the sweep verifies before it skips, and agrees with the analysis ---

@pytest.mark.parametrize("spoil", ["truncated metrics.jsonl", "a loss changed in place", "a checkpoint byte changed in place"])
def test_the_sweep_and_the_analysis_agree_on_a_damaged_finished_run(runs, spoil):
    done = finished_dir(runs)
    assert planned(done).status == "finished" and refusal(runs, done) == ""
    if spoil == "truncated metrics.jsonl":
        (done / "metrics.jsonl").write_bytes((done / "metrics.jsonl").read_bytes()[:-10])
    else:
        path = done / ("train_loss.f32" if "loss" in spoil else "checkpoint.pt")
        data = bytearray(path.read_bytes())
        data[-1] ^= 1  # the same size: only a hash sees it
        path.write_bytes(bytes(data))
    run = planned(done)
    assert run.status == "damaged" and refusal(runs, done).startswith(f"files do not match summary.json: {run.error}")
