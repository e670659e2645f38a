"""What one iteration of a scenario's model computes, worked out without computing it.

- ``check_shapes``: evaluates the expression on stand-ins that carry shapes instead of values, so
  shape mismatches (and arithmetic on plain numbers with no finite, real result) are found when a
  file is loaded, not when it runs;
- ``graph_nodes``: roughly how many nodes one traced iteration records (``LIMITS["max_graph_nodes"]``
  is measured with it).
"""
from __future__ import annotations

import math

import numpy as np

from . import expr
from .schema import ModelSpec

MAX_INTERMEDIATE = 10_000_000  # elements of any array an expression computes for one micro-batch

# Nodes a traced micro-batch adds for its loss, as PyTorch builds it: the target leaf and one fused
# node (MseLossBackward0, BinaryCrossEntropyWithLogitsBackward0); Sub, Abs, Mean for l1; LogSoftmax
# and NllLoss for cross_entropy (its class indices are no node). The division by accumulation_steps /
# multiplication by the loss scale are the "+ 2" of graph_nodes.
_LOSS_NODES = {"mse": 2, "l1": 4, "bce_with_logits": 2, "cross_entropy": 2}
_NODES_PER_LINEAR = 7          # weight, bias, transpose, matmul, add (+ 2 float16 casts)


# --- node count -----------------------------------------------------------------------------

def _model_nodes(model: ModelSpec, tree) -> int:
    if model.kind == "layers":          # the input, then each Linear and each activation
        return 1 + sum(_NODES_PER_LINEAR if m.kind == "Linear" else 1 for m in model.layer_modules())
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(child for child in (getattr(node, "operand", None), getattr(node, "left", None),
                                         getattr(node, "right", None), getattr(node, "arg", None))
                     if child is not None)
    return count


def graph_nodes(model: ModelSpec, tree, accumulation_steps: int, loss_kind: str = "mse") -> int:
    """Nodes of one traced iteration: ``tree`` is the parsed expression (None for layers)."""
    per_micro = _model_nodes(model, tree) + 2
    if model.kind != "objective":
        per_micro += _LOSS_NODES[loss_kind]
    return per_micro * accumulation_steps


# --- shapes ---------------------------------------------------------------------------------

def _matmul_shape(a: tuple, b: tuple) -> tuple:
    """numpy/PyTorch matmul: (k,)@(k,) -> (), (m,k)@(k,) -> (m,), batch dimensions broadcast."""
    if not a or not b:
        raise ValueError(f"'@' needs arrays on both sides, found shapes {a} and {b}")
    left = (1,) + a if len(a) == 1 else a
    right = b + (1,) if len(b) == 1 else b
    if left[-1] != right[-2]:
        raise ValueError(f"'@' cannot multiply shapes {a} and {b} ({left[-1]} != {right[-2]})")
    out = tuple(_broadcast(left[:-2], right[:-2])) + (left[-2], right[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _broadcast(a: tuple, b: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"shapes {a} and {b} do not broadcast together") from None


class _Shape:
    """Stands in for an array in ``expr.evaluate``: operators combine shapes, not values."""

    def __init__(self, shape: tuple):
        self.shape = tuple(shape)
        if math.prod(self.shape) > MAX_INTERMEDIATE:
            raise ValueError(f"an intermediate result of shape {self.shape} (more than "
                             f"{MAX_INTERMEDIATE} elements)")

    @staticmethod
    def of(value) -> tuple:
        if isinstance(value, complex):      # Python's (-8.0) ** 0.5; the Session cannot run it
            raise ArithmeticError(f"the complex number {value:g} (a negative number to a fractional power)")
        return value.shape if isinstance(value, _Shape) else ()

    def _elementwise(self, other):
        return _Shape(_broadcast(self.shape, _Shape.of(other)))

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _elementwise
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _elementwise

    def __matmul__(self, other):
        return _Shape(_matmul_shape(self.shape, _Shape.of(other)))

    def __rmatmul__(self, other):
        return _Shape(_matmul_shape(_Shape.of(other), self.shape))

    def __neg__(self):
        return self

    __pos__ = __neg__


def _reduce_shape(value) -> _Shape:
    _Shape.of(value)                        # refuses a complex number
    return _Shape(())


def _same_shape(value):
    _Shape.of(value)
    return value


_SHAPE_FUNCTIONS = {name: _reduce_shape if name in ("sum", "mean") else _same_shape for name in expr.FUNCTIONS}


def check_shapes(kind: str, tree, params: dict[str, tuple], inputs: list[str],
                 micro_size: int) -> tuple[str, str] | None:
    """None when the value of the expression or objective ``tree`` is one number per example
    (an objective: one number), else (expected, found) for the error at ``model.<kind>``.
    ``params`` maps each parameter to its shape; each input is a column of ``micro_size`` (the
    micro-batch size)."""
    env = {name: _Shape(shape) for name, shape in params.items()}
    if kind == "expression":
        env.update({name: _Shape((micro_size,)) for name in inputs})
    try:
        shape = _Shape.of(expr.evaluate(tree, env, _SHAPE_FUNCTIONS))
    except ValueError as error:
        return ("operands whose shapes fit (elementwise: broadcasting; '@': (m, k) @ (k, n))",
                f"{error}, so the {kind} cannot run")
    except ArithmeticError as error:      # numbers alone: 1 / 0, 10.0 ** 400
        reason = error.args[-1] if error.args else ""
        return ("numbers whose arithmetic has a finite, real result",
                reason if type(error) is ArithmeticError else f"{type(error).__name__}: {reason}")
    if kind == "objective" and math.prod(shape) != 1:
        return ("an objective that is one number (use sum(...) or mean(...) over array parameters)",
                f"a value of shape {shape}")
    if kind == "expression" and shape != (micro_size,):
        return (f"one value per example: shape ({micro_size},) for a micro-batch of {micro_size} "
                "(each input is a column of that length)", f"a value of shape {shape}")
    return None
