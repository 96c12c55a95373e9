"""The training loop: real shuffled epochs, one closure for every optimizer, full-split evaluation."""
from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from tqdm import tqdm

from salsa.contract.signals import raise_pending
from salsa.data import to_device
from salsa.optim.base import ClosureLineSearch
from salsa.optim.closure import Backpropagated, ClosureOptimizer, at_least_float32
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


def loss_fn(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification (B, C) and next-token prediction (B, T, V) alike, in float32 at least
    (bf16 logits are upcast, fp64 ones kept)."""
    return F.cross_entropy(at_least_float32(logits.flatten(0, -2)), y.flatten(), reduction=reduction)


def micro_batches(x, y: torch.Tensor, n: int) -> list:
    """(x, y) cut into at most n consecutive slices (x may be a dict of tensors, as text batches are)."""
    if n == 1:
        return [(x, y)]
    ys = [part for part in y.tensor_split(n) if len(part)]
    if isinstance(x, dict):
        parts = {k: v.tensor_split(n) for k, v in x.items()}
        xs = [{k: v[i] for k, v in parts.items()} for i in range(len(ys))]
    else:
        xs = x.tensor_split(n)[:len(ys)]
    return list(zip(xs, ys))


def make_closure(net, x, y, *, weight: float, micro: int, autocast, grad_clip):
    """The step's closure: the mean loss over the batch, times `weight`. With grad enabled (the gradient
    evaluation) it backpropagates each micro-batch in turn, so that one micro-batch's graph is alive at a time,
    clips the summed gradient at grad_clip and returns Backpropagated; under no_grad (a line search's trial
    point) it returns the loss. DDP all-reduces on the last micro-batch only."""
    parts = micro_batches(x, y, micro)
    ddp = getattr(getattr(net, "_orig_mod", net), "no_sync", None) if len(parts) > 1 else None

    def closure():
        grad, total = torch.is_grad_enabled(), None
        for i, (xi, yi) in enumerate(parts):
            skip_sync = grad and ddp is not None and i < len(parts) - 1
            with ddp() if skip_sync else contextlib.nullcontext():
                with autocast():
                    loss = loss_fn(net(xi), yi)
                loss = loss * (weight * len(yi) / len(y)) if len(parts) > 1 or weight != 1 else loss
                if grad:
                    loss.backward()
            total = loss.detach() if total is None else total + loss.detach()
        if not grad:
            return total
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        return Backpropagated(total)
    return closure


@torch.no_grad()
def evaluate(net, split, batch_size: int, device, autocast, ranks: Ranks = SINGLE, dtype=None) -> tuple[float, float]:
    """Mean log loss and accuracy over the WHOLE split (under torchrun each rank takes its share of every
    batch of batch_size and the sums are all-reduced). `net` is the bare module, not the DDP wrapper (whose
    forward synchronises buffers collectively), with rank 0's buffers."""
    ranks.sync_buffers(net)
    was_training = net.training
    net.eval()
    loss = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    for x, y in split.batches(batch_size, rank=ranks.rank, world_size=ranks.world_size):
        x, y = to_device(x, device, dtype), to_device(y, device)
        with autocast():
            logits = net(x)
        loss += loss_fn(logits, y, reduction="sum").double()
        correct += (logits.argmax(-1) == y).sum()
        count += y.numel()
    net.train(was_training)
    if ranks.active:
        loss, correct, count = ranks.sum(torch.stack([loss, correct.double(), loss.new_tensor(count)])).tolist()
        return loss / count, correct / count
    return loss.item() / count, correct.item() / count


def step_budget(tcfg, batches_per_epoch: int) -> int:
    """The run's steps: trainer.epochs of batches_per_epoch, cut at trainer.max_steps (null: no cut)."""
    steps = tcfg.epochs * batches_per_epoch
    return min(steps, tcfg.max_steps) if tcfg.max_steps else steps


class Checkpoints:
    """Decides when the loop saves, and saves: on every `every`-th step (0: never for that reason); at the end of
    an epoch once `interval_s` has passed since the last save (tiny epochs would spend their time saving), rank 0's
    clock deciding, since every rank takes part in a checkpoint; and at the last step."""

    def __init__(self, save, *, every: int, interval_s: float, ranks: Ranks = SINGLE, clock=time.monotonic):
        self.save, self.every, self.interval_s, self.ranks, self.clock = save, every, interval_s, ranks, clock
        self.last = clock()

    def due(self, step: int, *, epoch_end: bool, last: bool) -> bool:
        if last or (self.every and step % self.every == 0):
            return True
        return epoch_end and self.ranks.from_main(self.clock() - self.last >= self.interval_s)

    def __call__(self) -> None:
        self.save()
        self.last = self.clock()


def no_hook(phase: str) -> None:
    """The loop's phase hook (`on_phase`): called after a step ("step"), a checkpoint ("save"), an evaluation's
    records ("eval") and the final record ("final"); tests hand in one that kills the process there."""


def autocast_for(tcfg, device: torch.device):
    bf16 = tcfg.precision == "bf16"
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def progress_bar(total: int, start: int, ranks: Ranks):
    """tqdm on rank 0 in a terminal, and a StepWatch that shows a long step's progress on it (in a log file: as lines)."""
    bar = tqdm(total=total, initial=start, disable=not (ranks.main and sys.stderr.isatty()), unit="step")

    def alive(text):
        if not bar.disable:
            bar.set_postfix_str(text)
        elif ranks.main:
            print(text, file=sys.stderr, flush=True)
    return bar, StepWatch(alive, ALIVE_AFTER_S, ALIVE_AFTER_S)


@dataclass
class TrainingState:
    """What training changes: what a checkpoint saves and a resume restores."""
    net: torch.nn.Module                 # the module (its weights are what a checkpoint holds)
    opt: ClosureLineSearch | ClosureOptimizer  # on the closure protocol (salsa.optim)
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    progress: Progress
    ddp: torch.nn.Module | None = None   # under torchrun: `net` in DistributedDataParallel, what a step calls


class UnreadLosses:
    """The losses of the steps the host has not read yet, as the optimizer's last_step_loss() gives them: a float,
    or a 0-d tensor still on the device. read() waits for the device once for all of them."""

    def __init__(self):
        self.losses = []

    def append(self, loss) -> None:
        self.losses.append(loss)

    def read(self) -> list[float]:
        on_device = [loss for loss in self.losses if isinstance(loss, torch.Tensor)]
        values = iter(torch.stack(on_device).tolist() if on_device else ())
        read = [next(values) if isinstance(loss, torch.Tensor) else loss for loss in self.losses]
        self.losses = []
        return read


class StepClock:
    """The time the loop spends in its steps (the data, the closure, the optimizer), between two log records:
    CUDA events on a GPU (the device's clock), the host's clock otherwise. pause() where the loop waits for the
    device anyway (a log record, an evaluation, a checkpoint), resume() after, so neither an evaluation nor a
    checkpoint counts as step time."""

    def __init__(self, device: torch.device):
        self.cuda, self.started = device.type == "cuda", None
        self.seconds, self.steps, self.rows = 0.0, 0, 0

    def _now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def resume(self) -> None:
        self.started = self._now()

    def pause(self) -> None:
        end = self._now()
        if self.cuda:
            end.synchronize()
            self.seconds += self.started.elapsed_time(end) / 1000
        else:
            self.seconds += end - self.started

    def count(self, rows: int) -> None:
        self.steps, self.rows = self.steps + 1, self.rows + rows

    def take(self) -> dict:
        """The mean step time and the samples per second of the steps since the last take (while not paused)."""
        times = {"step_time_s": self.seconds / self.steps, "samples_per_s": self.rows / self.seconds}
        self.seconds, self.steps, self.rows = 0.0, 0, 0
        return times


class RecordFiles(Protocol):
    """Where the loop's records go: metrics.jsonl's lines and every step's mini-batch loss."""
    def record(self, r: dict) -> None: ...
    def step_loss(self, loss: float) -> None: ...


def train(state: TrainingState, data, tcfg, *, seed, device, files: RecordFiles, checkpoints: Checkpoints,
          ranks: Ranks = SINGLE, on_phase=no_hook) -> float:
    """Trains until tcfg.epochs (or tcfg.max_steps) and returns the final training loss. `checkpoints` saves when
    due. Under torchrun tcfg.batch_size is the global batch, each rank trains on its share through `state.ddp`, and
    evaluations use `state.net` (whose forward does not synchronise buffers collectively).
    The steps do not wait for the device: their losses stay there until a log record, an evaluation, a checkpoint
    or the end (or a failure) reads them all at once into `files` and the running sum (docs/run-directory.md)."""
    progress, opt, schedule = state.progress, state.opt, state.schedule
    step_net = state.net if state.ddp is None else state.ddp
    step_net = torch.compile(step_net) if tcfg.compile else step_net
    eval_net = (torch.compile(state.net) if tcfg.compile else state.net) if state.ddp is not None else step_net
    autocast, dtype = autocast_for(tcfg, device), PRECISIONS[tcfg.precision]
    # plain values: reading a DictConfig in every step costs more than some models' steps
    batch_size, log_every, micro, grad_clip = tcfg.batch_size, tcfg.log_every, tcfg.micro_batches, tcfg.grad_clip
    rows_in_train = len(data.train)
    per_epoch = data.train.num_batches(batch_size)
    total = step_budget(tcfg, per_epoch)
    bar, watch = progress_bar(total, progress.step, ranks)
    unread, clock = UnreadLosses(), StepClock(device)
    lap = time.perf_counter()

    def log(r):
        files.record(r)
        progress.records = None if progress.records is None else progress.records + 1

    def take_losses():
        """The unread losses into the records and the running sum, up to the first non-finite one: a step the
        optimizer's NonFiniteError (on its way) names, where the loop goes back to the step before it."""
        values = unread.read()
        kept = next((i for i, value in enumerate(values) if not math.isfinite(value)), len(values))
        loss_sum = progress.loss_sum
        for value in values[:kept]:
            files.step_loss(value)
            loss_sum += value
        back = len(values) - kept
        progress.step, progress.batch, progress.loss_sum = progress.step - back, progress.batch - back, loss_sum

    def wait() -> dict | None:
        """Waits for the device: the optimizer's checks of the steps that did not wait (a non-finite one raises
        NonFiniteError), the losses read; the last step's statistics (None: no step since the last wait)."""
        clock.pause()
        if not unread.losses:
            return None
        stats = opt.last_step_stats()
        take_losses()
        if not bar.disable:
            bar.update(progress.step - bar.n)
        return stats

    def save():  # the time spent training so far goes into the checkpoint; writing it is not training time
        nonlocal lap
        progress.wall_time_s += time.perf_counter() - lap
        checkpoints()
        on_phase("save")
        lap = time.perf_counter()

    def evaluate_all():
        for name, split in (("val", data.val), ("test", data.test)):
            if split is not None:
                loss, acc = evaluate(eval_net, split, tcfg.eval_batch_size, device, autocast, ranks, dtype)
                progress.evals.append(dict(step=progress.step, epoch=progress.epoch, split=name, loss=loss, acc=acc))
                log({"kind": "eval", **progress.evals[-1]})
        on_phase("eval")

    step_net.train()
    clock.resume()
    try:
        while progress.step < total:
            for x, y in data.train.batches(batch_size, train=True, seed=seed, epoch=progress.epoch, start=progress.batch,
                                           rank=ranks.rank, world_size=ranks.world_size):
                # step
                x, y = to_device(x, device, dtype), to_device(y, device)
                rows = min(batch_size, rows_in_train - progress.batch * batch_size)  # the global batch
                # DDP and the optimizers average over ranks: a rank's mean loss weighted by its share of the global
                # batch makes that average the global batch's mean loss (and gradient) also when the shares differ
                closure = make_closure(step_net, x, y, weight=len(y) * ranks.world_size / rows, micro=micro,
                                       autocast=autocast, grad_clip=grad_clip)
                watch.start(progress.step + 1)
                opt.step(watch.watch(closure))
                if schedule is not None:
                    schedule.step()
                unread.append(opt.last_step_loss())
                clock.count(rows)
                progress.step, progress.batch = progress.step + 1, progress.batch + 1
                on_phase("step")
                raise_pending()
                # log
                if progress.step % log_every == 0:
                    stats = wait()
                    log({"kind": "step", "step": progress.step, "epoch": progress.step / per_epoch,
                         **{k: stats[k] for k in ("loss", "step_size", "line_search", "backtracks", "forwards", "backwards")},
                         **clock.take()})
                    if not bar.disable:
                        bar.set_postfix(loss=f"{stats['loss']:.4f}", step_size=f"{stats['step_size']:.3g}")
                    clock.resume()
                if progress.step == total or progress.batch == per_epoch:
                    break  # the epoch's end saves after its evaluation
                # checkpoint (mid-epoch)
                if checkpoints.due(progress.step, epoch_end=False, last=False):
                    wait()
                    save()
                    clock.resume()
            wait()
            # evaluate (the epoch's end)
            if progress.batch == per_epoch:
                progress.epoch, progress.batch = progress.epoch + 1, 0
                evaluate_all()
            # checkpoint (the epoch's or the run's end)
            if checkpoints.due(progress.step, epoch_end=True, last=progress.step == total):
                save()
            clock.resume()
    except BaseException:
        # the steps before the failure or the interruption keep their losses (a broken device keeps them unread)
        with contextlib.suppress(Exception):
            take_losses()
        raise
    bar.close()
    progress.wall_time_s += time.perf_counter() - lap
    # the final evaluation and the final pass over the training set
    if not progress.evals or progress.evals[-1]["step"] != progress.step:
        evaluate_all()
    final_train_loss, _ = evaluate(eval_net, data.train, tcfg.eval_batch_size, device, autocast, ranks, dtype)
    log({"kind": "final", "step": progress.step, "final_train_loss": final_train_loss})
    on_phase("final")
    return final_train_loss
