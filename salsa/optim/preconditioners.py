"""Search directions d, preconditioned norms ||g||^2_P and momentum steps, with foreach kernels.

Adam: m, v as in Adam; P = diag(1 / (sqrt(v_hat) + eps)); d = P g; ||g||^2_P = sum g^2 / (sqrt(v_hat) + eps).
SGD:  P = I; d = g; ||g||^2_P = ||g||^2 (squared).
Both keep a first moment m (beta1 = betas[0]) for the steps taken without a search.
"""
from __future__ import annotations

import torch
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices


def _moment(state: dict, name: str, p: torch.Tensor) -> torch.Tensor:
    if name not in state:
        state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state[name]


class AdamPreconditioner:
    def __init__(self, betas: tuple[float, float], eps: float):
        self.beta1, self.beta2 = betas
        self.eps = eps

    def _corrections(self, k: int) -> tuple[float, float]:
        return 1.0 - self.beta1**k, 1.0 - self.beta2**k

    def update_moments(self, states: list[dict], params: list[torch.Tensor]) -> None:
        grads = [p.grad for p in params]
        m = [_moment(st, "exp_avg", p) for st, p in zip(states, params)]
        v = [_moment(st, "exp_avg_sq", p) for st, p in zip(states, params)]
        torch._foreach_lerp_(m, grads, 1.0 - self.beta1)
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta2)

    def _denominator(self, states: list[dict], k: int) -> list[torch.Tensor]:
        _, bc2 = self._corrections(k)
        denom = torch._foreach_div([st["exp_avg_sq"] for st in states], bc2)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        return denom

    def direction(self, states: list[dict], params: list[torch.Tensor], k: int, grad_sq: float):
        """(d, ||g||^2_P as a 0-dim tensor). d takes one parameter-sized buffer."""
        grads = [p.grad for p in params]
        d = self._denominator(states, k)
        torch._foreach_reciprocal_(d)
        torch._foreach_mul_(d, grads)
        # per tensor, so that no second parameter-sized buffer is needed
        norm_p = torch.stack([torch.dot(g.reshape(-1), d_i.reshape(-1)) for g, d_i in zip(grads, d)]).sum()
        return d, norm_p

    @staticmethod
    def can_fuse(params: list[torch.Tensor]) -> bool:
        """torch's fused AdamW kernel takes the parameters: one device type it supports, one dtype."""
        return (
            len({p.device for p in params}) == 1 and len({p.dtype for p in params}) == 1
            and params[0].device.type in _get_fused_kernels_supported_devices()
        )

    def fused_step(self, states: list[dict], params: list[torch.Tensor], k: int, eta: float, weight_decay: float,
                   non_finite: torch.Tensor) -> None:
        """The moments, then w <- (1 - eta wd) w - eta m_hat / (sqrt(v_hat) + eps), in one kernel that changes
        nothing where non_finite is 1 (eta = 0: the moments only). No device sync."""
        if not params:
            return
        m = [_moment(st, "exp_avg", p) for st, p in zip(states, params)]
        v = [_moment(st, "exp_avg_sq", p) for st, p in zip(states, params)]
        step = torch.full((), float(k), dtype=torch.float32, device=params[0].device)
        torch._fused_adamw_(
            params, [p.grad for p in params], m, v, [], [step] * len(params), lr=eta, beta1=self.beta1,
            beta2=self.beta2, weight_decay=weight_decay, eps=self.eps, amsgrad=False, maximize=False,
            grad_scale=None, found_inf=non_finite,
        )

    def momentum_step(self, states: list[dict], params: list[torch.Tensor], k: int, eta: float) -> None:
        """w <- w - eta * m_hat / (sqrt(v_hat) + eps)."""
        bc1, _ = self._corrections(k)
        denom = self._denominator(states, k)
        torch._foreach_addcdiv_(params, [st["exp_avg"] for st in states], denom, value=-eta / bc1)


class SGDPreconditioner:
    def __init__(self, betas: tuple[float, float], eps: float):
        self.beta1 = betas[0]

    @staticmethod
    def can_fuse(params: list[torch.Tensor]) -> bool:
        return False

    def update_moments(self, states: list[dict], params: list[torch.Tensor]) -> None:
        if self.beta1 > 0:
            m = [_moment(st, "exp_avg", p) for st, p in zip(states, params)]
            torch._foreach_lerp_(m, [p.grad for p in params], 1.0 - self.beta1)

    def direction(self, states: list[dict], params: list[torch.Tensor], k: int, grad_sq: float):
        grads = [p.grad for p in params]
        return grads, torch.tensor(grad_sq)

    def momentum_step(self, states: list[dict], params: list[torch.Tensor], k: int, eta: float) -> None:
        """w <- w - eta * m_hat (plain SGD, w <- w - eta * g, when beta1 = 0)."""
        if self.beta1 > 0:
            bc1 = 1.0 - self.beta1**k
            torch._foreach_add_(params, [st["exp_avg"] for st in states], alpha=-eta / bc1)
        else:
            torch._foreach_add_(params, [p.grad for p in params], alpha=-eta)


PRECONDITIONERS = {"adam": AdamPreconditioner, "sgd": SGDPreconditioner}
