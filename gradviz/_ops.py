"""What real training scripts call beyond the core ops, with PyTorch's names, errors and gradients:
joining (``stack``, ``cat``), selecting (``where``, ``maximum``, ``min``, ``argmax``), statistics
(``var``, ``std``, ``norm``), comparisons as methods, conversions (``long()``, ``int()``, ``bool()``),
devices (``cuda()``/``cpu()``/``to(device)`` on a machine whose only device is the CPU) and the
factories ``linspace`` and ``from_numpy``.

The differentiable ones are rows of ``functions.RULES`` (StackBackward0, CatBackward0, ...).
``gradviz._tensor`` uses :class:`ScriptOps` as a base of ``Tensor`` and hands itself over with
:func:`bind`, as ``gradviz._inplace`` does.
"""
from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np

from ._dtypes import TorchDType, is_floating, torch_dtype_name
from .random import _TORCH_KERNELS, _fma, _fmaf

T = None      # gradviz._tensor, handed over by bind()

MinResult = namedtuple("min", ["values", "indices"])


def bind(tensor_module) -> None:
    global T
    T = tensor_module


class device:  # noqa: N801 (torch.device)
    """``torch.device``: a type ("cpu", "cuda", "mps") and an optional index. GradViz computes
    everything on the CPU; the name is kept so that scripts can pass devices around and print them."""
    __slots__ = ("type", "index")

    def __init__(self, type: str = "cpu", index: int | None = None):  # noqa: A002 (torch's name)
        if isinstance(type, device):
            type, index = type.type, type.index
        text = str(type)
        if ":" in text:
            text, number = text.split(":", 1)
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        self.type, self.index = text, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:        # as torch: a device never equals a string
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def is_dtype(x) -> bool:
    """True for what gradviz takes as a dtype: a numpy dtype or a numpy scalar type."""
    return (isinstance(x, (np.dtype, TorchDType))
            or (isinstance(x, type) and issubclass(x, np.generic)))


def parse_to(args, kwargs) -> tuple:
    """``(dtype, copy)`` from ``.to(...)``'s arguments: ``to(dtype)``, ``to(device)``,
    ``to(device, dtype)``, ``to(tensor)``, with keywords ``dtype``, ``device``, ``non_blocking``,
    ``copy``. The device is accepted and ignored (everything runs on the CPU)."""
    dtype, copy = kwargs.get("dtype"), kwargs.get("copy", False)
    unknown = set(kwargs) - {"dtype", "device", "non_blocking", "copy", "memory_format"}
    if unknown:
        raise TypeError(f"to() received an invalid combination of arguments: unexpected {sorted(unknown)}")
    for a in args:
        if isinstance(a, T.Tensor):
            dtype = a.dtype
        elif is_dtype(a):
            dtype = np.dtype(a)
        elif isinstance(a, (str, device)) or a is None:
            continue
        elif isinstance(a, bool):
            continue                      # non_blocking / copy given positionally
        else:
            raise TypeError(f"to() received an invalid combination of arguments: got {type(a).__name__}")
    return (None if dtype is None else np.dtype(dtype)), copy


def _dims(dim, ndim):
    return T._norm_dims(dim, ndim)


_LEGACY_TYPES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
                 "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
                 "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


class ScriptOps:
    """Tensor methods for scripts (a base class of :class:`gradviz.Tensor`)."""
    __slots__ = ()

    # -- devices: the CPU is the only one -------------------------------------------------------
    device = property(lambda self: CPU)
    is_cuda = property(lambda self: False)

    def cuda(self, device=None, non_blocking: bool = False): return self
    def cpu(self): return self

    # -- conversions ------------------------------------------------------------------------------
    def long(self): return self.to(T.int64)
    def int(self): return self.to(np.dtype("int32"))
    def bool(self): return self.to(T.bool_)

    def type(self, dtype=None):
        """``x.type()``: the legacy type name (``torch.FloatTensor``); ``x.type(dtype)``: ``x.to(dtype)``
        (a legacy name such as ``"torch.DoubleTensor"`` is accepted too)."""
        if dtype is None:
            return "torch." + _LEGACY_TYPES.get(str(self._data.dtype), "FloatTensor")
        if isinstance(dtype, str):
            names = {f"torch.{v}": k for k, v in _LEGACY_TYPES.items()}
            if dtype not in names:
                raise ValueError(f"invalid type: '{dtype}'")
            dtype = np.dtype(T.bfloat16 if names[dtype] == "bfloat16" else names[dtype])
        return self.to(dtype)

    # -- comparisons as methods -------------------------------------------------------------------
    def eq(self, o): return self == o
    def ne(self, o): return self != o
    def lt(self, o): return self < o
    def le(self, o): return self <= o
    def gt(self, o): return self > o
    def ge(self, o): return self >= o

    def isnan(self): return T.from_array(np.isnan(self._data))
    def isinf(self): return T.from_array(np.isinf(self._data))
    def isfinite(self): return T.from_array(np.isfinite(self._data))

    def any(self, dim=None, keepdim: bool = False):
        return T.from_array(np.asarray(self._data.astype(bool).any(axis=dim, keepdims=keepdim)))

    def all(self, dim=None, keepdim: bool = False):
        return T.from_array(np.asarray(self._data.astype(bool).all(axis=dim, keepdims=keepdim)))

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    # -- selection --------------------------------------------------------------------------------
    def argmax(self, dim=None, keepdim: bool = False):
        return _arg(np.argmax, self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        return _arg(np.argmin, self, dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        if isinstance(dim, T.Tensor):
            return minimum(self, dim)
        if dim is None:
            return T.apply_op("min", (self,))
        dim = _dims(dim, self.ndim)
        values = T.apply_op("min_dim", (self,), dim=dim, keepdim=keepdim)
        idx = np.argmin(self._data, axis=dim)
        return MinResult(values, T.from_array(np.expand_dims(idx, dim) if keepdim else idx))

    def maximum(self, other): return maximum(self, other)
    def minimum(self, other): return minimum(self, other)

    # -- statistics -------------------------------------------------------------------------------
    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _moment("var", self, dim, unbiased, keepdim, correction)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _moment("std", self, dim, unbiased, keepdim, correction)

    def norm(self, p="fro", dim=None, keepdim: bool = False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if not is_floating(x._data.dtype):
            raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as input. "
                               f"Got {torch_dtype_name(x.dtype)}")
        order = 2.0 if p in ("fro", None) else float(p)
        return T.apply_op("norm", (x,), ord=order, dim=_dims(dim, x.ndim), keepdim=keepdim)

    # -- shape ------------------------------------------------------------------------------------
    def t(self):
        if self._data.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self._data.ndim}D")
        return T.apply_op("permute", (self,), alias="t", axes=tuple(reversed(range(self._data.ndim))))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        ndim = self._data.ndim
        if ndim == 0:
            return self.reshape(1)
        start, end = start_dim % ndim, end_dim % ndim
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        if start == end:
            return self
        shape = self.shape
        return self.reshape(*shape[:start], -1, *shape[end + 1:])

    def view_as(self, other): return self.view(*other.shape)
    def reshape_as(self, other): return self.reshape(*other.shape)


def _arg(fn, x, dim, keepdim):
    if dim is None:
        idx = np.asarray(fn(x._data))
        return T.from_array(idx.reshape((1,) * x.ndim) if keepdim else idx)
    dim = dim % max(x.ndim, 1)
    idx = fn(x._data, axis=dim)
    return T.from_array(np.asarray(np.expand_dims(idx, dim) if keepdim else idx))


def _moment(short, x, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):                   # x.var(False): the old unbiased flag
        dim, unbiased = None, dim
    if correction is None:
        correction = 0 if unbiased is False else 1
    if not is_floating(x._data.dtype):
        raise RuntimeError(f"{short}(): could not infer output dtype. Input dtype must be either a floating "
                           f"point or complex dtype. Got: {torch_dtype_name(x._data.dtype)}")
    return T.apply_op(short, (x,), dim=_dims(dim, x.ndim), correction=correction, keepdim=keepdim)


# -- functions (torch.stack, torch.where, ...) ------------------------------------------------------
def _tensors(tensors, what: str) -> list:
    if isinstance(tensors, T.Tensor):
        raise TypeError(f"{what}(): argument 'tensors' must be tuple of Tensors, not Tensor")
    out = [t if isinstance(t, T.Tensor) else T.Tensor(t) for t in tensors]
    if not out:
        raise RuntimeError(f"{what} expects a non-empty TensorList" if what == "stack"
                           else "torch.cat(): expected a non-empty list of Tensors")
    return out


def _common_dtype(tensors) -> np.dtype:
    return functools.reduce(T._promote_types, (t._data.dtype for t in tensors))


def stack(tensors, dim: int = 0):
    """Join tensors of one shape along a new dimension ``dim`` (one StackBackward0 node)."""
    ts = _tensors(tensors, "stack")
    first = ts[0].shape
    for i, t in enumerate(ts):
        if t.shape != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
                               f"and {list(t.shape)} at entry {i}")
    ndim = len(first) + 1
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    return T.apply_op("stack", tuple(ts), dim=dim % ndim, dtype=_common_dtype(ts))


def cat(tensors, dim: int = 0):
    """Join tensors along an existing dimension ``dim`` (one CatBackward0 node)."""
    ts = _tensors(tensors, "cat")
    for t in ts:
        if t.ndim == 0:
            raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    ndim = ts[0].ndim
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    dim %= ndim
    first = ts[0].shape
    for i, t in enumerate(ts[1:], 1):
        if t.ndim != ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ndim} and {t.ndim}")
        for d in range(ndim):
            if d != dim and t.shape[d] != first[d]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                   f"{first[d]} but got size {t.shape[d]} for tensor number {i} in the list.")
    return T.apply_op("cat", tuple(ts), dim=dim, dtype=_common_dtype(ts))


def where(condition, input=None, other=None):  # noqa: A002 (torch's names)
    """``where(condition, input, other)``: ``input`` where the condition holds, else ``other``;
    ``where(condition)``: the indices of the true elements, one tensor per dimension."""
    cond = condition._data if isinstance(condition, T.Tensor) else np.asarray(condition)
    if input is None and other is None:
        return tuple(T.from_array(i.astype(np.int64)) for i in np.nonzero(cond))
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{torch_dtype_name(cond.dtype).capitalize()}")
    if not isinstance(input, T.Tensor):
        if not isinstance(other, T.Tensor):
            input = T.tensor(input)
        else:
            input = other._scalar(input)
    other = input._scalar(other)
    return T.apply_op("where", (input, other), condition=cond)


def maximum(input, other):  # noqa: A002
    input = input if isinstance(input, T.Tensor) else T.Tensor(input)
    return T.apply_op("maximum", (input, input._scalar(other) if isinstance(other, T.Tensor) else T.Tensor(other)))


def minimum(input, other):  # noqa: A002
    input = input if isinstance(input, T.Tensor) else T.Tensor(input)
    return T.apply_op("minimum", (input, input._scalar(other) if isinstance(other, T.Tensor) else T.Tensor(other)))


def from_numpy(array: np.ndarray):
    """A tensor sharing ``array``'s memory and dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"can't convert np.ndarray of type numpy.{array.dtype}. The only supported types are: "
                        "float64, float32, float16, int64, int32, int16, int8, uint8, and bool.")
    return T.from_array(array)


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, T.Tensor):
        return data if dtype is None or np.dtype(dtype) == data.dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return from_numpy(data)
    return T.tensor(data, dtype=dtype)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:  # noqa: A002
    a = input._data if isinstance(input, T.Tensor) else np.asarray(input)
    b = other._data if isinstance(other, T.Tensor) else np.asarray(other)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


# -- linspace ---------------------------------------------------------------------------------------
def linspace(start, end, steps: int, *, dtype=None, requires_grad: bool = False, device=None):
    """``steps`` evenly spaced values from ``start`` to ``end``, computed as torch's CPU kernel does.

    .. note::
        torch computes ``step = (end - start) / (steps - 1)`` in the output dtype; the first half is
        ``start + step * i`` and the second half ``end - step * (steps - 1 - i)``, so both ends are
        exact; each is one fused multiply-add (measured bit for bit against torch 2.13).
    """
    if isinstance(start, T.Tensor):
        start = start.item()
    if isinstance(end, T.Tensor):
        end = end.item()
    steps = int(steps)
    if steps < 0:
        raise RuntimeError("linspace(): number of steps must be non-negative")
    dtype = np.dtype(dtype) if dtype is not None else T._DEFAULT_DTYPE
    if dtype.kind in "iub":
        values = np.linspace(float(start), float(end), steps).astype(dtype)
        return T.Tensor(values, dtype=dtype, requires_grad=requires_grad)
    work = np.float32 if dtype.itemsize < 4 else dtype.type
    out = np.empty(steps, dtype=work)
    if steps == 1:
        out[0] = work(start)
    elif steps > 1:
        out[:] = _linspace_kernel(work(start), work(end), steps, work)
    return T.Tensor(out.astype(dtype, copy=False), dtype=dtype, requires_grad=requires_grad)


def _linspace_kernel(start, end, steps: int, work) -> np.ndarray:
    step = work((end - start) / work(steps - 1))
    idx = np.arange(steps)
    first = idx < steps // 2
    factor = np.where(first, idx, steps - 1 - idx).astype(work)
    signed_step = np.where(first, step, -step).astype(work)
    origin = np.where(first, start, end).astype(work)
    if _TORCH_KERNELS == "default":          # a build without FMA rounds the product, then the sum
        return (origin + signed_step * factor).astype(work)
    fused = _fmaf if work is np.float32 else _fma
    return np.asarray(fused(signed_step, factor, origin)).astype(work)
