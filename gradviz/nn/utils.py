"""``torch.nn.utils``: gradient clipping and flattening parameters into one vector.

``clip_grad_norm_`` computes what torch 2.13 computes on the CPU: the 2-norm of each gradient
(``linalg.vector_norm``, with torch's summation order, see ``gradviz._reductions``), the norm of
those norms, then ``clip_coef = max_norm / (total_norm + 1e-6)`` (a float32 tensor for float32
gradients: ``1e-6`` and ``max_norm`` enter in float32, and ``max_norm / t`` is
``t.reciprocal() * max_norm`` as torch's ``__rdiv__`` has it), clamped to at most 1, and multiplies
every gradient by it, in place. With a recorder active each call emits a ``ClipEvent`` (every
gradient before and after) through ``rec.on_clip``.

.. note::
    The multiply happens even when the norm is below ``max_norm`` (by exactly 1.0, a no-op), and
    the coefficient is 1 only up to the ``1e-6``: a norm of exactly ``max_norm`` is scaled by
    ``max_norm / (max_norm + 1e-6)``, a hair below 1.
"""
from __future__ import annotations

import math
import types
import warnings

import numpy as np

from .. import trace
from .._ops import cat
from .._reductions import vector_norm
from .._tensor import Tensor, from_array
from .._tensor import _promote_types as _promote

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "parameters_to_vector",
           "vector_to_parameters"]


def _as_list(parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = list(parameters)
    if is_generator and not parameters:
        warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    return parameters


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together (the norm of their norms)."""
    arrays = [t._data for t in ([tensors] if isinstance(tensors, Tensor) else tensors)]
    norm_type = float(norm_type)
    if not arrays:
        return from_array(np.array(0.0, dtype=np.float32))
    norms = [vector_norm(a, norm_type) for a in arrays]
    dtype = norms[0].dtype
    for n in norms[1:]:
        dtype = _promote(dtype, n.dtype)
    total = vector_norm(np.stack([n.astype(dtype) for n in norms]), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return from_array(total)


def _clip_coefficient(max_norm: float, total_norm: np.ndarray) -> np.ndarray:
    dtype = total_norm.dtype.type
    denominator = dtype(total_norm + dtype(1e-6))
    coef = dtype(dtype(1) / denominator) * dtype(max_norm)      # max_norm / t is t.reciprocal() * max_norm
    return np.asarray(min(coef, dtype(1.0)) if not np.isnan(coef) else coef, dtype=total_norm.dtype)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale the gradients of ``parameters`` in place so that their total norm is at most ``max_norm``;
    returns the total norm *before* clipping (a 0-d tensor)."""
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    max_norm = float(max_norm)
    if not grads:
        return total
    coef = _clip_coefficient(max_norm, total._data)
    rec = trace._state.recorder
    before = [g._data.copy() for g in grads] if rec is not None else None
    for g in grads:
        np.multiply(g._data, coef.astype(g._data.dtype), out=g._data)
        g._version[0] += 1
    if rec is not None:
        owners = [p for p in params if p.grad is not None]
        rec.on_clip(trace.ClipEvent("norm", max_norm, float(norm_type), float(total._data), float(coef),
                                    [trace.GradClip(rec.node_id(p), b, p.grad._data.copy())
                                     for p, b in zip(owners, before)]))
    return total


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
                  "`torch.nn.utils.clip_grad_norm_`.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]`` in place."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    clip_value = float(clip_value)
    owners = [p for p in params if p.grad is not None]
    rec = trace._state.recorder
    before = [p.grad._data.copy() for p in owners] if rec is not None else None
    for p in owners:
        g = p.grad._data
        np.minimum(np.maximum(g, -clip_value, out=g), clip_value, out=g)
        p.grad._version[0] += 1
    if rec is not None:
        rec.on_clip(trace.ClipEvent("value", clip_value, math.inf, None, None,
                                    [trace.GradClip(rec.node_id(p), b, p.grad._data.copy())
                                     for p, b in zip(owners, before)]))


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and joined into one vector (in the graph, as in torch)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into ``parameters`` (their ``.data``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    for p in parameters:
        n = p.numel()
        p.data = vec._data[offset:offset + n].reshape(p.shape).astype(p.dtype)
        offset += n
