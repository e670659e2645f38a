"""``gradviz.Tensor``: a numpy array that remembers how it was made, with PyTorch's API.

Names, defaults and dtype rules follow PyTorch: ``tensor([1., 2.])`` is float32, a numpy
float64 array stays float64, a Python scalar takes the dtype of the tensor it meets.
``.data`` is the underlying numpy array (PyTorch returns a tensor sharing storage; here the
array itself plays that role, and optimizers update it in place).

The module is ``_tensor`` (as in PyTorch) so that it does not shadow the factory ``gradviz.tensor``;
its names without a leading underscore (``apply_op``, ``from_array``, ``torch_dtype_name``, the
autocast hook's getter and setter) are what the rest of the core uses.
"""
from __future__ import annotations

import contextlib
from collections import namedtuple

import numpy as np

from . import trace
from .autograd import Node, run_backward
from .functions import ALIASES, RULES

float16, float32, float64 = np.dtype("float16"), np.dtype("float32"), np.dtype("float64")
int64, bool_ = np.dtype("int64"), np.dtype("bool")
_FLOATS = (float16, float32, float64)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
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
    if arr.dtype.kind in "fc":
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
        if isinstance(data, (np.ndarray, np.generic)):      # numpy keeps its float dtype: np.float64(1) too
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
            if arr.dtype not in _FLOATS:       # the constructor's wording differs from requires_grad_()'s
                raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
            self.requires_grad_(True)

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
        return from_array(self._data)

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
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {tuple(g.shape)} and "
                                   f"output[0] has a shape of {tuple(self.shape)}.")
            g = g.astype(self.dtype)       # a copy: the engine and the trace never alias the caller's array
        run_backward(self, g, bool(retain_graph), from_array)

    # -- ops -----------------------------------------------------------------------------------
    def _scalar(self, other) -> Tensor:
        """Python numbers meet a tensor in the tensor's dtype (floats in float32 if it is an int tensor)."""
        if isinstance(other, Tensor):
            return other
        if type(other) is float or type(other) is int:       # the common case, fast
            dtype = self._data.dtype
            if dtype.kind != "f":
                dtype = _DEFAULT_DTYPE if type(other) is float else int64
            t = from_array(np.array(other, dtype=dtype))
            if trace._ACTIVE is not None:                     # the label is only read by a recorder
                t.name = f"{other:g}"
            return t
        arr = np.asarray(other)
        if arr.dtype.kind == "f" or self._data.dtype.kind == "f":
            dtype = self._data.dtype if self._data.dtype.kind == "f" else _DEFAULT_DTYPE
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

    def _inplace(self, short: str, o) -> Tensor:
        """``w -= lr * w.grad`` under ``no_grad()`` updates ``w`` itself, as in PyTorch's tutorials."""
        other = self._scalar(o)
        if _grad_enabled and (self.requires_grad or other.requires_grad):
            if self.grad_fn is None and self.requires_grad:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            # NOTE: a non-leaf gets a new node, like `h = h + 1`; PyTorch would rewrite h itself.
            return apply_op(short, (self, other))
        out = RULES[short].forward(*_promote(short, self._data, other._data))[0]
        if out.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(out.shape)}")
        if not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"result type {torch_dtype_name(out.dtype)} can't be cast to the desired output "
                               f"type {torch_dtype_name(self.dtype)}")
        self._data[...] = out
        return self

    def __iadd__(self, o): return self._inplace("add", o)
    def __isub__(self, o): return self._inplace("sub", o)
    def __imul__(self, o): return self._inplace("mul", o)
    def __itruediv__(self, o): return self._inplace("div", o)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor) or isinstance(exponent, float) and self._data.dtype.kind != "f":
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

    def flatten(self):
        return self.reshape(-1)

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
        kind = _index_kind(index, self.shape)
        if kind is None:
            return apply_op("index", (self,), index=index)
        return apply_op("getitem", (self,), alias=kind, index=index)

    def softmax(self, dim: int):
        return softmax(self, dim)

    def log_softmax(self, dim: int):
        return log_softmax(self, dim)

    def to(self, dtype, copy: bool = False):
        dtype = np.dtype(dtype)
        if dtype == self._data.dtype and not copy:
            return self
        return apply_op("to", (self,), dtype=dtype)

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
def from_array(arr: np.ndarray) -> Tensor:
    """A leaf tensor over ``arr`` itself: no copy and no dtype rules (the array's dtype is kept).

    For arrays the core made (op results, gradients) and arrays their owner hands over (a batch of
    data); what a user passes goes through :func:`tensor`, which copies and applies PyTorch's rules.
    """
    t = object.__new__(Tensor)
    t._data, t.grad, t.requires_grad, t.grad_fn = arr, None, False, None
    t._retains_grad, t.name = False, None
    return t


_autocast_hook = None      # set by gradviz.amp.autocast while active: (short, inputs) -> inputs


def autocast_hook():
    """The function :func:`apply_op` hands each op's inputs to first, or None (autocast is off)."""
    return _autocast_hook


def set_autocast_hook(hook) -> None:
    """Install ``hook(short, inputs) -> inputs`` for every op (``gradviz.amp.autocast``), or None."""
    global _autocast_hook
    _autocast_hook = hook


def apply_op(short: str, inputs: tuple, alias: str | None = None, **kwargs) -> Tensor:
    """Run the rule ``RULES[short]`` on ``inputs`` (tensors): promote dtypes, compute, and link the
    result into the graph when an input requires grad; ``alias`` picks PyTorch's grad_fn name for
    this call (``ALIASES``). Every differentiable op goes through here."""
    if _autocast_hook is not None:
        inputs = _autocast_hook(short, inputs)     # may cast matmul inputs to float16 (gradviz.amp)
    rule = RULES[short]
    if rule.elementwise:                           # the binary ops: promote dtypes as PyTorch does
        a, b = inputs[0]._data, inputs[1]._data
        arrays = (a, b) if a.dtype == b.dtype and a.dtype.kind == "f" else _promote(short, a, b)
    else:
        arrays = [t._data for t in inputs]
    try:
        out_data, saved = rule.forward(*arrays, **kwargs)
    except ValueError:
        message = rule.elementwise and _broadcast_error(arrays[0].shape, arrays[1].shape)
        if message:
            raise RuntimeError(message) from None
        raise
    if type(out_data) is not np.ndarray:         # numpy reductions and 0-d arithmetic give scalars
        out_data = np.asarray(out_data)
    label = ALIASES.get((short, alias), rule.name) if alias else rule.name
    out = from_array(out_data)
    if _grad_enabled:
        for t in inputs:
            if t.requires_grad:
                out.requires_grad, out.grad_fn = True, Node(rule, inputs, saved, kwargs, label)
                break
    rec = trace._ACTIVE
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
    if bool(a.ndim) == bool(b.ndim):
        dtype = _promote_types(a.dtype, b.dtype)
    else:
        higher, lower = (a.dtype, b.dtype) if a.ndim else (b.dtype, a.dtype)
        if higher.kind == "f" or (higher.kind != "b" and lower.kind != "f"):
            dtype = higher
        else:
            dtype = _promote_types(higher, lower)
    if short == "div" and dtype.kind != "f":
        dtype = _DEFAULT_DTYPE
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def _norm_dims(dim, ndim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return tuple(sorted(d % max(ndim, 1) for d in dim))
    return dim % max(ndim, 1)


def torch_dtype_name(dtype) -> str:
    """PyTorch's name of a dtype in its error messages: ``Float``, ``Long``, ..."""
    return {"int64": "Long", "bool": "Bool", "int32": "Int", "float16": "Half", "float32": "Float",
            "float64": "Double"}.get(str(dtype), str(dtype))


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def matmul(a, b) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    sa, sb = a._data.shape, b._data.shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D")
    if sa[-1] != (sb[0] if nb == 1 else sb[-2]) or na > 2 and nb > 2:
        message = _matmul_shape_error(a, b)
        if message:
            raise RuntimeError(message)
    if na == 2 and nb == 2:
        return apply_op("matmul", (a, b))
    kind = ("dot" if na == 1 and nb == 1 else "mv" if na == 2 and nb == 1 else "vm" if na == 1 and nb == 2
            else _batched_matmul_kind(a, b))
    return apply_op("matmul", (a, b), alias=kind)


def _broadcast_error(sa: tuple, sb: tuple) -> str | None:
    """PyTorch's message when two shapes do not broadcast (it reports the last mismatching dim)."""
    n = max(len(sa), len(sb))
    for i in range(n - 1, -1, -1):
        da = sa[i - n + len(sa)] if i - n + len(sa) >= 0 else 1
        db = sb[i - n + len(sb)] if i - n + len(sb) >= 0 else 1
        if da != db and da != 1 and db != 1:
            return f"The size of tensor a ({da}) must match the size of tensor b ({db}) at non-singleton dimension {i}"
    return None


def _matmul_shape_error(a, b) -> str | None:
    """PyTorch's message for shapes matmul cannot multiply; it names the op matmul dispatched to
    (dot, mv, mm on folded batches, bmm), so the sizes it shows are that op's."""
    sa, sb = a.shape, b.shape
    if len(sa) == len(sb) == 3 and sa[0] != sb[0]:            # ATen squeezes a batch of 1 needing grad
        if sa[0] == 1 and a.requires_grad:
            sa = sa[1:]
        elif sb[0] == 1 and b.requires_grad:
            sb = sb[1:]
    ka, kb = sa[-1], sb[0] if len(sb) == 1 else sb[-2]
    mm = "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})"
    mv = "size mismatch, got input ({0}), mat ({0}x{1}), vec ({2})"
    rows_a = int(np.prod(sa[:-1]))
    rows_b = int(np.prod(sb[:-2])) * sb[-1] if len(sb) >= 2 else 0
    strides = a._data.strides
    fold_a = len(sa) >= 3 and len(sb) <= 2 and (b.requires_grad or len(sa) < a.ndim or all(
        strides[i] == strides[i + 1] * sa[i + 1] for i in range(len(sa) - 2)))
    if len(sa) == len(sb) == 1:
        message = (f"inconsistent tensor size, expected tensor [{ka}] and src [{kb}] to have the same number "
                   f"of elements, but got {ka} and {kb} elements respectively")
    elif len(sa) == 2 and len(sb) == 1 or fold_a and len(sb) == 1:
        message = mv.format(rows_a, ka, kb)
    elif len(sa) <= 2 and len(sb) == 2 or fold_a:
        message = mm.format(rows_a, ka, kb, sb[1])
    elif len(sa) == 1 and a.requires_grad:                     # vector @ batch: an mv on b's transpose
        message = mv.format(rows_b, kb, ka)
    elif len(sa) == 2 and a.requires_grad:                     # matrix @ batch: an mm on b's transpose
        message = mm.format(rows_b, kb, ka, sa[0])
    else:
        message = _broadcast_error(sa[:-2], sb[:-2] if len(sb) > 1 else ())
        batch = int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2] if len(sb) > 1 else ()))) if not message else 0
        if not message and ka != kb:
            message = (f"Expected size for first two dimensions of batch2 tensor to be: [{batch}, {ka}] but got: "
                       f"[{batch}, {kb}].")
    return message if ka != kb or message and message.startswith("The size") else None


def _batched_matmul_kind(a, b) -> str:
    """Which op ends PyTorch's batched matmul, for its grad_fn name (ATen's ``_matmul_impl``).

    A matrix ``a`` that requires grad times a batch ``b`` is computed as one mm on ``b``'s
    transpose; the transposed result is then copied (CloneBackward0), unless it is already
    contiguous (a single row or column: TransposeBackward0).  A 3-D ``a`` with a broadcast batch
    of 1 is squeezed to a matrix first.  Every other case ends in a reshape (UnsafeViewBackward0).
    """
    a_ndim = a.ndim
    if a.ndim == b.ndim == 3 and a.shape[0] == 1 != b.shape[0] and a.requires_grad:
        a_ndim = 2
    if a_ndim == 2 and b.ndim >= 3 and a.requires_grad:
        return "fold_t" if a.shape[-2] > 1 and b.shape[-1] > 1 else "fold_t_vector"
    return "bmm"


def _index_kind(index, shape) -> str | None:
    """PyTorch's grad_fn for basic indexing is the last view it applies (None: advanced indexing).

    ``x[i]`` is a select, ``x[a:b]`` a slice, ``x[None]`` an unsqueeze; inside a tuple, slices that
    cover their whole dimension are skipped, and if nothing is left the result is an alias.
    """
    if isinstance(index, slice):
        return "slice"
    index = index if isinstance(index, tuple) else (index,)
    kind, dim = "alias", 0
    for i in index:
        if i is None:
            kind = "unsqueeze"
        elif i is Ellipsis:
            dim += len(shape) - sum(1 for j in index if j is not None and j is not Ellipsis)
        elif isinstance(i, slice):
            if dim < len(shape) and i.indices(shape[dim]) != (0, shape[dim], 1):
                kind = "slice"
            dim += 1
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            kind, dim = "select", dim + 1
        else:
            return None
    return kind


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
    """The dtype follows ``fill_value`` as in PyTorch: bool, int64, or float32 for a float."""
    if dtype is None and isinstance(fill_value, float):
        dtype = _DEFAULT_DTYPE
    return Tensor(np.full(tuple(size), fill_value, dtype=dtype), requires_grad=requires_grad)


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
    """``arange(end)`` or ``arange(start, end, step)``; int64 for integer arguments, else float32."""
    arr = np.arange(start, end, step)      # numpy reads arange(n, None, step) as arange(0, n, step)
    return Tensor(arr, dtype=dtype or (_DEFAULT_DTYPE if arr.dtype.kind == "f" else None))


def is_tensor(x) -> bool:
    return isinstance(x, Tensor)
