"""Stochastic gradient descent, optionally with (Nesterov) momentum: ``torch.optim.SGD``."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _add, _call_closure, _check_kernel_flags, _check_step_flags


def sgd_update(param: np.ndarray, grad: np.ndarray, momentum_buffer: np.ndarray | None, *,
               lr: float, momentum: float, dampening: float, weight_decay: float,
               nesterov: bool, maximize: bool) -> np.ndarray | None:
    r"""One SGD step on one parameter, in place; returns the momentum buffer (None without momentum).

    .. math::
        \begin{aligned}
        g_t &\leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) \quad (-\text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} && \text{if } \lambda \neq 0 \\
        b_t &\leftarrow \begin{cases} g_t & t = 1 \\ \mu\, b_{t-1} + (1-\tau)\, g_t & t > 1 \end{cases}
            && \text{if } \mu \neq 0 \\
        g_t &\leftarrow g_t + \mu\, b_t \text{ (nesterov)} \quad\text{or}\quad g_t \leftarrow b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g_t
        \end{aligned}

    ``param`` and ``momentum_buffer`` are updated in place; ``grad`` is never written.
    Each multiply-add rounds once, as PyTorch's fused multiply-add kernels do, so float32 runs give
    PyTorch's bits.
    Pass ``momentum_buffer=None`` on a parameter's first step.

    .. note::
        The momentum buffer starts as a *copy of the first gradient*, not zeros, so dampening
        :math:`\tau` only applies from the second step on.  And the learning rate multiplies the
        buffer (:math:`\theta \mathrel{-}= \gamma b`), unlike Sutskever et al.'s
        :math:`b = \mu b + \gamma g`; the two differ when the learning rate changes.
    """
    # Each line is one torch op, rounded as its CPU kernel rounds (see optimizer.py and docs/numerics.md).
    grad = -grad if maximize else grad
    if weight_decay != 0:
        grad = _add(grad, param, weight_decay)                          # grad.add(param, alpha=wd)
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.copy()
        else:
            momentum_buffer *= float(momentum)                          # buf.mul_(momentum)
            _add(momentum_buffer, grad, 1 - dampening, out=momentum_buffer)  # .add_(grad, alpha=1-τ)
        grad = _add(grad, momentum_buffer, momentum) if nesterov else momentum_buffer
    _add(param, grad, -lr, out=param)                                   # param.add_(grad, alpha=-lr)
    return momentum_buffer


class SGD(Optimizer):
    """Implements stochastic gradient descent (optionally with momentum); see :func:`sgd_update`.

    State per parameter: ``momentum_buffer`` (only when ``momentum != 0``).
    """

    UPDATE_RULE = {
        **Optimizer.UPDATE_RULE,
        "plain": "{w} ← {w} − {lr} · {g}",
        "first_buffer": "{buf} ← {g}",                                # the first step: a copy of g
        "momentum": "{buf} ← {mu} · {buf} + {g}",
        "dampening": "{buf} ← {mu} · {buf} + (1 − {tau}) · {g}",
        "nesterov": "{gnew} ← {g} + {mu} · {buf}",
        "step": "{w} ← {w} − {lr} · {buf}",
    }

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        _check_kernel_flags(foreach, fused, differentiable)

    @classmethod
    def state_keys(cls, hyper: dict) -> list[str]:
        return ["momentum_buffer"] if hyper.get("momentum", 0) != 0 else []

    HAS_FLAT_STEP = True

    def step(self, closure=None):
        """Perform a single optimization step; returns the closure's loss (or None)."""
        loss = _call_closure(closure)
        if self._flat is not None and self._step_flat():
            return loss
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            params = self._params_with_grad(group)
            _check_step_flags(group, params)
            for p in params:
                buf = self.state[p].get("momentum_buffer") if momentum != 0 else None
                buf = sgd_update(p._data, p.grad._data, buf, lr=lr, momentum=momentum, dampening=dampening,
                                 weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
                if momentum != 0:
                    self.state[p]["momentum_buffer"] = buf
        return loss

    def _step_flat(self) -> bool:
        """The step of every parameter at once, on the bound flat arrays (``Optimizer.bind_flat``):
        each element goes through :func:`sgd_update`'s ops as in the loop above."""
        group = self.param_groups[0]
        momentum = group["momentum"]
        buf = self._flat.state.get("momentum_buffer") if momentum != 0 else None
        if momentum != 0 and buf is None:        # the first step makes the buffers: the loop above
            self._flat = None
            return False
        grad = self._flat_grad()
        if grad is None:
            return False
        sgd_update(self._flat.param, grad, buf, lr=group["lr"], momentum=momentum,
                   dampening=group["dampening"], weight_decay=group["weight_decay"],
                   nesterov=group["nesterov"], maximize=group["maximize"])
        return True
