"""Adagrad: ``torch.optim.Adagrad``."""
from __future__ import annotations

import numpy as np

from .optimizer import (
    Optimizer,
    _add,
    _addcdiv_,
    _addcmul_,
    _call_closure,
    _check_kernel_flags,
    _check_step_flags,
    _increment_step,
    _sqrt,
)


def adagrad_update(param: np.ndarray, grad: np.ndarray, state_sum: np.ndarray, *, step: float,
                   lr: float, lr_decay: float, weight_decay: float, eps: float,
                   maximize: bool) -> None:
    r"""One Adagrad step on one parameter, in place.  ``step`` is :math:`t`, counted from 1.

    .. math::
        \begin{aligned}
        g_t &\leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) \quad (-\text{ if maximize}) \\
        \tilde\gamma &\leftarrow \gamma / (1 + (t-1)\,\eta) && \eta = \text{lr\_decay} \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} && \text{if } \lambda \neq 0 \\
        s_t &\leftarrow s_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\gamma\, g_t / (\sqrt{s_t} + \epsilon)
        \end{aligned}

    ``param`` and ``state_sum`` are updated in place; ``grad`` is never written.

    .. note::
        The sum only grows, so the effective learning rate only shrinks.  It starts at
        ``initial_accumulator_value``; with the default 0 the first step moves every coordinate by
        about the full learning rate (:math:`g/\sqrt{g^2} = \pm 1`).
    """
    # Each line is one torch op, rounded as its CPU kernel rounds (see optimizer.py and docs/numerics.md).
    lr, lr_decay, weight_decay, eps = float(lr), float(lr_decay), float(weight_decay), float(eps)
    grad = -grad if maximize else grad
    if weight_decay != 0:
        grad = _add(grad, param, weight_decay)                  # grad.add(param, alpha=wd)
    clr = lr / (1 + (step - 1) * lr_decay)
    _addcmul_(state_sum, grad, grad, 1)                         # state_sum.addcmul_(g, g, value=1)
    std = _sqrt(state_sum)
    std += eps                                                  # .add_(eps)
    _addcdiv_(param, grad, std, -clr)                           # param.addcdiv_(g, std, value=-clr)


class Adagrad(Optimizer):
    """Implements Adagrad; see :func:`adagrad_update`.

    State per parameter: ``step`` (0-d float32 array) and ``sum``.

    .. note::
        Unlike the other optimizers, PyTorch's Adagrad creates its state *eagerly*, in the
        constructor, for every parameter, from the constructor's ``initial_accumulator_value``
        (a group's own ``initial_accumulator_value`` is ignored there).  Parameters added later with
        ``add_param_group`` get their state lazily, from ``defaults["initial_accumulator_value"]``.
    """

    UPDATE_RULE = {
        **Optimizer.UPDATE_RULE,
        "lr_decay": "{lrt} = \\frac{{lr}}{1 + ({t} − 1) · {eta}}",
        "sum": "{s} ← {s} + {g}^{2}",                                 # state "sum": every g² so far
        "step": "{w} ← {w} − {r} · \\frac{{g}}{\\sqrt{{s}} + {eps}}",    # r: lr, or the decayed lr_t
    }

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        _check_kernel_flags(foreach, fused, differentiable)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    @classmethod
    def state_keys(cls, hyper: dict) -> list[str]:
        return ["step", "sum"]

    def _init_state(self, p, initial_accumulator_value: float) -> None:
        state = self.state[p]
        state["step"] = np.zeros((), dtype=np.float32)
        state["sum"] = np.full_like(p._data, initial_accumulator_value)

    def step(self, closure=None):
        """Perform a single optimization step; returns the closure's loss (or None)."""
        loss = _call_closure(closure)
        for group in self.param_groups:
            params = self._params_with_grad(group)
            _check_step_flags(group, params)
            for p in params:
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(p, self.defaults["initial_accumulator_value"])
                step = _increment_step(state)
                adagrad_update(p._data, p.grad._data, state["sum"], step=step,
                               lr=group["lr"], lr_decay=group["lr_decay"],
                               weight_decay=group["weight_decay"], eps=group["eps"],
                               maximize=group["maximize"])
        return loss
