"""RMSprop: ``torch.optim.RMSprop``."""
from __future__ import annotations

import numpy as np

from .optimizer import (
    Optimizer,
    _add,
    _addcdiv_,
    _addcmul_,
    _call_closure,
    _check_step_flags,
    _increment_step,
    _lerp_,
    _sqrt,
)


def rmsprop_update(param: np.ndarray, grad: np.ndarray, square_avg: np.ndarray,
                   grad_avg: np.ndarray | None, momentum_buffer: np.ndarray | None, *, lr: float,
                   alpha: float, eps: float, weight_decay: float, momentum: float, centered: bool,
                   maximize: bool) -> None:
    r"""One RMSprop step on one parameter, in place.

    .. math::
        \begin{aligned}
        g_t &\leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) \quad (-\text{ if maximize}) \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} && \text{if } \lambda \neq 0 \\
        v_t &\leftarrow \alpha v_{t-1} + (1-\alpha)\, g_t^2 \\
        g^{ave}_t &\leftarrow \alpha g^{ave}_{t-1} + (1-\alpha)\, g_t && \text{if centered} \\
        \tilde v_t &\leftarrow v_t - \big(g^{ave}_t\big)^2 \text{ if centered, else } v_t \\
        b_t &\leftarrow \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \quad
            \theta_t \leftarrow \theta_{t-1} - \gamma b_t && \text{if } \mu > 0 \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g_t / (\sqrt{\tilde v_t} + \epsilon) && \text{otherwise}
        \end{aligned}

    ``grad_avg`` is None unless ``centered``; ``momentum_buffer`` is None unless ``momentum > 0``.
    All arrays but ``grad`` are updated in place.

    .. note::
        There is no bias correction: ``square_avg`` starts at zero, so the first steps are large
        (about :math:`\gamma/\sqrt{1-\alpha}` = 10x the learning rate with the default
        :math:`\alpha = 0.99`).  The optimizer still counts ``step`` in its state, but this update
        never reads it.
    """
    # Each line is one torch op, rounded as its CPU kernel rounds (see optimizer.py and docs/numerics.md).
    lr, alpha, eps = float(lr), float(alpha), float(eps)
    weight_decay, momentum = float(weight_decay), float(momentum)
    grad = -grad if maximize else grad
    if weight_decay != 0:
        grad = _add(grad, param, weight_decay)                  # grad.add(param, alpha=wd)
    square_avg *= alpha                                         # square_avg.mul_(α)
    _addcmul_(square_avg, grad, grad, 1 - alpha)                # .addcmul_(g, g, value=1-α)
    if centered:
        _lerp_(grad_avg, grad, 1 - alpha)                       # grad_avg.lerp_(g, 1-α)
        avg = _addcmul_(square_avg, grad_avg, grad_avg, -1, out=np.empty_like(square_avg))
        _sqrt(avg, out=avg)
    else:
        avg = _sqrt(square_avg)
    avg += eps                                                  # avg.add_(eps)
    if momentum > 0:
        momentum_buffer *= momentum                             # buf.mul_(μ)
        _addcdiv_(momentum_buffer, grad, avg, 1)                # .addcdiv_(g, avg)
        _add(param, momentum_buffer, -lr, out=param)            # param.add_(buf, alpha=-lr)
    else:
        _addcdiv_(param, grad, avg, -lr)                        # param.addcdiv_(g, avg, value=-lr)

class RMSprop(Optimizer):
    """Implements RMSprop; see :func:`rmsprop_update`.

    State per parameter: ``step`` (0-d float32 array), ``square_avg``, ``momentum_buffer`` (when
    ``momentum > 0``) and ``grad_avg`` (when ``centered``).

    .. note::
        As in PyTorch 2.13, ``capturable``, ``foreach``, ``maximize`` and ``differentiable`` may be
        given by position, in that order (RMSprop alone has no ``*`` before them).    """

    UPDATE_RULE = {
        **Optimizer.UPDATE_RULE,
        "v": "{v} ← {alpha} · {v} + (1 − {alpha}) · {g}^{2}",       # square_avg
        "grad_avg": "{gbar} ← {alpha} · {gbar} + (1 − {alpha}) · {g}",   # centered
        "centered": "{vt} = {v} − {gbar}^{2}",
        "momentum": "{buf} ← {mu} · {buf} + \\frac{{g}}{\\sqrt{{d}} + {eps}}",   # d: v, or ṽ when centered
        "momentum_step": "{w} ← {w} − {lr} · {buf}",
        "step": "{w} ← {w} − {lr} · \\frac{{g}}{\\sqrt{{d}} + {eps}}",
    }

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    @classmethod
    def state_keys(cls, hyper: dict) -> list[str]:
        return (["step", "square_avg"] + (["momentum_buffer"] if hyper.get("momentum", 0) > 0 else [])
                + (["grad_avg"] if hyper.get("centered") else []))

    def step(self, closure=None):
        """Perform a single optimization step; returns the closure's loss (or None)."""
        loss = _call_closure(closure)
        for group in self.param_groups:
            params = self._params_with_grad(group)
            _check_step_flags(group, params)
            for p in params:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = np.zeros((), dtype=np.float32)
                    state["square_avg"] = np.zeros_like(p._data)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = np.zeros_like(p._data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p._data)
                _increment_step(state)
                rmsprop_update(p._data, p.grad._data, state["square_avg"], state.get("grad_avg"),
                               state.get("momentum_buffer"), lr=group["lr"], alpha=group["alpha"],
                               eps=group["eps"], weight_decay=group["weight_decay"],
                               momentum=group["momentum"], centered=group["centered"],
                               maximize=group["maximize"])
        return loss
