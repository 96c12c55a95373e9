"""Every bad input and every fault ends clean (table-driven, run.py in subprocesses as a user runs it).

Each case runs against a copy of one results root that holds a finished run and a run killed mid-training
(kill -9 through the loop's SALSA_TEST_KILL_AT hook), and checks: the exit status, no traceback (and none of
torch's weights_only=False advice), the message's key words, the finished run byte-identical, and no stray
run directory, stuck "running" summary or temporary file left behind."""
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import CONF, REPO, compose_cfg, run_py

from salsa.train.runner import check_optimizer
from salsa.train.schema import validate

FINISHED = ["trainer.epochs=1", "trainer.device=cpu"]
PAUSED = ["trainer.epochs=1", "trainer.device=cpu", "trainer.checkpoint_every=10", "seed=1"]  # killed at step 15


@dataclass
class Case:
    name: str
    args: list
    rc: int
    words: list
    base: list = field(default_factory=lambda: FINISHED)
    setup: Callable | None = None      # setup(paused run dir, root) -> extra environment
    check: Callable | None = None      # check(paused run dir, output) after the command
    paused_unchanged: bool = True      # the killed run's files are byte-identical afterwards (to after setup)
    new_runs: int = 0                  # run directories the command may add (each ends not "running")


def digest(folder: Path) -> dict:
    """Every file's hash, but the lock's owner line (rewritten by each owner) and symlinks (to /dev/full)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink() and p.name != ".lock"}


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def truncate(run_dir, root):
    data = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 2])


def garbage(run_dir, root):  # fixed bytes: the same case on every run
    (run_dir / "checkpoint.pt").write_bytes(random.Random(0).randbytes(4096))


def garbage_after_a_pickle_header(run_dir, root):  # torch.load warns of "pickle protocol 87", then fails
    (run_dir / "checkpoint.pt").write_bytes(b"\x80\x57" + random.Random(1).randbytes(4094))


def empty(run_dir, root):
    (run_dir / "checkpoint.pt").write_bytes(b"")


def restarted_with_the_damaged_file_kept(run_dir, out):
    assert summary(run_dir)["status"] == "finished" and summary(run_dir)["totals"]["steps"] == 20
    assert (run_dir / "checkpoint.pt.corrupt.1").exists()
    assert "moved aside to checkpoint.pt.corrupt.1" in out.stderr and "starts again from step 0" in out.stderr
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()][:2] == [10, 20]


def damaged_summary(text):
    def setup(run_dir, root):
        (run_dir / "summary.json").write_text(text)
    return setup


def resumed_with_the_damaged_summary_kept(run_dir, out):
    assert summary(run_dir)["status"] == "finished"
    assert (run_dir / "summary.json.corrupt.1").exists() and "summary.json.corrupt.1" in out.stderr


def finished(run_dir, out):
    assert summary(run_dir)["status"] == "finished"


def stale_lock(run_dir, root):
    (run_dir / ".lock").write_text("pid 999999 on elsewhere since 2020-01-01T00:00:00\n")


HELD = []  # the lock this test process holds during a case


def hold_lock(run_dir, root):
    f = open(run_dir / ".lock", "a+")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(f"pid {os.getpid()} on testhost since now\n")
    f.flush()
    HELD.append(f)


def disk_full(name):
    def setup(run_dir, root):
        (run_dir / f".{name}.tmp").symlink_to("/dev/full")  # writes there fail with ENOSPC
    return setup


def failed_on_full_disk(run_dir, out):
    assert not list(run_dir.glob(".*.tmp"))
    s = summary(run_dir)
    assert s["status"] == "interrupted" and "disk is full" in s["error"]
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]["step"] == 10  # the last good one


def stale_summary_on_full_disk(run_dir, out):
    assert not list(run_dir.glob(".*.tmp")) and summary(run_dir)["status"] == "running"


def other_config_checkpoint(run_dir, root):
    [done] = [d for d in (root / "runs").iterdir() if d != run_dir]
    shutil.copy(done / "checkpoint.pt", run_dir / "checkpoint.pt")


def interrupted_by(name):
    def check(run_dir, out):
        s = summary(run_dir)
        assert s["status"] == "interrupted" and f"stopped by {name}" in s["error"]
    return check


def numerics_change_recorded(run_dir, out):
    s = summary(run_dir)
    assert s["status"] == "finished" and s["env"]["numerics"]["torch_threads"] == 2
    assert s["env"]["numerics_changes"] == [{"step": 10, "changes": ["torch_threads: 1 -> 2"]}]


def kill_env(spec):
    return lambda run_dir, root: {"SALSA_TEST_KILL_AT": spec}


def invalid(args, *words, base=FINISHED):
    return Case(args[-1], list(args), 2, list(words), base=base)


CASES = [
    # values out of range or of the wrong type: caught at composition, nothing written
    invalid(["optimizer.c=0"], "error: optimizer.c=0: must be a number in (0, 1)"),
    invalid(["optimizer.c=-0.5"], "optimizer.c=-0.5"),
    invalid(["optimizer.beta3=1"], "optimizer.beta3=1: must be a number in [0, 1)"),
    invalid(["optimizer.beta3=-0.1"], "optimizer.beta3=-0.1"),
    invalid(["optimizer.betas=[0.9,1.0]"], "optimizer.betas=[0.9,1.0]", "two numbers in [0, 1)"),
    invalid(["optimizer=adam", "optimizer.lr=-1"], "optimizer.lr=-1: must be a number > 0"),
    invalid(["optimizer=sgd", "optimizer.lr=fast"], "optimizer.lr=fast"),
    invalid(["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    invalid(["trainer.batch_size=-64"], "trainer.batch_size=-64"),
    invalid(["trainer.epochs=0"], "trainer.epochs=0: must be an integer >= 1"),
    invalid(["trainer.epochs=-2"], "trainer.epochs=-2"),
    invalid(["seed=abc"], "seed=abc: must be an integer"),
    invalid(["seed=1.5"], "seed=1.5"),
    invalid(["trainer.log_every=0"], "trainer.log_every=0"),
    invalid(["trainer.eval_batch_size=0"], "trainer.eval_batch_size=0"),
    invalid(["trainer.limit=0"], "trainer.limit=0", "null: the whole split"),
    invalid(["trainer.precision=fp16"], "trainer.precision=fp16: must be fp32 | bf16"),
    invalid(["trainer.device=gpu"], "trainer.device=gpu: must be auto | cpu | cuda | cuda:N"),
    invalid(["trainer.max_steps=0"], "trainer.max_steps=0"),
    invalid(["trainer.checkpoint_every=-1"], "trainer.checkpoint_every=-1"),
    invalid(["optimizer=adam", "trainer.grad_clip=-1"], "trainer.grad_clip=-1"),
    invalid(["trainer.compile=maybe"], "trainer.compile=maybe: must be true or false"),
    invalid(["dataset.val_fraction=1.5"], "dataset.val_fraction=1.5"),
    invalid(["optimizer.max_backtracks=0"], "optimizer.max_backtracks=0"),
    # the optimizer's own ValueError, turned into the same one line
    invalid(["optimizer=sls_adam", "optimizer.reset_option=7"], "error: optimizer=sls_adam: reset_option must be one of"),
    # other bad input: a clear line, no run directory left behind
    Case("unknown optimizer", ["optimizer=adamm"], 1, ["Could not find 'optimizer/adamm'", "salsa_adam"]),
    invalid(["model=bert"], "model=bert cannot train on dataset=digits"),
    invalid(["dataset=cifar10", "model=resnet18", "paths.data={root}/nothing"], "cifar-10-python.tar.gz"),
    invalid(["dataset.val_fraction=0.6", "dataset.test_fraction=0.4"], "the train split of dataset=digits is empty"),
    Case("unwritable runs folder", ["paths.runs={root}/blocker/runs"], 2, ["cannot write the run directory", "paths.root="],
         setup=lambda run_dir, root: (root / "blocker").write_text("keep me") and None),
    # damaged files of the killed run: moved aside with their path, the run goes on
    Case("truncated checkpoint", [], 0, ["checkpoint.pt is damaged (unreadable"], PAUSED, truncate,
         restarted_with_the_damaged_file_kept, paused_unchanged=False),
    Case("garbage checkpoint", [], 0, ["checkpoint.pt is damaged"], PAUSED, garbage,
         restarted_with_the_damaged_file_kept, paused_unchanged=False),
    Case("garbage checkpoint after a pickle header", [], 0, ["checkpoint.pt is damaged"], PAUSED,
         garbage_after_a_pickle_header, restarted_with_the_damaged_file_kept, paused_unchanged=False),
    Case("empty checkpoint", [], 0, ["checkpoint.pt is damaged (empty or truncated"], PAUSED, empty,
         restarted_with_the_damaged_file_kept, paused_unchanged=False),
    Case("torn summary", [], 0, ["summary.json is damaged (not valid JSON"], PAUSED, damaged_summary('{"status": "runn'),
         resumed_with_the_damaged_summary_kept, paused_unchanged=False),
    Case("summary not an object", [], 0, ["summary.json is damaged (not a summary"], PAUSED, damaged_summary("[]"),
         resumed_with_the_damaged_summary_kept, paused_unchanged=False),
    Case("checkpoint of another config", [], 2, ["belongs to another config", "move it away"], PAUSED,
         other_config_checkpoint, paused_unchanged=False),
    # one owner per run directory
    Case("lock held", [], 2, ["is in use by pid", "wait for it to finish"], PAUSED, hold_lock),
    Case("stale lock of a dead process", [], 0, [], PAUSED, stale_lock, finished, paused_unchanged=False),
    # numerics settings differ from the checkpoint's
    Case("other thread count", [], 2, ["torch_threads: 1 -> 2", "trainer.allow_numerics_change=true"], PAUSED,
         lambda run_dir, root: {"OMP_NUM_THREADS": "2"}),
    Case("thread count change allowed", ["trainer.allow_numerics_change=true"], 0, [], PAUSED,
         lambda run_dir, root: {"OMP_NUM_THREADS": "2"}, numerics_change_recorded, paused_unchanged=False),
    # a full disk: said so, the previous checkpoint kept, no temporary file
    Case("disk full at a checkpoint", [], 1, ["the disk is full", "run the same command again"], PAUSED,
         disk_full("checkpoint.pt"), failed_on_full_disk, paused_unchanged=False),
    Case("disk full at the summary", [], 1, ["the disk is full"], PAUSED, disk_full("summary.json"),
         stale_summary_on_full_disk),
    # stopped by a signal: status interrupted with the reason
    Case("SIGTERM", [], 143, ["stopped by SIGTERM", "resume"], PAUSED, kill_env("step:3:SIGTERM"),
         interrupted_by("SIGTERM"), paused_unchanged=False),
    Case("Ctrl-C", [], 130, ["stopped by SIGINT"], PAUSED, kill_env("step:3:SIGINT"), interrupted_by("SIGINT"),
         paused_unchanged=False),
    Case("loss diverges", ["optimizer=sgd", "optimizer.lr=1e30"], 2, ["failed", "loss is nan"], new_runs=1),
]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """A results root with a finished run and a run killed at step 15 (checkpoint at step 10, status running)."""
    root = tmp_path_factory.mktemp("earlier")
    assert run_py(f"paths.root={root}", *FINISHED).returncode == 0
    killed = run_py(f"paths.root={root}", *PAUSED, env={"SALSA_TEST_KILL_AT": "step:15"})
    assert killed.returncode == -9, killed.stderr
    return root / "runs"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_or_fault_ends_clean(case, earlier, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(earlier, root / "runs")
    [done] = [d for d in (root / "runs").iterdir() if summary(d)["status"] == "finished"]
    [paused] = [d for d in (root / "runs").iterdir() if d != done]
    before = digest(done)
    env = (case.setup(paused, root) if case.setup else None) or {}
    paused_before = digest(paused)
    try:
        out = run_py(f"paths.root={root}", *case.base, *[a.format(root=root) for a in case.args], env=env)
    finally:
        while HELD:
            HELD.pop().close()
    assert out.returncode == case.rc, out.stderr
    assert "Traceback" not in out.stderr and "weights_only" not in out.stderr, out.stderr
    assert all(word in out.stderr for word in case.words), out.stderr
    assert digest(done) == before
    if case.paused_unchanged:
        assert digest(paused) == paused_before
    if case.check:
        case.check(paused, out)
    added = [d for d in (root / "runs").iterdir() if d not in (done, paused)]
    assert len(added) == case.new_runs, [sorted(p.name for p in d.iterdir()) for d in added]
    assert all(summary(d)["status"] in ("finished", "failed", "interrupted") for d in added)
    assert not list((root / "runs").rglob("*.tmp"))


def test_two_identical_commands_one_owner(tmp_path):
    """The second of two identical commands, started while the first trains, says who holds the run directory
    and writes nothing; the first ends as if alone (every record once)."""
    cmd = [sys.executable, str(REPO / "run.py"), f"paths.root={tmp_path}", *PAUSED]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SALSA_TEST_KILL_AT": "step:5:SIGSTOP"}  # stops itself mid-run
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        second = run_py(f"paths.root={tmp_path}", *PAUSED)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode == 2 and f"is in use by pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    [run_dir] = (tmp_path / "runs").iterdir()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in lines] == [("step", 10), ("step", 20), ("eval", 20), ("eval", 20), ("final", 20)]


def test_every_shipped_option_passes_validation():
    """The rules reject only what is wrong: every optimizer, data set and preset as shipped validates."""
    for group in ("optimizer", "dataset", "experiment", "trainer"):
        for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
            cfg = compose_cfg(f"{group}={option}")
            validate(cfg)
            if group == "optimizer":
                check_optimizer(cfg)
