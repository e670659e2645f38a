"""Adam and AdamW: ``torch.optim.Adam`` and ``torch.optim.AdamW``."""
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
    _lerp_,
    _sqrt,
)


def adam_update(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
                max_exp_avg_sq: np.ndarray | None, *, step: float, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
                decoupled_weight_decay: bool = False) -> None:
    r"""One Adam (or AdamW) step on one parameter, in place.  ``step`` is :math:`t`, counted from 1.

    .. math::
        \begin{aligned}
        g_t &\leftarrow \pm\nabla_\theta f_t(\theta_{t-1}) \quad (-\text{ if maximize}) \\
        \theta_{t-1} &\leftarrow \theta_{t-1}(1 - \gamma\lambda) && \text{AdamW (decoupled)} \\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} && \text{Adam, if } \lambda \neq 0 \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        v_t^{max} &\leftarrow \max(v_{t-1}^{max}, v_t) && \text{amsgrad (used instead of } v_t) \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}
        \end{aligned}

    ``param``, ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq`` (None unless ``amsgrad``) are
    updated in place; ``grad`` is never written.

    .. note::
        Because :math:`m_t` and :math:`\sqrt{v_t}` are both bias-corrected, the first step moves every
        coordinate by about :math:`\gamma` (:math:`\pm\gamma\,|g|/(|g|+\epsilon)`), whatever the
        gradient's size.  Adam's ``weight_decay`` is an L2 term added to the gradient, so it is
        rescaled by :math:`1/\sqrt{v_t}` like the rest; AdamW's decoupled decay is not.
        :math:`m_t` is updated with ``lerp`` (:math:`m + (1-\beta_1)(g - m)`), as PyTorch does.
    """
    # Each line is one torch op, rounded as its CPU kernel rounds (see optimizer.py and docs/numerics.md).
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    eps, weight_decay = float(eps), float(weight_decay)
    grad = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay                                 # param.mul_(1 - lr*wd)
        else:
            grad = _add(grad, param, weight_decay)                         # grad.add(param, alpha=wd)
    _lerp_(exp_avg, grad, 1 - beta1)                                       # exp_avg.lerp_(grad, 1-β1)
    exp_avg_sq *= beta2                                                    # exp_avg_sq.mul_(β2)
    _addcmul_(exp_avg_sq, grad, grad, 1 - beta2)                           # .addcmul_(g, g, value=1-β2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        exp_avg_sq = max_exp_avg_sq
    denom = _sqrt(exp_avg_sq)
    denom /= bias_correction2_sqrt
    denom += eps
    _addcdiv_(param, exp_avg, denom, -step_size)                           # param.addcdiv_(m, denom, value=-α)

def adamw_update(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
                 max_exp_avg_sq: np.ndarray | None, *, step: float, lr: float, beta1: float,
                 beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool) -> None:
    r"""One AdamW step: :func:`adam_update` with decoupled weight decay,
    :math:`\theta \leftarrow \theta(1 - \gamma\lambda)` before the Adam step (the decay never
    enters :math:`m_t` or :math:`v_t`)."""
    adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step=step, lr=lr, beta1=beta1,
                beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                decoupled_weight_decay=True)


class Adam(Optimizer):
    """Implements Adam; see :func:`adam_update`.

    State per parameter: ``step`` (a 0-d float32 array, like PyTorch's float32 step tensor),
    ``exp_avg``, ``exp_avg_sq`` and, with ``amsgrad``, ``max_exp_avg_sq``.
    """

    UPDATE_RULE = {
        **Optimizer.UPDATE_RULE,
        "decoupled_decay": "{w} ← {w} · (1 − {lr} · {lam})",          # AdamW
        "m": "{m} ← {b1} · {m} + (1 − {b1}) · {g}",                   # exp_avg
        "v": "{v} ← {b2} · {v} + (1 − {b2}) · {g}^{2}",               # exp_avg_sq
        "amsgrad": "{vmax} ← max({vmax}, {v})",
        "mhat": "{mhat} = \\frac{{m}}{1 − {b1}^{{t}}}",                # bias corrections, step t from 1
        "vhat": "{vhat} = \\frac{{v}}{1 − {b2}^{{t}}}",
        "step": "{w} ← {w} − {lr} · \\frac{{mhat}}{\\sqrt{{vhat}} + {eps}}",
    }

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not all(isinstance(b, float) for b in betas):
            # PyTorch's check (floats or tensors); an int beta like 0 is rejected too.
            raise ValueError("betas must be either both floats or both Tensors")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        _check_kernel_flags(foreach, fused, differentiable)

    @classmethod
    def state_keys(cls, hyper: dict) -> list[str]:
        return ["step", "exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hyper.get("amsgrad") else [])

    HAS_FLAT_STEP = True

    def step(self, closure=None):
        """Perform a single optimization step; returns the closure's loss (or None)."""
        loss = _call_closure(closure)
        if self._flat is not None and self._step_flat():
            return loss
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            amsgrad, maximize, decoupled = group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]
            params = self._params_with_grad(group)
            _check_step_flags(group, params)
            for p in params:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = np.zeros((), dtype=np.float32)
                    state["exp_avg"] = np.zeros_like(p._data)
                    state["exp_avg_sq"] = np.zeros_like(p._data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p._data)
                step = _increment_step(state)
                adam_update(p._data, p.grad._data, state["exp_avg"], state["exp_avg_sq"],
                            state.get("max_exp_avg_sq"), step=step, lr=lr, beta1=beta1,
                            beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                            maximize=maximize, decoupled_weight_decay=decoupled)
        return loss

    def _step_flat(self) -> bool:
        """The step of every parameter at once, on the bound flat arrays (``Optimizer.bind_flat``):
        each element goes through :func:`adam_update`'s ops as in the loop above."""
        grad = self._flat_grad()
        if grad is None:
            return False
        flat, group = self._flat, self.param_groups[0]
        beta1, beta2 = group["betas"]
        steps = flat.state["step"]
        steps += 1                        # every parameter's float32 step tensor += 1 (exact)
        state = flat.state
        adam_update(flat.param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                    step=float(steps[0]), lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], amsgrad=group["amsgrad"], maximize=group["maximize"],
                    decoupled_weight_decay=group["decoupled_weight_decay"])
        return True


class AdamW(Adam):
    """Implements AdamW: Adam with decoupled weight decay (default 1e-2); see :func:`adamw_update`.

    .. note::
        In PyTorch 2.13 ``AdamW`` *is* ``Adam(..., decoupled_weight_decay=True)``, and loading any
        state dict into an AdamW forces ``decoupled_weight_decay`` back to True.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
