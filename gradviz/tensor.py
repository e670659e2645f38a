"""``gradviz.Tensor``: a numpy array that remembers how it was made, with PyTorch's API.

Names, defaults and dtype rules follow PyTorch: ``tensor([1., 2.])`` is float32, a numpy
float64 array stays float64, a Python scalar takes the dtype of the tensor it meets.
``.data`` is the underlying numpy array (PyTorch returns a tensor sharing storage; here the
array itself plays that role, and optimizers update it in place).
"""
from __future__ import annotations

import contextlib
import functools
from collections import namedtuple

import numpy as np

from . import trace
from .autograd import Node, run_backward
from .functions import ALIASES, RULES

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int64, bool_ = np.dtype("int64"), np.dtype("bool")
_FLOATS = (float16, float32, float64)
_DEFAULT_DTYPE = float32

# -- grad mode --------------------------------------------------------------------------------
_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


def no_grad():
    """Context manager / decorator: ops inside build no graph (``torch.no_grad``)."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


# -- random numbers -----------------------------------------------------------------------------
_DEFAULT_SEED = 67280421310721     # PyTorch's default_generator seed
_generator = np.random.Generator(np.random.PCG64(_DEFAULT_SEED))


def manual_seed(seed: int):
    """Reseed the global generator so runs are reproducible (like ``torch.manual_seed``).

    gradviz draws from numpy's PCG64, not PyTorch's Mersenne Twister: the same seed gives
    reproducible but *different* numbers from PyTorch's. Exported scripts therefore carry the
    initial values explicitly rather than a seed.
    """
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(seed)))
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


# -- the tensor ---------------------------------------------------------------------------------
MaxResult = namedtuple("max", ["values", "indices"])


def _infer_dtype(arr: np.ndarray, given):
    if given is not None:
        return np.dtype(given)
    if arr.dtype == np.float64 or arr.dtype.kind in "fc":
        return arr.dtype
    if arr.dtype.kind in "iu":
        return int64
    if arr.dtype.kind == "b":
        return bool_
    raise TypeError(f"can't convert data of dtype {arr.dtype} to a tensor")


class Tensor:
    __slots__ = ("_data", "grad", "requires_grad", "grad_fn", "_retains_grad", "name", "__weakref__")
    __array_priority__ = 1000      # numpy scalars/arrays on the left defer to our operators

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data._data
        if isinstance(data, np.ndarray):
            arr = np.array(data, dtype=_infer_dtype(data, dtype), copy=True)
        else:
            arr = np.asarray(data)
            if dtype is None and arr.dtype.kind == "f":
                dtype = _DEFAULT_DTYPE      # Python floats become float32, as in PyTorch
            arr = np.array(arr, dtype=_infer_dtype(arr, dtype), copy=True)
        self._data = arr
        self.grad = None
        self.grad_fn = None
        self._retains_grad = False
        self.name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr: np.ndarray, requires_grad: bool = False, grad_fn=None) -> "Tensor":
        t = object.__new__(Tensor)
        t._data, t.grad, t.requires_grad, t.grad_fn = arr, None, requires_grad, grad_fn
        t._retains_grad, t.name = False, None
        return t

    # -- data and metadata -------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value):
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    is_leaf = property(lambda self: self.grad_fn is None)

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

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
        body = np.array2string(self._data, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self._data.dtype not in (float32, int64, bool_):
            extras.append(f"dtype=gradviz.{self._data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.label}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # -- autograd ------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
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

    def detach(self) -> "Tensor":
        """A new leaf sharing this tensor's array, cut off from the graph."""
        return Tensor._wrap(self._data)

    def clone(self) -> "Tensor":
        return self.to(self.dtype, copy=True) if self.requires_grad else Tensor._wrap(self._data.copy())

    def backward(self, gradient=None, retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (PyTorch's ``Tensor.backward``)."""
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = np.ones_like(self._data)
        else:
            g = gradient._data if isinstance(gradient, Tensor) else np.asarray(gradient, dtype=self.dtype)
            if g.shape != self.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
                                   f"output[0] has a shape of {tuple(self.shape)}.")
            g = g.astype(self.dtype, copy=False)
        run_backward(self, g, bool(retain_graph))

    # -- ops -----------------------------------------------------------------------------------
    def _scalar(self, other) -> "Tensor":
        """Python numbers meet a tensor in the tensor's dtype (floats in float32 if it is an int tensor)."""
        if isinstance(other, Tensor):
            return other
        arr = np.asarray(other)
        if arr.dtype.kind == "f" or self._data.dtype.kind == "f":
            dtype = self._data.dtype if self._data.dtype.kind == "f" else _DEFAULT_DTYPE
        else:
            dtype = _infer_dtype(arr, None)
        t = Tensor._wrap(np.asarray(other, dtype=dtype))
        if arr.ndim == 0:
            t.name = f"{other:g}" if isinstance(other, (int, float)) else None
        return t

    def __add__(self, o): return _apply("add", (self, self._scalar(o)))
    def __radd__(self, o): return _apply("add", (self._scalar(o), self))
    def __sub__(self, o): return _apply("sub", (self, self._scalar(o)))
    def __rsub__(self, o): return _apply("sub", (self._scalar(o), self), alias="rsub")
    def __mul__(self, o): return _apply("mul", (self, self._scalar(o)))
    def __rmul__(self, o): return _apply("mul", (self._scalar(o), self))
    def __truediv__(self, o): return _apply("div", (self, self._scalar(o)))
    def __rtruediv__(self, o): return _apply("div", (self._scalar(o), self))
    def __neg__(self): return _apply("neg", (self,))
    def __pos__(self): return self
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(self._scalar(o), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return _apply("pow", (self, exponent))
        return _apply("pow_scalar", (self,), exponent=exponent)

    def __rpow__(self, base):
        return _apply("pow", (self._scalar(base), self), alias="rpow")

    def _compare(self, other, op):
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self._data, other))

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
    def exp(self): return _apply("exp", (self,))
    def log(self): return _apply("log", (self,))
    def sqrt(self): return _apply("sqrt", (self,))
    def abs(self): return _apply("abs", (self,))
    def tanh(self): return _apply("tanh", (self,))
    def sigmoid(self): return _apply("sigmoid", (self,))
    def relu(self): return _apply("relu", (self,))

    def clamp(self, min=None, max=None):  # noqa: A002 (PyTorch's names)
        if min is None and max is None:
            raise RuntimeError("At least one of 'min' or 'max' must not be None")
        return _apply("clamp", (self,), min=min, max=max)

    def clamp_min(self, min): return self.clamp(min=min)  # noqa: A002

    def sum(self, dim=None, keepdim: bool = False):
        dim = _norm_dims(dim, self.ndim)
        return _apply("sum", (self,), alias=None if dim is not None else "all", dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim: bool = False):
        if self._data.dtype not in _FLOATS:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating "
                               f"point or complex dtype. Got: {_torch_dtype_name(self._data.dtype)}")
        dim = _norm_dims(dim, self.ndim)
        return _apply("mean", (self,), alias=None if dim is not None else "all", dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim: bool = False):
        if dim is None:
            return _apply("max", (self,))
        dim = _norm_dims(dim, self.ndim)
        values = _apply("max_dim", (self,), dim=dim, keepdim=keepdim)
        idx = np.argmax(self._data, axis=dim)
        return MaxResult(values, Tensor._wrap(np.expand_dims(idx, dim) if keepdim else idx))

    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _apply("reshape", (self,), shape=tuple(np.empty(self.shape, dtype=bool_).reshape(shape).shape))

    view = reshape

    def unsqueeze(self, dim: int):
        shape = list(self.shape)
        shape.insert(dim if dim >= 0 else self.ndim + 1 + dim, 1)
        return _apply("reshape", (self,), alias="unsqueeze", shape=tuple(shape))

    def squeeze(self, dim=None):
        shape = tuple(n for i, n in enumerate(self.shape)
                      if n != 1 or (dim is not None and i != dim % max(self.ndim, 1)))
        return _apply("reshape", (self,), alias="squeeze", shape=shape)

    def flatten(self):
        return self.reshape(-1)

    def transpose(self, dim0: int, dim1: int):
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return _apply("permute", (self,), alias="transpose", axes=tuple(axes))

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return _apply("permute", (self,), axes=tuple(d % self.ndim for d in dims))

    @property
    def T(self):
        return _apply("permute", (self,), axes=tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._data
        elif isinstance(index, tuple):
            index = tuple(i._data if isinstance(i, Tensor) else i for i in index)
        kind = "select" if isinstance(index, int) else "slice" if isinstance(index, slice) else None
        return _apply("getitem", (self,), alias=kind, index=index)

    def softmax(self, dim: int):
        return softmax(self, dim)

    def log_softmax(self, dim: int):
        return log_softmax(self, dim)

    def to(self, dtype, copy: bool = False):
        dtype = np.dtype(dtype)
        if dtype == self._data.dtype and not copy:
            return self
        return _apply("to", (self,), dtype=dtype)

    def float(self): return self.to(float32)
    def double(self): return self.to(float64)
    def half(self): return self.to(float16)

    # in-place helpers PyTorch users reach for (no graph: use under no_grad or on leaves' data)
    def zero_(self):
        self._data[...] = 0
        return self

    def fill_(self, value):
        self._data[...] = value
        return self

    def copy_(self, other):
        np.copyto(self._data, other._data if isinstance(other, Tensor) else other, casting="unsafe")
        return self


# -- the one place ops are applied ----------------------------------------------------------------
def _apply(short: str, inputs: tuple, alias: str | None = None, **kwargs) -> Tensor:
    rule = RULES[short]
    out_data, saved = rule.forward(*[t._data for t in inputs], **kwargs)
    out_data = np.asarray(out_data)
    requires = _grad_enabled and any(t.requires_grad for t in inputs)
    if requires:
        label = ALIASES.get((short, alias), rule.name) if alias else rule.name
        out = Tensor._wrap(out_data, True, Node(rule, inputs, saved, kwargs, label))
    else:
        out = Tensor._wrap(out_data)
    rec = trace._ACTIVE
    if rec is not None:
        label = ALIASES.get((short, alias), rule.name) if alias else rule.name
        rec.on_forward(out, label, short, inputs)
    return out


def _norm_dims(dim, ndim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(d % max(ndim, 1) for d in dim))
    return dim % max(ndim, 1)


def _torch_dtype_name(dtype) -> str:
    return {"int64": "Long", "bool": "Bool", "int32": "Int"}.get(str(dtype), str(dtype))


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a, b) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{a.ndim}D and {b.ndim}D")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        if a.ndim <= 2 and b.ndim <= 2:
            sa = "x".join(map(str, a.shape if a.ndim == 2 else (1,) + a.shape))
            sb = "x".join(map(str, b.shape if b.ndim == 2 else b.shape + (1,)))
            if a.ndim == 1 and b.ndim == 1:
                raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src "
                                   f"[{b.shape[0]}] to have the same number of elements, but got "
                                   f"{a.shape[0]} and {b.shape[0]} elements respectively")
            raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa} and {sb})")
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"{list(a.shape)} @ {list(b.shape)}: inner dimensions {ka} and {kb} differ")
    kind = ("dot" if a.ndim == 1 and b.ndim == 1 else "mv" if a.ndim == 2 and b.ndim == 1
            else None if a.ndim == 2 and b.ndim == 2 else "bmm")
    return _apply("matmul", (a, b), alias=kind)


def softmax(x: Tensor, dim: int) -> Tensor:
    """exp(x - max) / sum(exp(x - max)), composed from primitives (the max is a constant shift)."""
    e = (x - x.max(dim, keepdim=True).values.detach()).exp()
    return e / e.sum(dim, keepdim=True)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    """x - max - log(sum(exp(x - max))): the stable form PyTorch computes."""
    shifted = x - x.max(dim, keepdim=True).values.detach()
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


# -- factories ------------------------------------------------------------------------------------
def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)


def zeros(*size, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_size(size), dtype=dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_size(size), dtype=dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.full(tuple(size), fill_value, dtype=dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype)


def ones_like(t: Tensor, dtype=None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype)


def randn(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    g = generator or _generator
    return Tensor(g.standard_normal(_size(size)).astype(dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None) -> Tensor:
    g = generator or _generator
    return Tensor(g.random(_size(size)).astype(dtype or _DEFAULT_DTYPE), requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    arr = np.arange(start, end, step) if end is not None else np.arange(start)
    return Tensor(arr, dtype=dtype)


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)
