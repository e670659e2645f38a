"""``gradviz.Tensor``: a numpy array that remembers how it was made, with PyTorch's API.

Names, defaults and dtype rules follow PyTorch: ``tensor([1., 2.])`` is float32, a numpy
float64 array stays float64, a Python scalar takes the dtype of the tensor it meets.
``.data`` is a tensor sharing storage (as in PyTorch); the core itself works on the numpy array
``_data``. In-place ops, version counters and ``__setitem__`` live in ``_inplace``.

The module is ``_tensor`` (as in PyTorch) so that it does not shadow the factory ``gradviz.tensor``;
its names without a leading underscore (``apply_op``, ``from_array``, ``torch_dtype_name``, the
autocast hook's getter and setter) are what the rest of the core uses.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import weakref
from collections import namedtuple

import numpy as np

from . import _inplace, _ops
from ._dtypes import bfloat16, is_floating, is_low_precision, run_forward, torch_dtype_name
from ._indexing import index_kind
from ._inplace import InplaceOps
from ._ops import ScriptOps, parse_to
from ._printing import Size, tensor_repr
from ._shape_errors import batched_matmul_kind, forward_or_shape_error, matmul_shape_error
from .autograd import Node, record_versions, run_backward
from .functions import ALIASES, RULES
from .random import integer_values, normal_values, permutation, uniform_values
from .trace import _state as _trace_state  # this thread's recorder: _trace_state.recorder

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int64, bool_ = np.dtype("int64"), np.dtype("bool")
_FLOATS = (float16, float32, float64, bfloat16)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2}     # "V": ml_dtypes' bfloat16
_DEFAULT_DTYPE = float32

# -- per-thread state --------------------------------------------------------------------------
class _State(threading.local):
    """The core's per-thread state, thread-local as PyTorch's is: every thread starts with grad
    enabled and autocast off, whatever the thread that started it is doing. (The default dtype,
    print options and random generators are process-global, as in PyTorch.) The class attributes
    are each new thread's values; the hot path reads them as one attribute of ``_state``."""
    grad_enabled = True
    autocast_hook = None      # set by gradviz.amp.autocast while active: (short, inputs) -> inputs


_state = _State()


# -- grad mode --------------------------------------------------------------------------------
def is_grad_enabled() -> bool:
    return _state.grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def _recreate_cm(self):
        # as a decorator, a fresh manager per call: ``prev`` must not be shared by recursive calls
        # or by threads calling the same decorated function
        return _GradMode(self.enabled)

    def __enter__(self):
        state = _state
        self.prev, state.grad_enabled = state.grad_enabled, self.enabled

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev
        return False


def no_grad():
    """Context manager / decorator: ops inside build no graph (``torch.no_grad``)."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


class set_grad_enabled(_GradMode):  # noqa: N801 (torch's name)
    """``torch.set_grad_enabled(mode)``: a function call sets grad mode at once (in this thread);
    as a context manager it also restores the previous mode on exit; as a decorator it applies to
    the function."""

    def __init__(self, mode: bool):
        state = _state
        self.prev, self.enabled = state.grad_enabled, bool(mode)
        state.grad_enabled = self.enabled

    def __call__(self, fn):
        _state.grad_enabled = self.prev           # decorating must not change the mode now
        return _GradMode(self.enabled)(fn)

    def __enter__(self):
        _state.grad_enabled = self.enabled


def inference_mode(mode: bool = True):
    """``torch.inference_mode``: here the same as ``no_grad`` (inference tensors are not modelled)."""
    return _GradMode(not mode)


def set_default_dtype(d) -> None:
    """The dtype of Python floats in new tensors (``tensor([1.])``, ``zeros``, ``randn``...): float32
    unless set; only floating types are accepted, as in PyTorch."""
    global _DEFAULT_DTYPE
    d = np.dtype(d)
    if d not in (float32, float64, float16, bfloat16):
        raise TypeError("only floating-point types are supported as the default type")
    _DEFAULT_DTYPE = d


def get_default_dtype() -> np.dtype:
    return _DEFAULT_DTYPE


# -- the tensor ---------------------------------------------------------------------------------
MaxResult = namedtuple("max", ["values", "indices"])


def _infer_dtype(arr: np.ndarray, given):
    if given is not None:
        return np.dtype(given)
    if arr.dtype.kind in "fc" or arr.dtype == bfloat16:
        return arr.dtype
    if arr.dtype.kind in "iu":      # numpy's int8/16/32/64 and uint8 are kept, as torch.tensor keeps them
        return arr.dtype if arr.dtype.name in ("int8", "int16", "int32", "int64", "uint8") else int64
    if arr.dtype.kind == "b":
        return bool_
    raise TypeError(f"can't convert data of dtype {arr.dtype} to a tensor")


class Tensor(InplaceOps, ScriptOps):
    # _version: the version counter (a one-element list) shared with aliases; _history: snapshots
    # of this tensor before in-place ops that autograd recorded (gradviz._inplace)
    # _grad_of / _data_of: a weak reference to the tensor whose .grad / .data this one is (so that
    # ``w.grad.zero_()`` and ``w.data.sub_(...)`` can be recorded as acting on ``w``), or None
    __slots__ = ("_data", "_grad", "requires_grad", "grad_fn", "_retains_grad", "name", "_version", "_history",
                 "_grad_of", "_data_of",
                 "__weakref__")
    __array_priority__ = 1000      # numpy scalars/arrays on the left defer to our operators

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data._data
        if isinstance(data, (np.ndarray, np.generic)):      # numpy keeps its float dtype: np.float64(1) too
            arr = np.array(data, dtype=_infer_dtype(data, dtype), copy=True)
        else:
            arr = np.asarray(data)
            if dtype is None and arr.dtype.kind == "f":
                dtype = _DEFAULT_DTYPE      # Python floats become float32, as in PyTorch
            arr = np.array(arr, dtype=_infer_dtype(arr, dtype), copy=True)
        self._data, self._version, self._history = arr, [0], None
        self._grad = self._grad_of = self._data_of = None
        self.grad_fn = None
        self._retains_grad = False
        self.name = None
        self.requires_grad = False
        if requires_grad:
            if arr.dtype not in _FLOATS:       # the constructor's wording differs from requires_grad_()'s
                raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
            self.requires_grad_(True)

    # -- data and metadata -------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's storage, outside the graph, with a version counter of its own
        (as in PyTorch: in-place changes made through ``.data`` are not seen by autograd)."""
        t = from_array(self._data)
        if _trace_state.recorder is not None and self.requires_grad and self.grad_fn is None:
            t._data_of = weakref.ref(self)        # w.data.sub_(...) is a manual update of w
        return t

    @data.setter
    def data(self, value):
        new = value._data if isinstance(value, Tensor) else np.asarray(value)
        rec = _trace_state.recorder
        if rec is not None and self.requires_grad and self.grad_fn is None:
            before = self._data.copy()
            self._data = new
            _inplace.record_manual_update(rec, self, "data =", before)
            return
        self._data = new

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (None until then)."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is None:
            rec = _trace_state.recorder
            if rec is not None and self._grad is not None and self.requires_grad and self.grad_fn is None:
                rec.on_zero_grad([self], True)        # ``w.grad = None``: a zero_grad of one tensor
        else:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError("assigned grad has data of a different size")
            if value._data.dtype != self._data.dtype:
                raise RuntimeError("assigned grad has data of a different type")
            value._grad_of = weakref.ref(self)
        self._grad = value

    def __array__(self, dtype=None, copy=None):
        arr = self._data if dtype is None else self._data.astype(dtype, copy=False)
        return arr.copy() if copy and arr is self._data else arr

    shape = property(lambda self: Size(self._data.shape))
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    is_leaf = property(lambda self: self.grad_fn is None)

    def size(self, dim=None):
        return Size(self._data.shape) if dim is None else self._data.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.item()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self._data

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        # PyTorch's printing, ported in gradviz._printing
        return tensor_repr(self._data, _DEFAULT_DTYPE, self.grad_fn.label if self.grad_fn is not None else None,
                           self.requires_grad)

    # -- autograd ------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype not in _FLOATS:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use "
                               "a computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's array, cut off from the graph."""
        t = from_array(self._data)
        t._version = self._version       # an alias: in-place changes through it are seen by autograd
        return t

    def clone(self) -> Tensor:
        if self.requires_grad:         # a copy in the graph: the "to" rule, named CloneBackward0 as in PyTorch
            return apply_op("to", (self,), alias="clone", dtype=self._data.dtype)
        return from_array(self._data.copy())

    def backward(self, gradient=None, retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's ``Tensor.backward``)."""
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = np.array(1, dtype=self._data.dtype) if self._data.ndim == 0 else np.ones_like(self._data)
        else:
            g = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient, dtype=self.dtype)
            if g.shape != self.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {Size(g.shape)} and "
                                   f"output[0] has a shape of {Size(self.shape)}.")
            g = g.astype(self.dtype)       # a copy: the engine and the trace never alias the caller's array
        rec = _trace_state.recorder
        if rec is not None:
            rec.on_backward_call(self)
        run_backward(self, g, bool(retain_graph), from_array)

    # -- ops -----------------------------------------------------------------------------------
    def _scalar(self, other) -> Tensor:
        """Python numbers meet a tensor in the tensor's dtype (floats in float32 if it is an int tensor)."""
        if isinstance(other, Tensor):
            return other
        if type(other) is float or type(other) is int:       # the common case, fast
            dtype = self._data.dtype
            if not is_floating(dtype):
                dtype = _DEFAULT_DTYPE if type(other) is float else int64
            elif self._data.ndim and is_low_precision(dtype):
                dtype = float32      # half kernels use a scalar in float32, not rounded to half (_dtypes)
            t = from_array(np.array(other, dtype=dtype))
            if _trace_state.recorder is not None:        # the label is only read by a recorder
                t.name = f"{other:g}"
            return t
        arr = np.asarray(other)
        if arr.dtype.kind == "f" or is_floating(self._data.dtype):
            dtype = self._data.dtype if is_floating(self._data.dtype) else _DEFAULT_DTYPE
        else:
            dtype = _infer_dtype(arr, None)
        t = from_array(np.asarray(other, dtype=dtype))
        if arr.ndim == 0:
            t.name = f"{other:g}" if isinstance(other, (int, float)) else None
        return t

    def __add__(self, o): return apply_op("add", (self, self._scalar(o)))
    def __radd__(self, o): return apply_op("add", (self._scalar(o), self))
    def __sub__(self, o): return apply_op("sub", (self, self._scalar(o)))
    def __rsub__(self, o): return apply_op("sub", (self._scalar(o), self), alias="rsub")
    def __mul__(self, o): return apply_op("mul", (self, self._scalar(o)))
    def __rmul__(self, o): return apply_op("mul", (self._scalar(o), self))
    def __truediv__(self, o): return apply_op("div", (self, self._scalar(o)))
    def __rtruediv__(self, o): return apply_op("mul", (self.reciprocal(), self._scalar(o)))  # as PyTorch does
    def __neg__(self): return apply_op("neg", (self,))
    def __pos__(self): return self
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(self._scalar(o), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or isinstance(exponent, float) and not is_floating(self._data.dtype):
            return apply_op("pow", (self, self._scalar(exponent)))     # int ** 2.5 is float32, not float64
        return apply_op("pow_scalar", (self,), exponent=exponent)

    def __rpow__(self, base):
        return apply_op("pow", (self._scalar(base), self), alias="rpow")

    def _compare(self, other, op):
        other = other._data if isinstance(other, Tensor) else other
        return from_array(op(self._data, other))

    def __eq__(self, o): return self._compare(o, np.equal)
    def __ne__(self, o): return self._compare(o, np.not_equal)
    def __lt__(self, o): return self._compare(o, np.less)
    def __le__(self, o): return self._compare(o, np.less_equal)
    def __gt__(self, o): return self._compare(o, np.greater)
    def __ge__(self, o): return self._compare(o, np.greater_equal)

    def add(self, o): return self + o
    def sub(self, o): return self - o
    def mul(self, o): return self * o
    def div(self, o): return self / o
    def neg(self): return -self
    def pow(self, e): return self ** e
    def matmul(self, o): return matmul(self, o)
    def exp(self): return apply_op("exp", (self,))
    def log(self): return apply_op("log", (self,))
    def sqrt(self): return apply_op("sqrt", (self,))
    def abs(self): return apply_op("abs", (self,))
    def tanh(self): return apply_op("tanh", (self,))
    def sigmoid(self): return apply_op("sigmoid", (self,))
    def relu(self): return apply_op("relu", (self,))
    def reciprocal(self): return apply_op("reciprocal", (self,))

    def clamp(self, min=None, max=None):  # noqa: A002 (PyTorch's names)
        if min is None and max is None:
            raise RuntimeError("At least one of 'min' or 'max' must not be None")
        return apply_op("clamp", (self,), min=min, max=max)

    def clamp_min(self, min): return apply_op("clamp", (self,), alias="min", min=min, max=None)  # noqa: A002

    def sum(self, dim=None, keepdim: bool = False):
        dim = _norm_dims(dim, self.ndim)
        return apply_op("sum", (self,), alias=None if dim is not None else "all", dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        if self._data.dtype not in _FLOATS:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating "
                               f"point or complex dtype. Got: {torch_dtype_name(self._data.dtype)}")
        dim = _norm_dims(dim, self.ndim)
        return apply_op("mean", (self,), alias=None if dim is not None else "all", dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim: bool = False):
        if isinstance(dim, Tensor):                  # torch.max(a, b) is maximum(a, b)
            return _ops.maximum(self, dim)
        if dim is None:
            return apply_op("max", (self,))
        dim = _norm_dims(dim, self.ndim)
        values = apply_op("max_dim", (self,), dim=dim, keepdim=keepdim)
        idx = np.argmax(self._data, axis=dim)
        return MaxResult(values, from_array(np.expand_dims(idx, dim) if keepdim else idx))

    def _new_shape(self, shape):
        """The target shape (``-1`` resolved) and whether numpy must copy to produce it."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            shape = tuple(np.empty(self.shape, dtype=bool_).reshape(shape).shape)
        except ValueError:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {self._data.size}") from None
        copies = not self._data.flags.c_contiguous and not np.may_share_memory(self._data.reshape(shape),
                                                                                self._data)
        return shape, copies

    def reshape(self, *shape):
        shape, copies = self._new_shape(shape)
        # NOTE: PyTorch's reshape views a contiguous tensor (ViewBackward0), aliases a strided one it can
        # view (ReshapeAliasBackward0) and copies one it cannot (UnsafeViewBackward0, e.g. x.T.reshape(-1)).
        kind = "copy" if copies else None if self._data.flags.c_contiguous else "alias"
        return apply_op("reshape", (self,), alias=kind, shape=shape)

    def view(self, *shape):
        shape, copies = self._new_shape(shape)
        if copies:
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return apply_op("reshape", (self,), shape=shape)

    def unsqueeze(self, dim: int):
        shape = list(self.shape)
        shape.insert(dim if dim >= 0 else self.ndim + 1 + dim, 1)
        return apply_op("reshape", (self,), alias="unsqueeze", shape=tuple(shape))

    def squeeze(self, dim=None):
        shape = tuple(n for i, n in enumerate(self.shape)
                      if n != 1 or (dim is not None and i != dim % max(self.ndim, 1)))
        return apply_op("reshape", (self,), alias="squeeze" if dim is None else "squeeze_dim", shape=shape)

    def transpose(self, dim0: int, dim1: int):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return apply_op("permute", (self,), alias="transpose", axes=tuple(axes))

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return apply_op("permute", (self,), axes=tuple(d % self.ndim for d in dims))

    @property
    def T(self):
        ndim = self._data.ndim
        return apply_op("permute", (self,), axes=(1, 0) if ndim == 2 else tuple(reversed(range(ndim))))

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._data
            if index.ndim == 0 and index.dtype.kind in "iu":      # x[tensor(1)] selects, like x[1]
                index = int(index)
        elif isinstance(index, tuple):
            index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
        kind = index_kind(index, self.shape)
        if kind is None:
            return apply_op("index", (self,), index=index)
        out = apply_op("getitem", (self,), alias=kind, index=index)
        out._version = self._version      # a view of the same storage
        return out

    def softmax(self, dim: int):
        return softmax(self, dim)

    def log_softmax(self, dim: int):
        return log_softmax(self, dim)

    def to(self, *args, **kwargs):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``: a device is accepted and
        changes nothing (the CPU is the only one); a cast to an integer or bool dtype leaves the graph."""
        dtype, copy = parse_to(args, kwargs)
        if dtype is None or (dtype == self._data.dtype and not copy):
            return from_array(self._data.copy()) if copy else self
        if dtype not in _FLOATS:
            return from_array(self._data.astype(dtype))
        return apply_op("to", (self,), dtype=dtype)

    def float(self): return self.to(float32)
    def double(self): return self.to(float64)
    def half(self): return self.to(float16)
    def bfloat16(self): return self.to(bfloat16)

    # random fills: torch's CPU stream (gradviz.random), element by element in row-major order
    def _random_fill(self, kernel: str, values_fn, *args, generator=None):
        if self._data.dtype not in _FLOATS:
            raise RuntimeError(f'"{kernel}" not implemented for \'{torch_dtype_name(self.dtype)}\'')
        if _state.grad_enabled and self.requires_grad and self.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        self._data[...] = values_fn(self.shape, self._data.dtype, *args, generator=generator)
        self._version[0] += 1
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        return self._random_fill("normal_kernel_cpu", normal_values, mean, std, generator=generator)

    def uniform_(self, from_: float = 0.0, to: float = 1.0, *, generator=None):
        if from_ > to:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}")
        return self._random_fill("check_uniform_bounds", uniform_values, from_, to, generator=generator)


# -- the one place ops are applied ----------------------------------------------------------------
def from_array(arr: np.ndarray) -> Tensor:
    """A leaf tensor over ``arr`` itself: no copy and no dtype rules (the array's dtype is kept).

    For arrays the core made (op results, gradients) and arrays their owner hands over (a batch of
    data); what a user passes goes through :func:`tensor`, which copies and applies PyTorch's rules.
    """
    t = object.__new__(Tensor)
    t._data, t._grad, t.requires_grad, t.grad_fn = arr, None, False, None
    t._retains_grad, t.name, t._version, t._history = False, None, [0], None
    t._grad_of = t._data_of = None
    return t


def autocast_hook():
    """The function :func:`apply_op` hands each op's inputs to first, or None (autocast is off in
    this thread)."""
    return _state.autocast_hook


def set_autocast_hook(hook) -> None:
    """Install ``hook(short, inputs) -> inputs`` for every op this thread runs
    (``gradviz.amp.autocast``), or None."""
    _state.autocast_hook = hook


def apply_op(short: str, inputs: tuple, alias: str | None = None, **kwargs) -> Tensor:
    """Run the rule ``RULES[short]`` on ``inputs`` (tensors): promote dtypes, compute, and link the
    result into the graph when an input requires grad; ``alias`` picks PyTorch's grad_fn name for
    this call (``ALIASES``). Every differentiable op goes through here."""
    state = _state
    hook = state.autocast_hook
    if hook is not None:
        inputs = hook(short, inputs)           # may cast matmul inputs to float16 (gradviz.amp)
    rule = RULES[short]
    if rule.elementwise:                           # the binary ops: promote dtypes as PyTorch does
        a, b = inputs[0]._data, inputs[1]._data
        if a.dtype == b.dtype and a.dtype.kind == "f":
            arrays, out_dtype = (a, b), a.dtype
        else:
            out_dtype = _result_dtype(short, a, b)      # half/bfloat16: operands enter float32 unrounded
            arrays = (a, b) if is_low_precision(out_dtype) else _promote(short, a, b)
    else:
        arrays = [t._data for t in inputs]
        out_dtype = arrays[0].dtype if arrays else None
    out_data, saved = forward_or_shape_error(run_forward, rule, arrays, kwargs, out_dtype)
    if type(out_data) is not np.ndarray:         # numpy reductions and 0-d arithmetic give scalars
        out_data = np.asarray(out_data)
    label = ALIASES.get((short, alias), rule.name) if alias else rule.name
    out = from_array(out_data)
    for t in inputs:
        if t.requires_grad:
            if state.grad_enabled:                 # read only when an input requires grad
                out.requires_grad, out.grad_fn = True, Node(rule, inputs, saved, kwargs, label)
                if rule.saves:
                    record_versions(out.grad_fn, short, out)
            break
    rec = _trace_state.recorder
    if rec is not None:
        rec.on_forward(out, label, short, inputs, kwargs)
    return out


def _promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    ka, kb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    return a if ka > kb else b if kb > ka else np.promote_types(a, b)


def _promote(short: str, a: np.ndarray, b: np.ndarray) -> tuple:
    """PyTorch's type promotion for a binary op; numpy's differs in two ways.

    - the category (bool < int < float) decides first: int64 + float32 is float32, not float64;
    - a 0-d tensor only changes the dtype of a tensor with dimensions if it is of a higher
      category: float32 vector + float64 0-d is float32.
    True division of integers gives the default float dtype.
    """
    dtype = _result_dtype(short, a, b)
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _result_dtype(short: str, a: np.ndarray, b: np.ndarray) -> np.dtype:
    if bool(a.ndim) == bool(b.ndim):
        dtype = _promote_types(a.dtype, b.dtype)
    else:
        higher, lower = (a.dtype, b.dtype) if a.ndim else (b.dtype, a.dtype)
        if is_floating(higher) or (higher.kind != "b" and not is_floating(lower)):
            dtype = higher
        else:
            dtype = _promote_types(higher, lower)
    if short == "div" and not is_floating(dtype):
        dtype = _DEFAULT_DTYPE
    return dtype


def _norm_dims(dim, ndim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(d % max(ndim, 1) for d in dim))
    return dim % max(ndim, 1)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a, b) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    sa, sb = a._data.shape, b._data.shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D")
    if sa[-1] != (sb[0] if nb == 1 else sb[-2]) or na > 2 and nb > 2:
        message = matmul_shape_error(a, b)
        if message:
            raise RuntimeError(message)
    if na == 2 and nb == 2:
        return apply_op("matmul", (a, b))
    kind = ("dot" if na == 1 and nb == 1 else "mv" if na == 2 and nb == 1 else "vm" if na == 1 and nb == 2
            else batched_matmul_kind(a, b))
    return apply_op("matmul", (a, b), alias=kind)


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x - max) / sum(exp(x - max)): one node, SoftmaxBackward0 (``functions.RULES``)."""
    return apply_op("softmax", (x,), dim=_norm_dims(dim, x.ndim))


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """x - max - log(sum(exp(x - max))): one node, LogSoftmaxBackward0 (``functions.RULES``)."""
    return apply_op("log_softmax", (x,), dim=_norm_dims(dim, x.ndim))


# -- factories ------------------------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def zeros(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return Tensor(np.zeros(_size(size), dtype=dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return Tensor(np.ones(_size(size), dtype=dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    """The dtype follows ``fill_value`` as in PyTorch: bool, int64, or float32 for a float."""
    if dtype is None and isinstance(fill_value, float):
        dtype = _DEFAULT_DTYPE
    return Tensor(np.full(tuple(size), fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False, device=None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False, device=None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """N(0, 1) samples, the same numbers as ``torch.randn`` for the same seed (``gradviz.random``)."""
    t = from_array(np.empty(_size(size), dtype=dtype or _DEFAULT_DTYPE)).normal_(generator=generator)
    return t.requires_grad_() if requires_grad else t


def rand(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """U[0, 1) samples, the same numbers as ``torch.rand`` for the same seed."""
    t = from_array(np.empty(_size(size), dtype=dtype or _DEFAULT_DTYPE)).uniform_(generator=generator)
    return t.requires_grad_() if requires_grad else t


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, requires_grad=False,
            device=None) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: integers in [low, high), int64 by default."""
    if size is None:
        low, high, size = 0, low, high
    values = integer_values(tuple(size), int(low), int(high), dtype or int64, generator=generator)
    return Tensor(values, requires_grad=requires_grad)


def randperm(n: int, *, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A random permutation of 0..n-1, the same as ``torch.randperm`` for the same seed."""
    return Tensor(permutation(n, generator=generator).astype(dtype or int64), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``; int64 for integer arguments, else float32."""
    arr = np.arange(start, end, step)      # numpy reads arange(n, None, step) as arange(0, n, step)
    return Tensor(arr, dtype=dtype or (_DEFAULT_DTYPE if arr.dtype.kind == "f" else None), requires_grad=requires_grad)


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)


_inplace.bind(sys.modules[__name__])
_ops.bind(sys.modules[__name__])      # the in-place ops call back into this module (no import cycle)
