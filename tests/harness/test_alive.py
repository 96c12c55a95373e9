"""A long step shows that the run is alive: the closure evaluations so far (the gradient evaluation, the line search's
trial forwards) and the seconds, on the progress bar or, in a log, as lines; trainer.channels_last's choices."""
import json

import pytest
import torch
from conftest import compose_cfg

from salsa.registry import UserError
from salsa.train import loop
from salsa.train.runner import run


def test_step_watch_reports_after_the_delay_and_then_at_its_interval():
    now, seen = [0.0], []
    watch = loop.StepWatch(seen.append, after_s=10, every_s=5, clock=lambda: now[0])
    watch.start(7)
    evaluation = watch.watch(lambda: torch.tensor(1.0))
    evaluation()                                      # the gradient evaluation (grad enabled)
    with torch.no_grad():
        for t in (4, 11, 13, 16.5):
            now[0] = t
            assert evaluation() == 1.0
    assert seen == ["step 7: 1 gradient evaluations, 2 trial forwards, 11 s so far",
                    "step 7: 1 gradient evaluations, 4 trial forwards, 16 s so far"]
    watch.start(8)
    evaluation()
    assert len(seen) == 2                              # a new step starts its own clock


def test_the_loop_reports_every_closure_evaluation_of_a_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(loop, "ALIVE_AFTER_S", 0.0)   # report at once: every evaluation of every step
    cfg = compose_cfg("trainer.device=cpu", "trainer.epochs=1", "trainer.max_steps=3", "trainer.log_every=1",
                      f"paths.root={tmp_path}")
    summary, run_dir, _ = run(cfg)
    lines = capsys.readouterr().err.splitlines()
    steps = [json.loads(r) for r in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in (r for r in steps if r["kind"] == "step"):
        last = [line for line in lines if line.startswith(f"step {record['step']}: ")][-1]
        assert last.startswith(f"step {record['step']}: 1 gradient evaluations, {record['forwards'] - 1} trial forwards, ")
    assert summary["totals"]["forwards"] > summary["totals"]["steps"] == 3


@pytest.mark.parametrize("value,precision,device,expected", [
    ("auto", "bf16", "cuda", torch.channels_last), ("auto", "fp32", "cuda", torch.preserve_format),
    ("auto", "bf16", "cpu", torch.preserve_format), (True, "fp32", "cpu", torch.channels_last),
    (False, "bf16", "cuda", torch.preserve_format)])
def test_channels_last_choices(value, precision, device, expected):
    cfg = compose_cfg(f"trainer.channels_last={str(value).lower()}", f"trainer.precision={precision}")
    assert loop.memory_format(cfg.trainer, torch.device(device)) == expected


def test_channels_last_conv_weights_train(tmp_path):
    summary, _, _ = run(compose_cfg("dataset=digits", "model=cnn", "model.width=4", "trainer.channels_last=true",
                                    "trainer.device=cpu", "trainer.max_steps=3", f"paths.root={tmp_path}"))
    assert summary["status"] == "finished"
    with pytest.raises(UserError, match="trainer.channels_last=yes: must be auto | true | false"):
        loop.memory_format(compose_cfg("trainer.channels_last=yes").trainer, torch.device("cpu"))
