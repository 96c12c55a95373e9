"""The closure protocol shared by every optimizer here.

`loss = opt.step(closure)`: `closure()` returns the mini-batch loss and does NOT call backward.
The optimizer zeroes the gradients and calls backward on the first evaluation; line searches then
evaluate trial points with `closure()` under torch.no_grad, each seeing exactly the randomness
(dropout masks) of the gradient evaluation and leaving module buffers (BatchNorm running
statistics) as that single forward left them. Under torch.distributed every loss is averaged over
the ranks, so all replicas take the same decisions.

Gradient accumulation: a closure may call backward itself when grad is enabled (one micro-batch's
graph at a time) and return `Backpropagated(loss)` with the detached total loss; the optimizer then
uses the gradients as they are. Under torch.no_grad (the trial points) it returns the loss as usual.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn

Closure = Callable[[], "torch.Tensor | Backpropagated"]


class Backpropagated(NamedTuple):
    """A closure's result when it has accumulated the gradients itself: `loss` is the detached loss."""
    loss: torch.Tensor


class NonFiniteError(FloatingPointError):
    """The loss or a gradient is NaN or infinite; the parameters were left as they were."""


def _closure_required(name: str) -> TypeError:
    return TypeError(
        f"{name}.step needs a closure that returns the mini-batch loss without calling backward(), "
        f"e.g. opt.step(lambda: loss_fn(model(x), y))"
    )


def _checked_loss(loss, name: str) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TypeError(f"{name}: the closure must return the loss as a one-element tensor, got {type(loss).__name__}")
    if not loss.requires_grad:
        raise RuntimeError(
            f"{name}: the closure's loss does not require grad. Return the loss tensor itself "
            "(not loss.item(), not a detached tensor) and do not call backward() in the closure: "
            "the optimizer calls it."
        )
    return loss


def loss_of(result) -> torch.Tensor:
    """The loss tensor of a closure's result (a tensor or Backpropagated)."""
    return result.loss if isinstance(result, Backpropagated) else result


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def global_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over the ranks of the default process group (identity outside torch.distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= dist.get_world_size()
    return values


def rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The CPU generator's state and, if CUDA is in use, every CUDA device's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)


class BufferGuard:
    """Restores the buffers of the modules a closure runs after trial forwards.

    With `model` given, its buffers are guarded. Without it, the modules that own buffers are
    found on the first gradient evaluation (a global forward pre-hook, removed straight after), so
    a user who forgets `model=` still gets BatchNorm statistics that only the gradient forward
    updated.
    """

    def __init__(self, model: nn.Module | None):
        self._modules: list[nn.Module] | None = None if model is None else [model]

    @contextlib.contextmanager
    def discover(self):
        if self._modules is not None:
            yield
            return
        found: dict[int, nn.Module] = {}

        def note(module, _args):
            if module._buffers:
                found.setdefault(id(module), module)

        handle = nn.modules.module.register_module_forward_pre_hook(note)
        try:
            yield
        finally:
            handle.remove()
        self._modules = list(found.values())

    def buffers(self) -> list[torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}
        for module in self._modules or []:
            for buffer in module.buffers():
                seen.setdefault(id(buffer), buffer)
        return list(seen.values())

    @contextlib.contextmanager
    def restored(self):
        buffers = self.buffers()
        saved = [b.clone() for b in buffers]
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)


def backward_once(closure: Closure | None, zero_grad: Callable[[], None], name: str) -> torch.Tensor:
    """zero_grad, loss = closure(), loss.backward() (unless the closure returned Backpropagated); returns the detached loss."""
    if closure is None:
        raise _closure_required(name)
    zero_grad()
    with torch.enable_grad():
        result = closure()
    if isinstance(result, Backpropagated):
        return result.loss.detach()
    loss = _checked_loss(result, name)
    loss.backward()
    return loss.detach()


class ClosureEvaluator:
    """Evaluates a closure once with backward, then at trial points with the same randomness."""

    def __init__(self, name: str, model: nn.Module | None):
        self.name = name
        self.guard = BufferGuard(model)
        self._rng_before = self._rng_after = None

    def with_grad(self, closure: Closure | None, zero_grad: Callable[[], None]) -> torch.Tensor:
        self._rng_before = rng_state()
        with self.guard.discover():
            loss = backward_once(closure, zero_grad, self.name)
        self._rng_after = rng_state()
        return loss

    @contextlib.contextmanager
    def trials(self):
        """Around a line search: buffers and RNG end as the gradient evaluation left them."""
        try:
            with self.guard.restored():
                yield
        finally:
            set_rng_state(self._rng_after)

    @torch.no_grad()
    def trial(self, closure: Closure) -> float:
        """The (rank-averaged) loss at the current parameters, with the gradient evaluation's RNG."""
        set_rng_state(self._rng_before)
        return global_mean(at_least_float32(loss_of(closure()).detach())).item()


class Health(NamedTuple):
    """A step's loss and squared gradient norm on the device (rank means, not yet read by the host)."""
    values: torch.Tensor  # [loss, ||g||^2], at least float32
    norms: list[torch.Tensor]  # per-tensor gradient norms, for the error message

    def non_finite(self) -> torch.Tensor:
        """1.0 where the loss or a gradient is NaN or infinite, else 0.0: a float32 tensor on the device, as torch's
        fused optimizers take their found_inf."""
        return (~torch.isfinite(self.values)).any().to(torch.float32)


def loss_and_grad_sq(loss: torch.Tensor, params: list[torch.Tensor]) -> Health:
    """The rank-mean loss and squared gradient norm, computed on the device without waiting for it."""
    norms = torch._foreach_norm([p.grad for p in params]) if params else []
    loss = at_least_float32(loss.reshape(()))
    grad_sq = torch.stack(norms).to(loss.dtype).square().sum() if norms else loss.new_zeros(())
    return Health(global_mean(torch.stack([loss, grad_sq])), norms)


def checked(health: Health, params: list[torch.Tensor], step: int, name: str, after: str = "") -> tuple[float, float]:
    """(loss, squared gradient norm) read by the host (one device sync); raises NonFiniteError naming the step."""
    loss_value, grad_sq_value = health.values.tolist()
    if math.isfinite(loss_value) and math.isfinite(grad_sq_value):
        return loss_value, grad_sq_value
    bad = [i for i, n in enumerate(health.norms) if not torch.isfinite(n)]
    where = (
        f"the loss is {loss_value}"
        if not math.isfinite(loss_value)
        else f"the gradients of {len(bad)} parameter tensor(s) are not finite "
        f"(indices {bad[:5]}, shapes {[tuple(params[i].shape) for i in bad[:5]]})"
    )
    raise NonFiniteError(
        f"{name} step {step}: {where}. {after or 'The parameters and the optimizer state were left as they were before this step.'} "
        "Check the data and the model (torch.autograd.detect_anomaly() finds the operation), or lower the initial step size."
    )


def checked_loss(loss: torch.Tensor, step: int, name: str) -> float:
    """The rank-mean loss read by the host (one device sync); raises NonFiniteError naming the step. In one
    process the loss is its own rank mean, read as it is (the same float: a float32 or wider copy is exact)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        value = loss.item()
        if math.isfinite(value):
            return value
    return checked(loss_and_grad_sq(loss, []), [], step, name)[0]


class ClosureOptimizer:
    """Drives any torch.optim optimizer (Adam, SGD, ...) through the same closure protocol.

    `.optimizer` is the wrapped optimizer (give it to LR schedulers); the reported step size is the
    learning rate of the first parameter group. A non-finite loss raises NonFiniteError before the
    update; the gradients are not checked.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._name = type(optimizer).__name__
        self._totals = {"steps": 0, "forwards": 0, "backwards": 0, "line_searches": 0, "backtracks": 0}
        self._last: dict = {}

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def step_size(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, closure: Closure | None = None) -> torch.Tensor:
        step = self._totals["steps"] + 1
        loss = backward_once(closure, lambda: self.optimizer.zero_grad(set_to_none=True), self._name)
        # the loss only: a pass over the gradients would slow the baselines, which never had such a check
        loss_value = checked_loss(loss, step, self._name)
        self.optimizer.step()
        self._totals.update(steps=step, forwards=self._totals["forwards"] + 1, backwards=self._totals["backwards"] + 1)
        self._last = dict(step=step, loss=loss_value, step_size=self.step_size, line_search=False,
                          backtracks=0, forwards=1, backwards=1, h=None, s=None)
        return loss

    def last_step_stats(self) -> dict:
        return dict(self._last)

    def last_step_loss(self) -> float:
        """The last step's loss, read and checked by the step itself."""
        return self._last["loss"]

    def totals(self) -> dict:
        return dict(self._totals)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "totals": dict(self._totals)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self._totals.update(state_dict["totals"])


def flat_params(groups: Iterable[dict]) -> list[tuple[int, torch.Tensor]]:
    """(group index, parameter) for every parameter that received a gradient this step."""
    out = []
    for index, group in enumerate(groups):
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("SaLSa/SLS do not support sparse gradients")
            out.append((index, p))
    return out
