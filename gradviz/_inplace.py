"""In-place ops with PyTorch's semantics: version counters, graph rewriting, ``__setitem__``.

- Every tensor has a version counter (``_version``, a one-element list) that aliases share:
  ``detach()`` and basic-index views share it, ``.data`` gets a fresh one (as in PyTorch, where
  in-place changes through ``.data`` are invisible to autograd). Every in-place op bumps it.
- A node that saves tensors for backward records their counters and values
  (``autograd.record_versions``); backward compares them (one int compare per saved tensor) and
  raises PyTorch's "modified by an inplace operation" error when they differ.
- An in-place op that autograd must see (grad mode on and a tensor involved requires grad) makes
  the tensor's ``grad_fn`` a new node whose first input is a snapshot of the tensor as it was
  (``old``, carrying the previous ``grad_fn``), then overwrites the tensor's array in place, so
  every reference to the tensor or its storage sees the new values. Nodes made before the op
  still mean the old value: the engine follows ``_history`` to find it (``autograd.as_of``).
"""
from __future__ import annotations

import numpy as np

from . import trace
from ._dtypes import is_low_precision, run_forward, torch_dtype_name
from ._indexing import index_kind
from ._shape_errors import forward_or_shape_error
from .autograd import Node, record_versions
from .functions import RULES
from .trace import _state as _trace_state  # this thread's recorder: _trace_state.recorder

T = None      # the tensor module (gradviz._tensor), handed over by bind() when it has loaded
_tensor_state = None      # its per-thread state (T._state): ``_tensor_state.grad_enabled``


def bind(tensor_module) -> None:
    """``gradviz._tensor`` imports this module (Tensor's base class) and hands itself over here."""
    global T, _tensor_state
    T, _tensor_state = tensor_module, tensor_module._state


LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation."


def _check_result(t, out: np.ndarray, casts: bool = False) -> None:
    """PyTorch's errors for a result that cannot be written into ``t`` (``casts``: copy_ casts any dtype)."""
    if out.shape != t._data.shape:
        raise RuntimeError(f"output with shape {list(t._data.shape)} doesn't match the broadcast shape "
                           f"{list(out.shape)}")
    if not casts and not np.can_cast(out.dtype, t._data.dtype, "same_kind"):
        raise RuntimeError(f"result type {torch_dtype_name(out.dtype)} can't be cast to the desired output "
                           f"type {torch_dtype_name(t._data.dtype)}")


def _manual_owner(t):
    """The leaf requiring grad that an in-place op on ``t`` outside autograd changes (``t`` itself
    under ``no_grad``, or the tensor whose ``.data`` ``t`` is), else None. Only asked while recording."""
    if t.requires_grad:
        return t if t.grad_fn is None and not _tensor_state.grad_enabled else None
    ref = t._data_of
    return None if ref is None else ref()


def record_manual_update(rec, owner, op: str, before: np.ndarray) -> None:
    """Tell the recorder that ``op`` changed ``owner`` by hand (``w -= lr * w.grad`` under no_grad)."""
    event = trace.ManualUpdateEvent(rec.node_id(owner), op, before, owner._data.copy())
    rec.on_manual_update(owner, event)


def _zeroes_a_grad(rec, t) -> None:
    """``w.grad.zero_()``: tell the recorder it zeroed ``w``'s gradient (a zero_grad of one tensor)."""
    owner = t._grad_of() if t._grad_of is not None else None
    if owner is not None and owner._grad is t:
        rec.on_zero_grad([owner], False)


def apply_inplace(t, short: str, others: tuple = (), label: str | None = None, _method: str | None = None,
                  **kwargs):
    """Run ``RULES[short]`` on ``(t, *others)`` and write the result into ``t``'s array (``_method``:
    how the script wrote it, ``"-="``, for a recorded manual update; default ``short + "_"``)."""
    rule = RULES[short]
    records = _tensor_state.grad_enabled and (t.requires_grad or any(o.requires_grad for o in others))
    if records and t.requires_grad and t.grad_fn is None:
        raise RuntimeError(LEAF_ERROR)
    fn = t.grad_fn
    if records and fn is not None and fn.rule.short == "getitem" and fn.inputs[0]._version is t._version:
        return _inplace_on_view(t, fn.inputs[0], fn.kwargs["index"], short, others, kwargs)
    if rule.elementwise:
        a, b = t._data, others[0]._data
        dtype = T._result_dtype(short, a, b)
        arrays = (a, b) if is_low_precision(dtype) else T._promote(short, a, b)
    else:
        arrays, dtype = (t._data,) + tuple(o._data for o in others), t._data.dtype
    if records and rule.saves and arrays[0] is t._data:      # keep the old values the rule saves
        arrays = (t._data.copy(),) + tuple(arrays[1:])
    out, saved = forward_or_shape_error(run_forward, rule, arrays, kwargs, dtype)
    out = np.asarray(out)
    if out.shape != t._data.shape and short in ("copy", "fill"):
        out = np.broadcast_to(out, t._data.shape)
    _check_result(t, out, casts=short == "copy")
    if not records:
        rec = _trace_state.recorder
        owner = _manual_owner(t) if rec is not None else None
        if owner is not None:
            before = owner._data.copy()
        elif rec is not None and short == "zero" and t._grad_of is not None:
            _zeroes_a_grad(rec, t)
        np.copyto(t._data, out, casting="unsafe")
        t._version[0] += 1
        if owner is not None:
            record_manual_update(rec, owner, _method or short + "_", before)
        return t
    old = _snapshot(t, arrays[0])
    t.grad_fn = Node(rule, (old,) + others, saved, kwargs, label or rule.name)
    t.requires_grad = True
    np.copyto(t._data, out, casting="unsafe")
    t._version[0] += 1
    record_versions(t.grad_fn, short, t)
    _record(t, old, short, others, kwargs)
    return t


def _inplace_on_view(t, base, index, short: str, others: tuple, kwargs: dict):
    """An in-place op on a view ``t = base[index]`` of a tensor in the graph rewrites the base, as
    PyTorch does: the op's result is written into ``base`` (CopySlices) and ``t`` becomes a view of
    the new ``base`` again."""
    if base.requires_grad and base.grad_fn is None:
        raise RuntimeError("a view of a " + LEAF_ERROR[2:])
    old = _snapshot(t, t._data.copy())
    new = T.apply_op(short, (old,) + others, **kwargs)
    setitem(base, index, new)
    fresh = base[index]
    t.grad_fn, t.requires_grad = fresh.grad_fn, True
    return t


def _snapshot(t, old_data: np.ndarray):
    """The tensor ``t`` as it was before an in-place op: its history, and (when the op saved it)
    a copy of its values with a counter of its own, as PyTorch saves ``original_self``."""
    old = T.from_array(old_data)
    old.requires_grad, old.grad_fn, old._retains_grad = t.requires_grad, t.grad_fn, False
    t._history = (t._history or ()) + ((Node.next_seq(), old),)      # oldest first
    return old


def _record(t, old, short: str, others: tuple, kwargs: dict) -> None:
    rec = _trace_state.recorder
    if rec is None:
        return
    ids = rec._ids
    if id(t) in ids:         # the recorder's node for ``t`` so far is now the old value's
        ids[id(old)] = ids.pop(id(t))
        rec._keep.append(old)
    rec.on_forward(t, t.grad_fn.label, short, (old,) + others, kwargs)


def setitem(t, index, value) -> None:
    """``t[index] = value``: PyTorch's CopySlices (the overwritten part gets no gradient, the
    assigned value gets the gradient of the part it fills)."""
    index = _plain_index(index)
    v = value if isinstance(value, T.Tensor) else T.from_array(np.asarray(value, dtype=t._data.dtype))
    records = _tensor_state.grad_enabled and (t.requires_grad or v.requires_grad)
    kind = index_kind((index,) if isinstance(index, slice) else index, t._data.shape)   # None: index_put_
    if records and t.requires_grad and t.grad_fn is None:      # basic indexing writes through a view
        raise RuntimeError(("a view of " if kind else "") + LEAF_ERROR)
    target = t._data[index]
    try:
        np.broadcast_to(v._data, target.shape)
    except ValueError:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(v.shape)} cannot be broadcast to "
                           f"indexing result of shape {list(target.shape)}") from None
    if not records:
        rec = _trace_state.recorder
        owner = _manual_owner(t) if rec is not None else None
        before = owner._data.copy() if owner is not None else None
        t._data[index] = v._data
        t._version[0] += 1
        if owner is not None:
            record_manual_update(rec, owner, "[]=", before)
        return
    old = _snapshot(t, t._data)
    rule = RULES["setitem"]
    # PyTorch's name: copy_ into a view (CopySlices), into the whole tensor (CopyBackwards), index_put_
    label = "IndexPutBackward0" if kind is None else "CopyBackwards" if kind == "alias" else rule.name
    t.grad_fn = Node(rule, (old, v), (v._data.shape, v._data.dtype), {"index": index}, label)
    t.requires_grad = True
    t._data[index] = v._data
    t._version[0] += 1
    _record(t, old, "setitem", (v,), {"index": index})


def _plain_index(index):
    if isinstance(index, T.Tensor):
        index = index._data
        return int(index) if index.ndim == 0 and index.dtype.kind in "iu" else index
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, T.Tensor) else i for i in index)
    return index


class InplaceOps:
    """The in-place methods of :class:`gradviz.Tensor` (``add_``, ``+=``, ``zero_``, ...)."""
    __slots__ = ()

    def _operand(self, other, alpha=1):
        other = self._scalar(other)
        if alpha != 1:
            if other.requires_grad and _tensor_state.grad_enabled:
                return other * alpha
            return T.from_array(np.asarray(other._data * np.asarray(alpha, dtype=other._data.dtype)))
        return other

    def add_(self, other, *, alpha=1):
        if alpha != 1 and not (_tensor_state.grad_enabled and self._scalar(other).requires_grad):
            return _fused_add(self, self._scalar(other), alpha, "add_")
        return apply_inplace(self, "add", (self._operand(other, alpha),))

    def sub_(self, other, *, alpha=1):
        if alpha != 1 and not (_tensor_state.grad_enabled and self._scalar(other).requires_grad):
            return _fused_add(self, self._scalar(other), -alpha, "sub_")
        return apply_inplace(self, "sub", (self._operand(other, alpha),))

    def mul_(self, other): return apply_inplace(self, "mul", (self._scalar(other),))
    def div_(self, other): return apply_inplace(self, "div", (self._scalar(other),))
    def neg_(self): return apply_inplace(self, "neg")
    def exp_(self): return apply_inplace(self, "exp")
    def log_(self): return apply_inplace(self, "log")
    def sqrt_(self): return apply_inplace(self, "sqrt")
    def abs_(self): return apply_inplace(self, "abs")
    def tanh_(self): return apply_inplace(self, "tanh")
    def sigmoid_(self): return apply_inplace(self, "sigmoid")
    def relu_(self): return apply_inplace(self, "relu")
    def reciprocal_(self): return apply_inplace(self, "reciprocal")
    def zero_(self): return apply_inplace(self, "zero")
    def fill_(self, value): return apply_inplace(self, "fill", value=_value(value))

    def pow_(self, exponent):
        if isinstance(exponent, T.Tensor):
            return apply_inplace(self, "pow", (exponent,))
        return apply_inplace(self, "pow_scalar", exponent=exponent)

    def clamp_(self, min=None, max=None):  # noqa: A002 (PyTorch's names)
        if min is None and max is None:
            raise RuntimeError("At least one of 'min' or 'max' must not be None")
        return apply_inplace(self, "clamp", min=min, max=max)

    def clamp_min_(self, min):  # noqa: A002
        return apply_inplace(self, "clamp", label="ClampMinBackward0", min=min, max=None)

    def copy_(self, src):
        src = src if isinstance(src, T.Tensor) else T.from_array(np.asarray(src))
        return apply_inplace(self, "copy", (src,))

    def __iadd__(self, o): return apply_inplace(self, "add", (self._scalar(o),), _method="+=")
    def __isub__(self, o): return apply_inplace(self, "sub", (self._scalar(o),), _method="-=")
    def __imul__(self, o): return apply_inplace(self, "mul", (self._scalar(o),), _method="*=")
    def __itruediv__(self, o): return apply_inplace(self, "div", (self._scalar(o),), _method="/=")
    def __setitem__(self, index, value): setitem(self, index, value)


def _value(value):
    return value.item() if isinstance(value, T.Tensor) else value


def _fused_add(t, other, alpha, method: str):
    """``t.add_(other, alpha=a)`` outside the graph: ``t + a * other`` rounded once, as PyTorch's CPU
    kernel (a fused multiply-add, with ``a`` in the tensor's compute type) does for float16/32."""
    if _tensor_state.grad_enabled and t.requires_grad and t.grad_fn is None:
        raise RuntimeError(LEAF_ERROR)
    data, o = t._data, other._data
    if data.dtype.kind == "f" and data.dtype.itemsize <= 4 and o.dtype == data.dtype:
        out = data.astype(np.float64) + np.float64(np.float32(alpha)) * o.astype(np.float64)
    else:
        out = data + np.asarray(alpha, dtype=data.dtype if data.dtype.kind == "f" else None) * o
    _check_result(t, np.asarray(out))
    rec = _trace_state.recorder
    owner = _manual_owner(t) if rec is not None else None
    before = owner._data.copy() if owner is not None else None
    np.copyto(data, out, casting="unsafe")
    t._version[0] += 1
    if owner is not None:
        record_manual_update(rec, owner, method, before)
    return t
