"""The backward engine: graph nodes, an iterative topological sort, gradient accumulation.

PyTorch's rules, which micrograd does not follow:
- only leaves (and tensors that called ``retain_grad()``) keep a ``.grad``; intermediate nodes
  never accumulate across ``backward()`` calls;
- a leaf's ``.grad`` *accumulates*: a second ``backward()`` without ``zero_grad()`` adds to it;
- saved values are freed after ``backward()`` unless ``retain_graph=True``; backward through a
  node whose saved values were freed raises.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import trace
from .functions import Rule
from .functions import unbroadcast as _unbroadcast

_FLOAT16 = np.dtype(np.float16)

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")


class Node:
    """A ``grad_fn``: the rule that produced a tensor, its inputs and what it saved for backward."""
    __slots__ = ("rule", "inputs", "saved", "kwargs", "freed", "label")

    def __init__(self, rule: Rule, inputs: tuple, saved, kwargs: dict, label: str):
        self.rule, self.inputs, self.saved, self.kwargs = rule, inputs, saved, kwargs
        self.freed, self.label = False, label

    def name(self) -> str:
        return self.label

    @property
    def next_functions(self) -> tuple:
        """Like PyTorch: for each input, its grad_fn (or "AccumulateGrad" for a leaf needing grad)."""
        return tuple((t.grad_fn if t.grad_fn is not None else ("AccumulateGrad" if t.requires_grad else None), 0)
                     for t in self.inputs)

    def __repr__(self) -> str:
        return f"<{self.label} object at {id(self):#x}>"


def topological_order(root) -> list:
    """Tensors reachable from ``root`` through inputs needing grad, root first.

    Iterative depth-first post-order (no recursion limit), visiting inputs in argument order so
    that the order is the same on every run.
    """
    # Tensors hash by identity (Tensor.__hash__ is object's), so sets and dicts hold them directly.
    post, visited, stack = [], set(), [root]
    push, pop, emit, visit = stack.append, stack.pop, post.append, visited.add
    while stack:
        t = pop()
        if t is None:                # marker: everything above t on the stack is done, emit t
            emit(pop())
            continue
        if t in visited:
            continue
        visit(t)
        fn = t.grad_fn
        if fn is None:               # a leaf has no inputs: it is done as soon as it is reached
            emit(t)
            continue
        push(t)
        push(None)
        for inp in reversed(fn.inputs):
            if inp.requires_grad and inp not in visited:
                push(inp)
    post.reverse()
    return post


def _accumulate(t, g: np.ndarray, rec, new_tensor: Callable) -> None:
    grad = t.grad
    if grad is None:
        before = None
        # A fresh array: never alias a gradient that another node may still be holding.
        arr = np.array(g, dtype=t._data.dtype, copy=True)
        t.grad = new_tensor(arr if arr.shape == t._data.shape else arr.reshape(t._data.shape))
    else:
        before = grad._data.copy() if rec is not None else None
        grad._data += g              # in place, as PyTorch's AccumulateGrad does
    if rec is not None:
        rec.on_accumulate(t, before, g, t.grad._data)


def _upcast_half(saved):
    if isinstance(saved, np.ndarray):
        return saved.astype(np.float32) if saved.dtype == np.float16 else saved
    if isinstance(saved, tuple):
        return tuple(_upcast_half(x) for x in saved)
    return saved


def run_backward(root, gradient: np.ndarray, retain_graph: bool, new_tensor: Callable) -> None:
    """Send ``gradient`` (d root / d root) back through the graph below ``root``.

    ``new_tensor(array)`` makes the tensor that becomes a leaf's first ``.grad``: the caller (the
    tensor module) passes it, so this module never imports the tensor class it works on.
    """
    rec = trace._ACTIVE
    grads = {root: gradient}
    pop, get = grads.pop, grads.get
    for t in topological_order(root):
        g = pop(t, None)
        if g is None:
            continue
        fn = t.grad_fn
        if fn is None or t._retains_grad:
            _accumulate(t, g, rec, new_tensor)
            if fn is None:
                continue
        rule = fn.rule
        if fn.freed and rule.saves:
            raise RuntimeError(SECOND_BACKWARD)
        if g.dtype == _FLOAT16:
            # NOTE: PyTorch's CPU half kernels compute each backward formula in float32 and round once;
            # numpy would round after every operation of the formula.
            in_grads = rule.backward(g.astype(np.float32), _upcast_half(fn.saved), **fn.kwargs)
        else:
            in_grads = rule.backward(g, fn.saved, **fn.kwargs)
        elementwise = rule.elementwise
        sent = [] if rec is not None else None       # what the recorder is told each input received
        for inp, gi in zip(fn.inputs, in_grads):
            if gi is None or not inp.requires_grad:
                if sent is not None:
                    sent.append(None)
                continue
            data = inp._data
            if elementwise and gi.shape != data.shape:
                gi = _unbroadcast(gi, data.shape)
            if type(gi) is not np.ndarray or gi.dtype != data.dtype:     # numpy scalars, promoted dtypes
                gi = np.asarray(gi, dtype=data.dtype)
            if sent is not None:
                sent.append(gi)
            prev = get(inp)
            grads[inp] = gi if prev is None else prev + gi
        if sent is not None:
            rec.on_backward(t, fn.label, g, fn.inputs, tuple(sent))
        if not retain_graph:
            fn.freed = True
            if rule.saves:           # rules that save no tensors keep their metadata (shapes), so
                fn.saved = None      # backward through them again works, as in PyTorch
