"""The backward engine: graph nodes, an iterative topological sort, gradient accumulation.

PyTorch's rules, which micrograd does not follow:
- only leaves (and tensors that called ``retain_grad()``) keep a ``.grad``; intermediate nodes
  never accumulate across ``backward()`` calls;
- a leaf's ``.grad`` *accumulates*: a second ``backward()`` without ``zero_grad()`` adds to it;
- saved values are freed after ``backward()`` unless ``retain_graph=True``; backward through a
  node whose saved values were freed raises.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import numpy as np

from . import trace
from ._dtypes import backward_in_float32, torch_dtype_name, upcast
from .functions import SAVED_TENSORS, Rule
from .functions import unbroadcast as _unbroadcast

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward.")


_SEQ = itertools.count()


class Node:
    """A ``grad_fn``: the rule that produced a tensor, its inputs and what it saved for backward.

    ``seq`` orders nodes by creation (an in-place op tells older nodes from newer ones by it);
    ``versions`` holds ``(counter, version, tensor, None)`` for each saved input and
    ``(counter, version, array, label)`` for its own saved output (no reference back to the output
    tensor or this node: no reference cycle), or None.
    """
    __slots__ = ("rule", "inputs", "saved", "kwargs", "freed", "label", "seq", "versions")
    next_seq = staticmethod(_SEQ.__next__)

    def __init__(self, rule: Rule, inputs: tuple, saved, kwargs: dict, label: str):
        self.rule, self.inputs, self.saved, self.kwargs = rule, inputs, saved, kwargs
        self.freed, self.label, self.seq, self.versions = False, label, next(_SEQ), None

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
            if inp._history is not None:
                inp = as_of(inp, fn)
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


def run_backward(root, gradient: np.ndarray, retain_graph: bool, new_tensor: Callable) -> None:
    """Send ``gradient`` (d root / d root) back through the graph below ``root``.

    ``new_tensor(array)`` makes the tensor that becomes a leaf's first ``.grad``: the caller (the
    tensor module) passes it, so this module never imports the tensor class it works on.
    """
    rec = trace._state.recorder
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
        if fn.versions is not None:
            for counter, version, saved_t, producer in fn.versions:
                if counter[0] != version:
                    raise RuntimeError(_modified_message(saved_t, producer, counter[0], version))
        in_float32 = backward_in_float32(rule, g.dtype)
        kwargs = fn.kwargs
        if rule.masked:              # the gradients no input needs are not computed (needs_input_grad)
            kwargs = dict(kwargs, needs=tuple([(as_of(i, fn) if i._history is not None else i).requires_grad
                                               for i in fn.inputs]))
        if in_float32:
            # NOTE: PyTorch's CPU half/bfloat16 kernels compute a backward formula in float32 and round
            # once; numpy would round after every operation of the formula (see gradviz._dtypes).
            in_grads = rule.backward(g.astype(np.float32), upcast(fn.saved), **kwargs)
        else:
            in_grads = rule.backward(g, fn.saved, **kwargs)
        elementwise = rule.elementwise
        sent = [] if rec is not None else None       # what the recorder is told each input received
        for inp, gi in zip(fn.inputs, in_grads):
            if inp._history is not None:
                inp = as_of(inp, fn)
            if gi is None or not inp.requires_grad:
                if sent is not None:
                    sent.append(None)
                continue
            data = inp._data
            if in_float32:                       # round once, before un-broadcasting (PyTorch's sum_to)
                gi = np.asarray(gi).astype(g.dtype, copy=False)
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


# -- in-place ops: version checks and the history of a tensor changed in place ---------------------
def record_versions(node: Node, short: str, out) -> None:
    """Remember the version of each tensor ``node`` saved for backward (``SAVED_TENSORS``), with
    the node that made it (for the error message)."""
    spec = SAVED_TENSORS.get(short)
    if spec is None:
        return
    inputs = node.inputs
    if spec == "cross":          # mul, mm, addmm: each factor is saved when the other needs a gradient
        x, y = inputs[0], inputs[1]
        saved = (x, y) if x.requires_grad and y.requires_grad else (x,) if y.requires_grad else (y,)
    elif spec == "div":          # the divisor always, the dividend when the divisor needs a gradient
        saved = (inputs[1], inputs[0]) if inputs[1].requires_grad else (inputs[1],)
    elif spec == "o":
        # its own output: the array and the node's name only. Holding the output tensor (or the
        # node) here would make a reference cycle out -> grad_fn -> versions -> out, and every
        # step's activations would wait for Python's cycle collector instead of being freed.
        node.versions = ((out._version, out._version[0], out._data, node.label),)
        return
    elif spec == "0":
        x = inputs[0]
        node.versions = ((x._version, x._version[0], x, None),)
        return
    else:
        saved = [out if c == "o" else inputs[int(c)] for c in spec]
    node.versions = tuple([(t._version, t._version[0], t._data, node.label) if t is out else
                           (t._version, t._version[0], t, None) for t in saved])


def _modified_message(t, producer: str | None, version: int, expected: int) -> str:
    """``t``: a saved input tensor, or a node's own saved output as its array (``producer``: that
    node's label)."""
    data = t if isinstance(t, np.ndarray) else t._data
    shape = ", ".join(str(n) for n in data.shape)
    # PyTorch names the node that made a saved output, and an input's grad_fn as it is now
    if producer is None and not isinstance(t, np.ndarray) and t.grad_fn is not None:
        producer = t.grad_fn.label
    which = f", which is output 0 of {_short_name(producer)}," if producer else ""
    return ("one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"[torch.{torch_dtype_name(data.dtype)}Tensor [{shape}]]{which} is at version {version}; "
            f"expected version {expected} instead. Hint: enable anomaly detection to find the operation that "
            "failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _short_name(label: str) -> str:
    """The node name PyTorch's message uses: ``Exp`` for ExpBackward0, ``Clamp1`` for ClampBackward1,
    ``torch::autograd::CopySlices`` for the nodes without "Backward<n>"."""
    match = re.fullmatch(r"(.*)Backward([0-9]+)", label)
    if match is None:
        return "torch::autograd::" + label
    return match.group(1) + ("" if match.group(2) == "0" else match.group(2))


def as_of(t, node: Node):
    """``t`` as ``node`` saw it: the snapshot taken by the first in-place op on ``t`` after ``node``
    was made, or ``t`` itself (``t._history`` lists ``(seq, snapshot)`` oldest first)."""
    for seq, old in t._history:
        if node.seq < seq:
            return old
    return t
