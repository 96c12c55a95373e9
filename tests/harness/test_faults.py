"""Every bad input and every fault ends clean (table-driven, run.py in subprocesses as a user runs it).

Each case runs against a copy of one results root that holds a finished run and a run killed mid-training
(kill -9 through the loop's phase hook: tests/faulty_run.py, SALSA_TEST_KILL_AT), and checks: the exit status, no traceback (and none of
torch's weights_only=False advice), the message's key words, the finished run byte-identical, and no stray
run directory, stuck "running" summary or temporary file left behind.

Write failures come from the system itself: a file-size limit (RLIMIT_FSIZE: EFBIG), a small tmpfs (ENOSPC), a
read-only bind mount (EROFS) made while the run is stopped at a chosen point (SIGSTOP through the same hook), and
/dev/full. Mounts need root (as in the CI container); without it those cases skip and say why."""
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import resource
import shlex
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

from salsa.contract.files import named
from salsa.contract.verify import damage
from salsa.train.preflight import check_optimizer
from salsa.train.runner import fault
from salsa.train.schema import validate
from tests.wandb_offline import subprocess_env

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
    file_size_limit: Callable | None = None  # file_size_limit(paused run dir) -> RLIMIT_FSIZE of the command
    stopped: tuple | None = None       # (phase:n, action(paused run dir)): the command stops itself there, action runs
    resumes: bool = False              # once the cause is gone (mounts undone, no limit), the same command finishes


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


def link_to_dev_full(name):
    def setup(run_dir, root):
        (run_dir / f".{name}.tmp").symlink_to("/dev/full")  # a write through it would fail with ENOSPC
    return setup


def link_left(name):
    def check(run_dir, out):
        assert os.readlink(run_dir / f".{name}.tmp") == "/dev/full" and summary(run_dir)["status"] == "running"
    return check


def kept_the_last_checkpoint(*reason):
    """The summary says "interrupted" with the OS reason (not a library's text); or, when the system refuses that
    write too (no reason given), it still says "running". The checkpoint of step 10, no temporary file."""
    def check(run_dir, out):
        assert not list(run_dir.glob(".*.tmp"))
        s = summary(run_dir)
        if reason:
            assert s["status"] == "interrupted" and all(word in s["error"] for word in reason)
        else:
            assert s["status"] == "running"
        assert "enforce fail" not in json.dumps(s)
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]["step"] == 10
    return check


MOUNTS = []  # mount points made during a case, undone after it


def _mount(*args) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    out = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"mount {' '.join(map(str, args))} failed ({out.stderr.strip()}): the case needs root, as in the "
                    "CI container")


def read_only(path: Path) -> None:
    """path becomes a read-only bind mount of itself: every write under it fails with EROFS."""
    path.mkdir(exist_ok=True)
    _mount("--bind", path, path)
    MOUNTS.append(path)
    _mount("-o", "remount,bind,ro", path)


def unmount_all(*_) -> None:
    while MOUNTS:
        subprocess.run(["umount", str(MOUNTS.pop())], check=True)


def small_disk(run_dir, root):
    """The runs folder moves onto a tmpfs left with room for half a checkpoint: the next checkpoint fails (ENOSPC)."""
    runs, kept = root / "runs", root / "runs.kept"
    shutil.copytree(runs, kept)
    _mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", runs)
    MOUNTS.append(runs)
    shutil.copytree(kept, runs, dirs_exist_ok=True)
    shutil.rmtree(kept)
    room = (run_dir / "checkpoint.pt").stat().st_size // 2
    disk = os.statvfs(runs)
    (runs / ".filler").write_bytes(bytes(disk.f_bavail * disk.f_frsize - room))


def free_space(run_dir, root):
    (root / "runs" / ".filler").unlink()


def checkpoint_size(fraction):
    return lambda run_dir: int((run_dir / "checkpoint.pt").stat().st_size * fraction)


def finished_then(spoil):
    """The killed run is finished first (its summary vouches for its files), then spoil(run dir) damages one."""
    def setup(run_dir, root):
        assert run_py(f"paths.root={root}", *PAUSED).returncode == 0
        assert not damage(run_dir, summary(run_dir))
        spoil(run_dir)
    return setup


def done_again(*aside):
    """The damaged run is done again: finished, its files match its new summary, the damaged ones kept aside."""
    def check(run_dir, out):
        s = summary(run_dir)
        assert s["status"] == "finished" and s["files"] and not damage(run_dir, s)
        assert all((run_dir / name).exists() for name in aside)
        assert records(run_dir) == RECORDS
        old = json.loads((run_dir / "summary.json.corrupt.1").read_text()) if "summary.json.corrupt.1" in aside else None
        if old:  # from step 0 again: every step's loss as before, bit for bit
            assert {**s["files"]["train_loss.f32"], "mtime_ns": 0} == {**old["files"]["train_loss.f32"], "mtime_ns": 0}
    return check


def records(run_dir):
    return [(r["kind"], r["step"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


RECORDS = [("step", 10), ("step", 20), ("eval", 20), ("eval", 20), ("final", 20)]  # PAUSED's metrics.jsonl, finished


def spoil_file(name, data: bytes):
    return lambda run_dir: (run_dir / name).write_bytes(data)


def cut(name, keep: int):
    def setup(run_dir, root):
        (run_dir / name).write_bytes((run_dir / name).read_bytes()[:keep])
    return setup


def restarted(run_dir, out):
    assert summary(run_dir)["status"] == "finished" and records(run_dir) == RECORDS
    assert len((run_dir / "train_loss.f32").read_bytes()) == 4 * 20


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
    invalid(["optimizer._target_=nope.Nope"], "optimizer._target_=nope.Nope: optimizer=ours_salsa_adam is salsa.optim.SaLSa"),
    invalid(["optimizer.beta3=1"], "optimizer.beta3=1: must be a number in [0, 1)"),
    invalid(["optimizer.beta3=-0.1"], "optimizer.beta3=-0.1"),
    invalid(["optimizer.betas=[0.9,1.0]"], "optimizer.betas=[0.9,1.0]", "two numbers in [0, 1)"),
    invalid(["optimizer=torch_adam", "optimizer.lr=-1"], "optimizer.lr=-1: must be a number > 0"),
    invalid(["optimizer=torch_sgd", "optimizer.lr=fast"], "optimizer.lr=fast"),
    invalid(["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer >= 1"),
    invalid(["trainer.batch_size=-64"], "trainer.batch_size=-64"),
    invalid(["trainer.epochs=0"], "trainer.epochs=0: must be an integer >= 1"),
    invalid(["trainer.epochs=-2"], "trainer.epochs=-2"),
    invalid(["seed=abc"], "seed=abc: must be an integer"),
    invalid(["seed=99999999999999999999999"], "seed=99999999999999999999999: must be an integer from 0 to 9007199254740992"),
    invalid([f"seed={2**53 + 1}"], f"seed={2**53 + 1}: must be an integer from 0 to {2**53} (2**53: the seeds a float64 holds"),
    invalid(["seed=-1"], "seed=-1: must be an integer from 0"),
    Case("the largest seed the schema takes", [f"seed={2**53}"], 0, [], new_runs=1),
    invalid(["seed=1.5"], "seed=1.5"),
    invalid(["trainer.log_every=0"], "trainer.log_every=0"),
    invalid(["trainer.eval_batch_size=0"], "trainer.eval_batch_size=0"),
    invalid(["trainer.limit=0"], "trainer.limit=0", "null: the whole split"),
    invalid(["trainer.precision=fp16"], "trainer.precision=fp16: must be fp32 | bf16"),
    invalid(["trainer.device=gpu"], "trainer.device=gpu: must be auto | cpu | cuda | cuda:N"),
    invalid(["trainer.max_steps=0"], "trainer.max_steps=0"),
    invalid(["trainer.checkpoint_every=-1"], "trainer.checkpoint_every=-1"),
    invalid(["optimizer=torch_adam", "trainer.grad_clip=-1"], "trainer.grad_clip=-1"),
    invalid(["trainer.compile=maybe"], "trainer.compile=maybe: must be true or false"),
    invalid(["dataset.val_fraction=1.5"], "dataset.val_fraction=1.5"),
    invalid(["optimizer.max_backtracks=0"], "optimizer.max_backtracks=0"),
    # keys no config has, with or without +: refused with the nearest keys, before Hydra composes
    invalid(["trainer.lr=0.1"], "error: trainer.lr: not a key of this config; the nearest keys:", "trainer.log_every"),
    invalid(["+trainer.lr=0.1"], "error: +trainer.lr: no config has this key", "trainer.log_every"),
    Case("a key of another optimizer", ["optimizer=torch_adam", "optimizer.c=0.5"], 2,
         ["error: optimizer.c: not a key of this config", "optimizer.lr"]),
    Case("a key of another optimizer in a sweep", ["optimizer=ours_salsa_adam,torch_adam", "optimizer.c=0.5", "--multirun"], 2,
         ["error: optimizer.c: not a key of this config"]),
    # the optimizer's own ValueError, turned into the same one line
    invalid(["optimizer=ours_sls_adam", "optimizer.reset_option=7"], "error: optimizer=ours_sls_adam: reset_option must be one of"),
    # other bad input: a clear line, no run directory left behind
    Case("unknown optimizer", ["optimizer=adamm"], 2, ["Could not find 'optimizer/adamm'", "ours_salsa_adam"]),
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
    # a link where the harness writes (a temporary file): refused before anything is written, never followed
    Case("a link at the checkpoint's temporary file", [], 2,
         [".checkpoint.pt.tmp is a symbolic link, not a plain file", "remove or move it away"], PAUSED,
         link_to_dev_full("checkpoint.pt"), link_left("checkpoint.pt")),
    Case("a link at the summary's temporary file", [], 2, [".summary.json.tmp is a symbolic link, not a plain file"],
         PAUSED, link_to_dev_full("summary.json"), link_left("summary.json")),
    # the system itself refuses a write mid-run: one line naming the file and the OS reason, the last checkpoint kept;
    # once the cause is gone the same command finishes the run
    Case("file-size limit at a checkpoint", [], 1, ["the file is larger than allowed: cannot write", "checkpoint.pt", "EFBIG"],
         PAUSED, check=kept_the_last_checkpoint("checkpoint.pt", "EFBIG"), paused_unchanged=False,
         file_size_limit=checkpoint_size(0.5), resumes=lambda run_dir, root: None),
    Case("full file system at a checkpoint", [], 1, ["the disk is full: cannot write", "checkpoint.pt", "ENOSPC"], PAUSED,
         small_disk, kept_the_last_checkpoint("checkpoint.pt", "ENOSPC"), paused_unchanged=False, resumes=free_space),
    Case("read-only file system at metrics.jsonl", [], 1,
         ["the file system is read-only: cannot write", "metrics.jsonl", "EROFS"], PAUSED, check=kept_the_last_checkpoint(),
         paused_unchanged=False, stopped=("step:2", read_only), resumes=unmount_all),
    Case("read-only file system at train_loss.f32", [], 1,
         ["the file system is read-only: cannot write", "train_loss.f32", "EROFS"], PAUSED, check=kept_the_last_checkpoint(),
         paused_unchanged=False, stopped=("eval:1", read_only), resumes=unmount_all),
    Case("read-only W&B mirror", ["logger=wandb"], 1, ["the file system is read-only: cannot write", "/wandb", "EROFS"], PAUSED,
         lambda run_dir, root: read_only(run_dir / "wandb") or {"WANDB_MODE": "offline"}, kept_the_last_checkpoint(),
         resumes=unmount_all),
    # a finished run's files no longer match its summary: said so, moved aside, the run done again
    Case("finished run with a garbage checkpoint", [], 0,
         ["finished, but its files do not match summary.json", "checkpoint.pt has 4096 bytes", "moved aside"], PAUSED,
         finished_then(spoil_file("checkpoint.pt", random.Random(0).randbytes(4096))),
         done_again("checkpoint.pt.corrupt.1", "summary.json.corrupt.1"), paused_unchanged=False),
    Case("finished run with an empty metrics.jsonl", [], 0,
         ["metrics.jsonl has 0 lines, 0 bytes", "where summary.json says 5 lines", "starts again from step 0"], PAUSED,
         finished_then(spoil_file("metrics.jsonl", b"")), done_again("metrics.jsonl.corrupt.1", "summary.json.corrupt.1"),
         paused_unchanged=False),
    # an interrupted run lost records its checkpoint counts: said so, started again
    Case("metrics.jsonl shorter than its checkpoint", [], 0,
         ["metrics.jsonl has 0 records where the checkpoint counts 1", "starts again from step 0"], PAUSED,
         cut("metrics.jsonl", 0), restarted, paused_unchanged=False),
    Case("train_loss.f32 shorter than its checkpoint", [], 0,
         ["train_loss.f32 has 5 steps' losses where the checkpoint counts 10", "starts again from step 0"], PAUSED,
         cut("train_loss.f32", 20), restarted, paused_unchanged=False),
    # stopped by a signal: status interrupted with the reason
    Case("SIGTERM", [], 143, ["stopped by SIGTERM", "resume"], PAUSED, kill_env("step:3:SIGTERM"),
         interrupted_by("SIGTERM"), paused_unchanged=False),
    Case("Ctrl-C", [], 130, ["stopped by SIGINT"], PAUSED, kill_env("step:3:SIGINT"), interrupted_by("SIGINT"),
         paused_unchanged=False),
    Case("loss diverges", ["optimizer=torch_sgd", "optimizer.lr=1e30"], 2, ["failed", "loss is nan"], new_runs=1),
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
    args = [f"paths.root={root}", *case.base, *[a.format(root=root) for a in case.args]]
    try:
        env = (case.setup(paused, root) if case.setup else None) or {}
        paused_before = digest(paused)
        with file_size_limit(case.file_size_limit(paused) if case.file_size_limit else resource.RLIM_INFINITY):
            out = run_stopping(args, env, *case.stopped, paused) if case.stopped else run_py(*args, env=env)
        check_the_outcome(case, out, root, done, before, paused, paused_before)
        if case.resumes:
            case.resumes(paused, root)
            again = run_py(*args, env=env)
            assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
            assert summary(paused)["status"] == "finished" and not damage(paused, summary(paused))
            assert records(paused) == RECORDS and digest(done) == before
    finally:
        while HELD:
            HELD.pop().close()
        unmount_all()


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """RLIMIT_FSIZE for the commands started meanwhile (a child inherits it; Python ignores SIGXFSZ, so a write past
    it fails with EFBIG)."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)


def run_stopping(args, env, at: str, action, run_dir):
    """run.py that stops itself at `at` (<phase>:<n>, the loop's hook); action(run_dir) runs while it is stopped."""
    cmd = [sys.executable, str(REPO / "tests/faulty_run.py"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(**env, SALSA_TEST_KILL_AT=f"{at}:SIGSTOP"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), proc.stderr.read()
        action(run_dir)
    finally:
        proc.send_signal(signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def check_the_outcome(case, out, root, done, before, paused, paused_before):
    assert out.returncode == case.rc, out.stderr
    assert "Traceback" not in out.stderr and "weights_only" not in out.stderr, out.stderr
    assert all(word in out.stderr for word in case.words), out.stderr
    assert digest(done) == before
    if case.paused_unchanged:
        assert digest(paused) == paused_before
    if case.check:
        case.check(paused, out)
    added = [d for d in (root / "runs").iterdir() if d.is_dir() and d not in (done, paused)]
    assert len(added) == case.new_runs, [sorted(p.name for p in d.iterdir()) for d in added]
    assert all(summary(d)["status"] in ("finished", "failed", "interrupted") for d in added)
    assert not [p for p in (root / "runs").rglob("*.tmp") if not p.is_symlink()]  # a planted link is left alone


def test_two_identical_commands_one_owner(tmp_path):
    """The second of two identical commands, started while the first trains, says who holds the run directory
    and writes nothing; the first ends as if alone (every record once)."""
    cmd = [sys.executable, str(REPO / "tests/faulty_run.py"), f"paths.root={tmp_path}", *PAUSED]
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
    assert records(run_dir) == RECORDS


def test_every_shipped_option_passes_validation():
    """The rules reject only what is wrong: every optimizer, data set and preset as shipped validates."""
    for group in ("optimizer", "dataset", "experiment", "trainer"):
        for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
            cfg = compose_cfg(f"{group}={option}")
            validate(cfg)
            if group == "optimizer":
                check_optimizer(cfg)


@pytest.mark.parametrize("code, what", [(errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "the disk quota is used up"),
                                        (errno.EFBIG, "the file is larger than allowed"),
                                        (errno.EROFS, "the file system is read-only")])
def test_each_os_reason_is_one_line_with_the_file(code, what):
    """The table above meets ENOSPC, EFBIG and EROFS from the system itself; EDQUOT needs a quota that binds (root's
    does not), so every reason's line is checked here on the error the system would raise."""
    path = Path("/runs/abc/metrics.jsonl")
    message = str(fault(named(OSError(code, os.strerror(code)), path), path.parent))
    assert message.startswith(f"{what}: cannot write {path} ({errno.errorcode[code]}: {os.strerror(code)}); ")
    assert message.endswith("run the same command again: it resumes from the last checkpoint") and "\n" not in message


def test_verify_names_each_damaged_run_and_the_command_that_runs_it_again(tmp_path):
    """python -m salsa.contract.verify: every run directory checked against its summary; a damaged one is named with
    the difference and its command, which runs it again (exit 1 until then)."""
    def verify():
        return subprocess.run([sys.executable, "-m", "salsa.contract.verify", str(tmp_path / "runs")], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert run_py(f"paths.root={tmp_path}", *FINISHED).returncode == 0
    assert run_py(f"paths.root={tmp_path}", *PAUSED, env={"SALSA_TEST_KILL_AT": "step:15"}).returncode == -9
    [done] = [d for d in (tmp_path / "runs").iterdir() if summary(d)["status"] == "finished"]
    clean = verify()
    assert clean.returncode == 0 and f"ok         {done}: finished, 3 files match" in clean.stdout, clean.stdout
    assert "unfinished" in clean.stdout and "status running" in clean.stdout
    (done / "train_loss.f32").write_bytes((done / "train_loss.f32").read_bytes()[:-4])
    damaged = verify()
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr, damaged.stderr
    [line] = [line for line in damaged.stdout.splitlines() if line.startswith("damaged")]
    assert line.startswith(f"damaged    {done}: train_loss.f32 has 76 bytes, sha256 ")
    command = line.split("run it again with: ")[1]
    assert command == f"python {REPO / 'run.py'} paths.root={tmp_path} {' '.join(FINISHED)}"
    again = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=REPO, env=subprocess_env(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "files do not match summary.json" in again.stderr, again.stderr
    assert verify().returncode == 0
