"""The training loop: real shuffled epochs, one closure for every optimizer, full-split evaluation."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from salsa.data import to_device
from salsa.optim.closure import Backpropagated, at_least_float32
from salsa.registry import UserError
from salsa.train.distributed import SINGLE, Ranks

# trainer.precision -> the dtype of the parameters and floating-point inputs (bf16 autocasts float32 parameters;
# fp64 is for numerics checks: its rounding is 2^29 times smaller, see tests/numerics.py)
PRECISIONS = {"fp32": None, "bf16": None, "fp64": torch.float64}
ALIVE_AFTER_S = 10.0    # a step running this long reports its closure evaluations so far, and again every ALIVE_AFTER_S


def memory_format(tcfg, device: torch.device) -> torch.memory_format:
    """trainer.channels_last: the 4-D weights (convolutions) in NHWC, which the convolutions then also give their
    inputs. auto: under bf16 on CUDA, where tensor-core convolutions want it; true/false: always/never. The other
    weights are left as they are, so it changes nothing for models without convolutions."""
    value = tcfg.channels_last
    if value not in ("auto", True, False):
        raise UserError(f"trainer.channels_last={value}: must be auto | true | false")
    on = value is True or (value == "auto" and tcfg.precision == "bf16" and device.type == "cuda")
    return torch.channels_last if on else torch.preserve_format


class StepWatch:
    """Shows that a long step is alive: counts the closure's evaluations within the step (the gradient evaluation
    and each line-search trial forward) and, once a step has run `after_s` seconds, reports the count and the
    seconds every `every_s` seconds through `report(text)` (the progress bar's postfix, or a line in a log)."""

    def __init__(self, report, after_s: float, every_s: float, clock=time.monotonic):
        self.report, self.after_s, self.every_s, self.clock = report, after_s, every_s, clock
        self.start(0)

    def start(self, step: int) -> None:
        self.step, self.trials, self.gradients, self.started = step, 0, 0, self.clock()
        self.due = self.started + self.after_s

    def watch(self, closure):
        def watched():
            grad = torch.is_grad_enabled()
            result = closure()
            self.gradients, self.trials = self.gradients + grad, self.trials + (not grad)
            now = self.clock()
            if now >= self.due:
                self.due = now + self.every_s
                self.report(f"step {self.step}: {self.gradients} gradient evaluations, {self.trials} trial forwards, "
                            f"{now - self.started:.0f} s so far")
            return result
        return watched


@dataclass
class Progress:
    """Everything the loop needs to continue where it stopped (saved in every checkpoint)."""
    epoch: int = 0
    batch: int = 0                                # batches of `epoch` already trained on
    step: int = 0
    loss_sum: float = 0.0                         # sum of the per-step mini-batch losses
    wall_time_s: float = 0.0
    evals: list = field(default_factory=list)     # {"step", "epoch", "split", "loss", "acc"}
    records: int | None = 0                       # lines written to metrics.jsonl (None: not counted)
    numerics_changes: list = field(default_factory=list)  # {"step", "changes"} of resumes allowed to change them

    def state_dict(self) -> dict:
        return asdict(self)


class KillSwitch:
    """Test hook, tests/harness/test_kill_points.py: SALSA_TEST_KILL_AT=<phase>:<n>[:<SIGNAL>] sends this process
    SIGKILL (or SIGTERM, SIGINT, ...) the n-th time the loop passes <phase>: "step" (after an optimizer step,
    before its record), "save" (after a checkpoint), "eval" (after an evaluation's records), "final" (after the
    final record). Unset, it does nothing."""

    def __init__(self, spec: str | None):
        phase, n, name = (spec.split(":") + ["SIGKILL"])[:3] if spec else ("", 0, "SIGKILL")
        self.phase, self.left, self.signal = phase, int(n), getattr(signal, name)

    def __call__(self, phase: str) -> None:
        if phase == self.phase:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), self.signal)


def loss_fn(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification (B, C) and next-token prediction (B, T, V) alike, in float32 at least
    (bf16 logits are upcast, fp64 ones kept)."""
    return F.cross_entropy(at_least_float32(logits.flatten(0, -2)), y.flatten(), reduction=reduction)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def micro_batches(x, y: torch.Tensor, n: int) -> list:
    """(x, y) cut into at most n consecutive slices (x may be a dict of tensors, as text batches are)."""
    ys = [part for part in y.tensor_split(n) if len(part)]
    if isinstance(x, dict):
        parts = {k: v.tensor_split(n) for k, v in x.items()}
        xs = [{k: v[i] for k, v in parts.items()} for i in range(len(ys))]
    else:
        xs = x.tensor_split(n)[:len(ys)]
    return list(zip(xs, ys))


def make_closure(model, x, y, *, weight: float, micro: int, autocast, grad_clip):
    """The step's closure: the mean loss over the batch, times `weight`. With grad enabled (the gradient
    evaluation) it backpropagates each micro-batch in turn, so that one micro-batch's graph is alive at a time,
    clips the summed gradient at grad_clip and returns Backpropagated; under no_grad (a line search's trial
    point) it returns the loss. DDP all-reduces on the last micro-batch only."""
    parts = micro_batches(x, y, micro)
    ddp = getattr(getattr(model, "_orig_mod", model), "no_sync", None)

    def closure():
        grad, total = torch.is_grad_enabled(), None
        for i, (xi, yi) in enumerate(parts):
            skip_sync = grad and ddp is not None and i < len(parts) - 1
            with ddp() if skip_sync else contextlib.nullcontext():
                with autocast():
                    loss = loss_fn(model(xi), yi)
                loss = loss * (weight * len(yi) / len(y)) if len(parts) > 1 or weight != 1 else loss
                if grad:
                    loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
        if not grad:
            return total
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        return Backpropagated(total)
    return closure


@torch.no_grad()
def evaluate(model, split, batch_size: int, device, autocast, ranks: Ranks = SINGLE, dtype=None) -> tuple[float, float]:
    """Mean log loss and accuracy over the WHOLE split (under torchrun each rank takes its share of every
    batch of batch_size and the sums are all-reduced). `model` is the bare module, not the DDP wrapper (whose
    forward synchronises buffers collectively), with rank 0's buffers."""
    ranks.sync_buffers(model)
    was_training = model.training
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    for x, y in split.batches(batch_size, rank=ranks.rank, world_size=ranks.world_size):
        x, y = to_device(x, device, dtype), to_device(y, device)
        with autocast():
            logits = model(x)
        loss += loss_fn(logits, y, reduction="sum").double()
        correct += (logits.argmax(-1) == y).sum()
        count += y.numel()
    model.train(was_training)
    if ranks.active:
        loss, correct, count = ranks.sum(torch.stack([loss, correct.double(), loss.new_tensor(count)])).tolist()
        return loss / count, correct / count
    return loss.item() / count, correct.item() / count


def train(model, data, opt, schedule, tcfg, *, seed, device, progress: Progress, record, checkpoint, ranks: Ranks = SINGLE,
          eval_model=None, step_losses=None):
    """Trains until tcfg.epochs (or tcfg.max_steps); `record(dict)` writes metrics, `checkpoint()` saves,
    `step_losses.append(loss)` keeps every step's mini-batch loss.
    Under torchrun `model` is the DDP module (`eval_model` the module inside), tcfg.batch_size the global batch
    and each rank trains on its share."""
    eval_model = model if eval_model is None else eval_model
    bf16 = tcfg.precision == "bf16"
    dtype = PRECISIONS[tcfg.precision]

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    per_epoch = data.train.num_batches(tcfg.batch_size)
    total = min(tcfg.epochs * per_epoch, tcfg.max_steps or tcfg.epochs * per_epoch)
    splits = {"val": data.val, "test": data.test}
    kill_switch = KillSwitch(os.environ.get("SALSA_TEST_KILL_AT"))

    def log(r):
        record(r)
        progress.records = None if progress.records is None else progress.records + 1

    def save():
        checkpoint()
        kill_switch("save")

    bar = tqdm(total=total, initial=progress.step, disable=not (ranks.main and sys.stderr.isatty()), unit="step")
    def alive(text):  # a long step's progress: on the bar, else (a log file) as a line
        if not bar.disable:
            bar.set_postfix_str(text)
        elif ranks.main:
            print(text, file=sys.stderr, flush=True)
    watch = StepWatch(alive, ALIVE_AFTER_S, ALIVE_AFTER_S)

    def evaluate_all():
        for name, split in splits.items():
            if split is not None:
                loss, acc = evaluate(eval_model, split, tcfg.eval_batch_size, device, autocast, ranks, dtype)
                progress.evals.append(dict(step=progress.step, epoch=progress.epoch, split=name, loss=loss, acc=acc))
                log({"kind": "eval", **progress.evals[-1]})
        kill_switch("eval")

    model.train()
    last_saved = time.monotonic()
    while progress.step < total:
        started, every = time.perf_counter(), False
        for x, y in data.train.batches(tcfg.batch_size, train=True, seed=seed, epoch=progress.epoch, start=progress.batch,
                                       rank=ranks.rank, world_size=ranks.world_size):
            x, y = to_device(x, device, dtype), to_device(y, device)
            rows = min(tcfg.batch_size, len(data.train) - progress.batch * tcfg.batch_size)  # the global batch
            # DDP and the optimizers average over ranks: a rank's mean loss weighted by its share of the global
            # batch makes that average the global batch's mean loss (and gradient) also when the shares differ
            weight = len(y) * ranks.world_size / rows
            closure = make_closure(model, x, y, weight=weight, micro=tcfg.micro_batches, autocast=autocast,
                                   grad_clip=tcfg.grad_clip)
            watch.start(progress.step + 1)
            closure = watch.watch(closure)
            t0 = time.perf_counter()
            opt.step(closure)
            synchronize(device)
            step_time = time.perf_counter() - t0
            if schedule is not None:
                schedule.step()
            stats = opt.last_step_stats()
            if step_losses is not None:
                step_losses.append(stats["loss"])
            progress.step, progress.batch, progress.loss_sum = progress.step + 1, progress.batch + 1, progress.loss_sum + stats["loss"]
            kill_switch("step")
            if not bar.disable:
                bar.update()
                bar.set_postfix(loss=f"{stats['loss']:.4f}", step_size=f"{stats['step_size']:.3g}", refresh=False)
            if progress.step % tcfg.log_every == 0:
                log({"kind": "step", "step": progress.step, "epoch": progress.step / per_epoch,
                     **{k: stats[k] for k in ("loss", "step_size", "line_search", "backtracks", "forwards", "backwards")},
                     "step_time_s": step_time, "samples_per_s": rows / step_time})
            every = tcfg.checkpoint_every and progress.step % tcfg.checkpoint_every == 0
            if progress.step == total or progress.batch == per_epoch:
                break  # the epoch's end saves after its evaluation
            if every:
                progress.wall_time_s += time.perf_counter() - started
                started = time.perf_counter()
                save()
                last_saved = time.monotonic()
        if progress.batch == per_epoch:
            progress.epoch, progress.batch = progress.epoch + 1, 0
            evaluate_all()
        progress.wall_time_s += time.perf_counter() - started
        # at the end of an epoch on checkpoint_every's steps, else only when checkpoint_interval_s has passed (tiny
        # epochs would spend their time saving); rank 0's clock decides, since every rank takes part in a checkpoint
        if (progress.step == total or every
                or ranks.from_main(time.monotonic() - last_saved >= tcfg.checkpoint_interval_s)):
            save()
            last_saved = time.monotonic()
    bar.close()
    if not progress.evals or progress.evals[-1]["step"] != progress.step:
        evaluate_all()
    final_train_loss, _ = evaluate(eval_model, data.train, tcfg.eval_batch_size, device, autocast, ranks, dtype)
    log({"kind": "final", "step": progress.step, "final_train_loss": final_train_loss})
    kill_switch("final")
    return final_train_loss
