"""The backward engine: graph nodes, an iterative topological sort, gradient accumulation.

PyTorch's rules, which micrograd does not follow:
- only leaves (and tensors that called ``retain_grad()``) keep a ``.grad``; intermediate nodes
  never accumulate across ``backward()`` calls;
- a leaf's ``.grad`` *accumulates*: a second ``backward()`` without ``zero_grad()`` adds to it;
- saved values are freed after ``backward()`` unless ``retain_graph=True``; backward through a
  node whose saved values were freed raises.
"""
from __future__ import annotations

import numpy as np

from . import trace
from .functions import Rule, unbroadcast as _unbroadcast

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
    post, visited, stack = [], set(), [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            post.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        fn = t.grad_fn
        if fn is not None:
            for inp in reversed(fn.inputs):
                if inp.requires_grad and id(inp) not in visited:
                    stack.append((inp, False))
    post.reverse()
    return post


def _accumulate(t, g: np.ndarray, rec) -> None:
    g = g.astype(t._data.dtype, copy=False)
    before = t.grad._data.copy() if rec is not None and t.grad is not None else None
    if t.grad is None:
        from .tensor import Tensor
        # A fresh array: never alias a gradient that another node may still be holding.
        t.grad = Tensor._wrap(np.array(g, dtype=t._data.dtype, copy=True).reshape(t._data.shape))
    else:
        t.grad._data += g            # in place, as PyTorch's AccumulateGrad does
    if rec is not None:
        rec.on_accumulate(t, before, g, t.grad._data)


def run_backward(root, gradient: np.ndarray, retain_graph: bool) -> None:
    rec = trace._ACTIVE
    order = topological_order(root)
    grads = {id(root): gradient}
    for t in order:
        g = grads.pop(id(t), None)
        if g is None:
            continue
        fn = t.grad_fn
        if fn is None or t._retains_grad:
            _accumulate(t, g, rec)
        if fn is None:
            continue
        rule = fn.rule
        if fn.freed and rule.saves:
            raise RuntimeError(SECOND_BACKWARD)
        in_grads = rule.backward(g, fn.saved, **fn.kwargs)
        sent = []
        for inp, gi in zip(fn.inputs, in_grads):
            if gi is None or not inp.requires_grad:
                sent.append(None)
                continue
            if rule.elementwise and gi.shape != inp._data.shape:
                gi = _unbroadcast(gi, inp._data.shape)
            gi = np.asarray(gi, dtype=inp._data.dtype)
            sent.append(gi)
            prev = grads.get(id(inp))
            grads[id(inp)] = gi if prev is None else prev + gi
        if rec is not None:
            rec.on_backward(t, fn.label, g, fn.inputs, tuple(sent))
        if not retain_graph:
            fn.saved, fn.freed = None, True

