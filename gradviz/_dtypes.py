"""How float16 and bfloat16 ops compute: in float32 ("opmath"), rounded once, as PyTorch's CPU kernels do.

numpy's float16 arithmetic rounds after every operation and rounds a Python scalar to float16
before using it; PyTorch's CPU kernels load half-precision values into float32, do the whole op
there (a Python scalar or a 0-d tensor of another float dtype enters as float32, not rounded to
half) and round the result once.  So ``half([0.3, 1.7]) * 0.1`` is 0.17004 in PyTorch, not
0.16992, and ``half([0.3]) * 70000.0`` is 21008, not inf.

:func:`run_forward` applies that rule to every row of the op table; the backward engine applies it
to the backward formulas (:func:`backward_in_float32`).  ``bfloat16`` comes from ``ml_dtypes``.
"""
from __future__ import annotations

import numpy as np

try:
    import ml_dtypes
    bfloat16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:               # pragma: no cover - ml_dtypes is a dependency
    bfloat16 = None

float16, float32 = np.dtype("float16"), np.dtype("float32")
LOW_PRECISION = tuple(d for d in (float16, bfloat16) if d is not None)

# Ops that move or select values compute nothing: they run in the input dtype (no round trip).
# ``to`` picks its own output dtype.
_NO_ARITHMETIC = frozenset({"to", "reshape", "permute", "getitem", "index", "neg", "max", "max_dim",
                            "relu", "clamp"})

# PyTorch's CPU kernels for these take a scalar operand (a Python number, a 0-d tensor) in float32
# as it is; other binary ops cast every operand to the result dtype first, so in ``half + 0.1`` the
# 0.1 is rounded to half (measured against torch 2.13: add, sub, pow round it; mul, div do not).
_SCALAR_IN_FLOAT32 = frozenset({"mul", "div"})

# NOTE: PyTorch's backward for these is a composition of ATen ops (derivatives.yaml), each of which
# rounds to half: ``div``'s other-gradient is ``-grad * ((self / other) / other)``, ``pow``'s is
# ``grad * (exponent * self.pow(exponent - 1))``, ``reciprocal``'s ``-grad * (result * result)``.
# numpy's half ops round after each op the same way, so these formulas run in the input dtype.
# Every other rule's backward is one op or one fused kernel (``tanh_backward``,
# ``sigmoid_backward``, ``threshold_backward``, ``mm``) that computes in float32 and rounds once.
_COMPOSITE_BACKWARD = frozenset({"div", "pow", "pow_scalar", "reciprocal"})


def is_low_precision(dtype) -> bool:
    return dtype == float16 or dtype == bfloat16


def is_floating(dtype) -> bool:
    """True for float16/32/64 and bfloat16 (numpy files ml_dtypes' bfloat16 under kind 'V')."""
    return dtype.kind == "f" or dtype == bfloat16


def run_forward(rule, arrays, kwargs: dict, out_dtype):
    """``rule.forward(*arrays, **kwargs)``; when ``out_dtype`` is float16 or bfloat16 the inputs go
    to float32 unrounded (a float64 0-d scalar too), the op runs there and the result is rounded
    once to ``out_dtype``.  Saved values that are the output or an input are kept as PyTorch keeps
    them: the rounded result and the original low-precision inputs."""
    if out_dtype is None or not is_low_precision(out_dtype) or rule.short in _NO_ARITHMETIC:
        return rule.forward(*arrays, **kwargs)
    if rule.elementwise and rule.short not in _SCALAR_IN_FLOAT32:
        with np.errstate(over="ignore"):          # half + 70000.0 is inf, as in PyTorch
            arrays = [a.astype(out_dtype, copy=False) for a in arrays]
    up = [a.astype(float32) if isinstance(a, np.ndarray) else a for a in arrays]
    out32, saved = rule.forward(*up, **kwargs)
    out32 = np.asarray(out32)
    out = out32.astype(out_dtype) if out32.dtype == float32 else out32
    originals = {id(u): a for u, a in zip(up, arrays)}
    originals[id(out32)] = out
    return out, _replace(saved, originals)


def _replace(saved, originals: dict):
    if isinstance(saved, np.ndarray):
        return originals.get(id(saved), saved)
    if isinstance(saved, tuple):
        return tuple(_replace(x, originals) for x in saved)
    return saved


def backward_in_float32(rule, grad_dtype) -> bool:
    """Whether the engine runs ``rule.backward`` in float32 for a gradient of ``grad_dtype``."""
    return is_low_precision(grad_dtype) and rule.short not in _COMPOSITE_BACKWARD


def upcast(saved):
    """Saved float16/bfloat16 arrays (nested in tuples) as float32."""
    if isinstance(saved, np.ndarray):
        return saved.astype(float32) if is_low_precision(saved.dtype) else saved
    if isinstance(saved, tuple):
        return tuple(upcast(x) for x in saved)
    return saved


def sum_to(g: np.ndarray, axis, keepdims: bool = False):
    """``g.sum(axis)``; float16/bfloat16 accumulate in float32 and round once, as PyTorch's sum does."""
    if is_low_precision(g.dtype):
        return np.asarray(g.sum(axis=axis, dtype=float32, keepdims=keepdims)).astype(g.dtype)
    return g.sum(axis=axis, keepdims=keepdims)


class TorchDType:
    """What ``tensor.dtype`` and ``torch.float32`` are inside a script run on the core: a numpy
    dtype that prints as PyTorch's (``torch.float32``) and has ``torch.dtype``'s attributes.

    numpy takes it wherever it takes a dtype (through its ``dtype`` attribute), and it compares
    and hashes equal to the numpy dtype it wraps, so the core's tables and checks accept it."""
    __slots__ = ("numpy", "_name")

    def __init__(self, dtype, name: str):
        self.numpy, self._name = np.dtype(dtype), name

    @property
    def dtype(self) -> np.dtype:             # numpy's protocol: np.dtype(x) reads x.dtype
        return self.numpy

    @property
    def is_floating_point(self) -> bool:
        return is_floating(self.numpy)

    @property
    def is_complex(self) -> bool:
        return self.numpy.kind == "c"

    @property
    def is_signed(self) -> bool:
        return self.numpy.kind in "fi" or self.numpy == bfloat16

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    def to_real(self):
        return self

    def __getattr__(self, name):             # kind, type, char...: the core reads them off a dtype
        return getattr(self.numpy, name)

    def __eq__(self, other):
        if isinstance(other, TorchDType):
            return self.numpy == other.numpy
        if isinstance(other, np.dtype) or isinstance(other, type) and issubclass(other, np.generic):
            return self.numpy == other       # as numpy compares: x.dtype == np.float32 holds
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.numpy)

    def __repr__(self) -> str:
        return f"torch.{self._name}"

    def __reduce__(self):
        return (TorchDType, (self.numpy, self._name))


def torch_dtype_name(dtype) -> str:
    """PyTorch's name of a dtype in its error messages: ``Float``, ``Long``, ..."""
    if isinstance(dtype, TorchDType):
        dtype = dtype.numpy
    return {"int64": "Long", "bool": "Bool", "int32": "Int", "float16": "Half", "bfloat16": "BFloat16",
            "float32": "Float", "float64": "Double"}.get(str(dtype), str(dtype))
