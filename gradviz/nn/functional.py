"""Activations and losses, as PyTorch builds them: ``mse_loss``, ``binary_cross_entropy_with_logits``,
``softmax``, ``log_softmax`` and ``nll_loss`` are one fused node each (a row of ``functions.RULES``),
``cross_entropy`` is ``nll_loss(log_softmax(x, 1))`` and ``l1_loss`` is composed (Sub, Abs, Mean),
so ``loss.grad_fn`` and the graph show PyTorch's nodes.

Each loss takes ``reduction='mean' | 'sum' | 'none'`` like PyTorch's.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Size, Tensor, apply_op, torch_dtype_name
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
    if bias is not None and input.ndim >= 1 and weight.ndim == 2 and bias.ndim == 1:
        if input.ndim == 2:
            if input.shape[1] != weight.shape[1]:
                raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x{input.shape[1]} "
                                   f"and {weight.shape[1]}x{weight.shape[0]})")
            return apply_op("addmm", (input, weight, bias))
        # other shapes: as torch, flattened to a batch, one addmm, viewed back (ViewBackward0)
        if input.shape[-1] != weight.shape[1]:
            rows = int(np.prod(input.shape[:-1], dtype=np.int64))
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} "
                               f"and {weight.shape[1]}x{weight.shape[0]})")
        out = apply_op("addmm", (input.reshape(-1, input.shape[-1]), weight, bias))
        return out.reshape(*input.shape[:-1], weight.shape[0])
    out = input @ weight.T
    return out + bias if bias is not None else out


def leaky_relu(x, negative_slope: float = 0.01, inplace: bool = False):
    return apply_op("leaky_relu", (x,), negative_slope=negative_slope)


def tanh(x): return x.tanh()
def relu(x): return x.relu()
def sigmoid(x): return x.sigmoid()
def softmax(x, dim): return _softmax(x, dim)
def log_softmax(x, dim): return _log_softmax(x, dim)


def _target_like(target, input: Tensor) -> Tensor:
    target = _as_tensor(target, input)
    return target if target.dtype == input.dtype else target.to(input.dtype)


@autocast_float32   # losses run in float32 under autocast, as in PyTorch
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""mean((input - target)^2): one node, MseLossBackward0, whose gradient is
    :math:`\tfrac{2}{n}(x - y)` (``2 (x - y)`` for ``reduction='sum'``)."""
    _check_reduction(reduction)
    return apply_op("mse_loss", (input, _target_like(target, input)), reduction=reduction)


@autocast_float32
def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """mean(|input - target|)."""
    _check_reduction(reduction)
    return _reduce((input - _as_tensor(target, input)).abs(), reduction)


@autocast_float32
def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""Binary cross entropy on logits: one node, BinaryCrossEntropyWithLogitsBackward0.

    .. math:: \ell = (1 - y)\,x - \log\sigma(x),\qquad
              \log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})

    which equals :math:`-[y \log\sigma(x) + (1-y)\log(1-\sigma(x))]` and has gradient
    :math:`\sigma(x) - y` (divided by n for the mean).

    .. note::
        :math:`e^{-|x|} \le 1`, so nothing overflows for large logits of either sign: the form
        PyTorch's kernel computes.
    """
    _check_reduction(reduction)
    target = _target_like(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({Size(target.shape)}) must be the same as input size "
                         f"({Size(input.shape)})")
    return apply_op("bce_with_logits", (input, target), reduction=reduction)


@autocast_float32
def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of class indices ``target`` (N,) under log-probabilities ``input``
    (N, C): one node, NllLossBackward0."""
    _check_reduction(reduction)
    t = _class_indices(input, target)
    return apply_op("nll_loss", (input,), target=t, reduction=reduction)


def _class_indices(input: Tensor, target) -> np.ndarray:
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
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
    return t


@autocast_float32
def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross entropy of logits ``input`` (N, C) against class indices ``target`` (N,):
    ``nll_loss(log_softmax(input, 1), target)``, two nodes as in PyTorch."""
    _check_reduction(reduction)
    t = _class_indices(input, target)
    return apply_op("nll_loss", (log_softmax(input, 1),), target=t, reduction=reduction)


@autocast_float32
def binary_cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    r"""Binary cross entropy of probabilities: one node, BinaryCrossEntropyBackward0.

    .. math:: \ell = -[y \log x + (1 - y) \log(1 - x)]

    with each log clamped at -100 (so a probability of exactly 0 or 1 gives 100, not inf), and
    gradient :math:`(x - y) / \max(x (1 - x), 10^{-12})`, as PyTorch computes them.
    """
    _check_reduction(reduction)
    target = _target_like(target, input)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({Size(target.shape)}) that is different to the input size "
                         f"({Size(input.shape)}) is deprecated. Please ensure they have the same size.")
    x = input._data
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise RuntimeError("all elements of input should be between 0 and 1")
    return apply_op("bce", (input, target), reduction=reduction)
