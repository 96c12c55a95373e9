"""A stop signal (SIGTERM, SIGINT) that arrives while the run writes one of its files is honoured as soon as that write
has ended: the file is whole, the run stops with its usual line and exit status, and the same command resumes to
the uninterrupted run's files bit for bit. The signal is sent from inside the write itself (tests/faulty_run.py,
SALSA_TEST_KILL_AT=write:<file>:<n>:<SIGNAL>: the n-th write of that file, after its first bytes), in run.py as a
user runs it."""
import json
import os
import signal

import pytest
import torch
from conftest import run_py
from test_kill_points import ARGS, lines, untimed

from salsa.contract.signals import signals_held, stops_raise


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's directory."""
    root = tmp_path_factory.mktemp("reference")
    assert run_py(f"paths.root={root}", *ARGS).returncode == 0
    return next((root / "runs").iterdir())


# ARGS (test_kill_points'): 3 epochs of 20 steps, checkpoints at steps 10, 20 (after the epoch's evaluation), ..., 60,
# records every 5 steps. The write the signal arrives in -> the step the run stops at (the last checkpoint's step: the step it resumes from)
AT_THE_WRITE = {
    "write:checkpoint.pt:1:SIGTERM": (10, 10),      # the first checkpoint, mid-epoch
    "write:checkpoint.pt:2:SIGINT": (20, 20),       # the checkpoint after the first epoch's evaluation
    "write:checkpoint.pt:6:SIGTERM": (60, 60),      # the last checkpoint, before the final evaluation
    "write:train_loss.f32:2:SIGINT": (20, 20),      # the step losses written just before a checkpoint
    "write:metrics.jsonl:3:SIGTERM": (15, 10),      # a step record between two checkpoints
    "write:metrics.jsonl:5:SIGINT": (20, 10),       # the first evaluation's val record
}


def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def assert_same_run(run_dir, reference):
    """The uninterrupted run's files: every record (timings aside), every step's loss, the summary's numbers and the
    final weights, bit for bit."""
    assert lines(run_dir) == lines(reference)
    assert (run_dir / "train_loss.f32").read_bytes() == (reference / "train_loss.f32").read_bytes()
    got, ref = summary(run_dir), summary(reference)
    assert got["status"] == "finished" and got["metrics"] == ref["metrics"]
    assert untimed(got["totals"]) == untimed(ref["totals"])
    got_w, ref_w = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (run_dir, reference))
    assert got_w.keys() == ref_w.keys() and all(torch.equal(got_w[k], ref_w[k]) for k in ref_w)


def one_error_line(out) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    [line] = [line for line in out.stderr.splitlines() if line.startswith("error")]
    return line


@pytest.mark.parametrize("at", AT_THE_WRITE)
def test_a_signal_at_a_write_is_honoured_after_it_and_the_run_resumes_exactly(at, reference, tmp_path):
    stop_step, checkpoint_step = AT_THE_WRITE[at]
    name = at.split(":")[-1]
    stopped = run_py(f"paths.root={tmp_path}", *ARGS, env={"SALSA_TEST_KILL_AT": at})
    assert stopped.returncode == 128 + getattr(signal, name), stopped.stderr
    assert one_error_line(stopped) == (f"error: stopped by {name} at step {stop_step}; run the same command again to "
                                       "resume from the last checkpoint")
    run_dir = tmp_path / "runs" / reference.name
    assert summary(run_dir)["status"] == "interrupted" and f"stopped by {name}" in summary(run_dir)["error"]
    assert not list(run_dir.glob(".*.tmp"))
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)  # whole: it loads, at the step it was written
    assert saved["progress"]["step"] == checkpoint_step
    resumed = run_py(f"paths.root={tmp_path}", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(run_dir, reference)


def test_a_signal_at_the_final_summary_stops_after_it_says_finished(reference, tmp_path):
    stopped = run_py(f"paths.root={tmp_path}", *ARGS, env={"SALSA_TEST_KILL_AT": "write:summary.json:2:SIGTERM"})
    assert stopped.returncode == 143, stopped.stderr
    assert one_error_line(stopped) == ("error: stopped by SIGTERM after the run finished at step 60 (summary.json says "
                                       "finished: nothing to resume)")
    run_dir = tmp_path / "runs" / reference.name
    assert_same_run(run_dir, reference)
    again = run_py(f"paths.root={tmp_path}", *ARGS)
    assert again.returncode == 0 and "finished earlier" in again.stdout, again.stderr


def test_a_signal_at_the_first_summary_leaves_nothing_and_the_run_starts_again(reference, tmp_path):
    stopped = run_py(f"paths.root={tmp_path}", *ARGS, env={"SALSA_TEST_KILL_AT": "write:summary.json:1:SIGINT"})
    assert stopped.returncode == 130, stopped.stderr
    assert one_error_line(stopped) == "error: interrupted before training started"
    assert not list((tmp_path / "runs").iterdir())
    resumed = run_py(f"paths.root={tmp_path}", *ARGS)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "runs" / reference.name, reference)


def test_a_signal_ends_a_multirun(tmp_path):
    """The sweep stops where the signal found it (exit 143): the runs after it are not started."""
    out = run_py(f"paths.root={tmp_path}", "trainer.epochs=1", "trainer.device=cpu", "trainer.checkpoint_every=10",
                 "seed=0,1", "--multirun", env={"SALSA_TEST_KILL_AT": "write:checkpoint.pt:1:SIGTERM"})
    assert out.returncode == 143, out.stderr
    assert one_error_line(out).startswith("error: stopped by SIGTERM at step 10; ")
    [run_dir] = (tmp_path / "runs").iterdir()
    assert summary(run_dir)["status"] == "interrupted" and summary(run_dir)["seed"] == 0


def test_signals_held_delivers_once_the_block_ends():
    """In this process: a signal inside the block reaches its handler only at the block's end (once, also when the
    block failed, through a nested hold); an ignored signal stays ignored."""
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        with signals_held():
            with signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                assert got == []
            assert got == []
        assert got == [signal.SIGTERM]
        with pytest.raises(OSError), signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            raise OSError("the write failed")
        assert got == [signal.SIGTERM] * 2
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_stops_raise_turns_sigterm_into_keyboard_interrupt_after_a_held_write():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as stopped, stops_raise():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            written = True
    assert written and stopped.value.args == (signal.SIGTERM,)
    assert signal.getsignal(signal.SIGTERM) is previous
