"""Activations and losses, composed from the primitive ops (so their gradients come for free).

Each loss takes ``reduction='mean' | 'sum' | 'none'`` like PyTorch's.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, apply_op, torch_dtype_name
from .._tensor import log_softmax as _log_softmax
from .._tensor import softmax as _softmax
from ..amp import autocast_float32

_REDUCTIONS = ("mean", "sum", "none")


def _as_tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return Tensor(x, dtype=like.dtype if like is not None and np.asarray(x).dtype.kind == "f" else None)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b (PyTorch's layout: weight is (out_features, in_features)).

    A batch with a bias is one ``addmm`` node (AddmmBackward0, as in PyTorch), which is also
    what autocast runs in float16 as a whole; other shapes compose matmul and add.
    """
    if bias is not None and input.ndim == 2 and weight.ndim == 2 and bias.ndim == 1:
        if input.shape[1] != weight.shape[1]:
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} "
                               f"and {weight.shape[1]}x{weight.shape[0]})")
        return apply_op("addmm", (input, weight, bias))
    out = input @ weight.T
    return out + bias if bias is not None else out


def tanh(x): return x.tanh()
def relu(x): return x.relu()
def sigmoid(x): return x.sigmoid()
def softmax(x, dim): return _softmax(x, dim)
def log_softmax(x, dim): return _log_softmax(x, dim)


@autocast_float32   # losses run in float32 under autocast, as in PyTorch
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """mean((input - target)^2)."""
    _check_reduction(reduction)
    diff = input - _as_tensor(target, input)
    return _reduce(diff ** 2, reduction)


@autocast_float32
def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """mean(|input - target|)."""
    _check_reduction(reduction)
    return _reduce((input - _as_tensor(target, input)).abs(), reduction)


@autocast_float32
def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""Binary cross entropy on logits, in the overflow-free form PyTorch uses
    (:math:`\ell = (1 - y)\,x + m + \log(e^{-m} + e^{-x - m})` with :math:`m = \max(-x, 0)`),
    written with :math:`c = -m = \min(x, 0)` so that it takes fewer ops:

    .. math:: \ell = (1 - y)\,x - c + \log(e^{c} + e^{c - x}),\quad c = \min(x, 0)

    which equals :math:`-[y \log\sigma(x) + (1-y)\log(1-\sigma(x))]` and has gradient
    :math:`\sigma(x) - y`.

    .. note::
        One of :math:`e^{c}`, :math:`e^{c-x}` is exactly 1, so nothing overflows; and keeping both
        terms is what makes the gradient right at :math:`x = 0` (:math:`\tfrac12 - y`), where
        ``clamp`` passes the whole gradient to one side.
    """
    _check_reduction(reduction)
    target = _as_tensor(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    c = input.clamp(max=0)
    loss = (1 - target) * input - c + (c.exp() + (c - input).exp()).log()
    return _reduce(loss, reduction)


@autocast_float32
def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross entropy of logits ``input`` (N, C) against class indices ``target`` (N,)."""
    _check_reduction(reduction)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"expected scalar type Long but found {torch_dtype_name(t.dtype)}: "
                           "cross_entropy takes class indices")
    if input.ndim != 2 or t.ndim != 1 or t.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0] if input.ndim else 0}) to match target "
                         f"batch_size ({t.shape[0] if t.ndim else 0}); input must be (N, C), target (N,)")
    n_classes = input.shape[1]
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        raise IndexError(f"Target {int(t.max() if t.max() >= n_classes else t.min())} is out of bounds "
                         f"(classes are 0..{n_classes - 1})")
    picked = -log_softmax(input, 1)[np.arange(t.shape[0]), t]
    return _reduce(picked, reduction)
