"""Opt-in recording of what the autograd engine and the optimizers do, event by event.

    with gradviz.trace.record() as rec:
        loss = model(x)            # ForwardEvent per op
        loss.backward()            # BackwardEvent per node, AccumulateEvent per leaf
        optimizer.step()           # StepEvent

With no recorder active, every op pays one check (``_ACTIVE is None``).  Events are plain
dataclasses holding *copies* of numpy arrays, so a Trace stays valid after training moves on.
The UI replays a Trace; it never computes gradients itself.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_ACTIVE: "Recorder | None" = None


def current() -> "Recorder | None":
    """The active recorder, or None (the common, free case)."""
    return _ACTIVE


def _copy(a) -> np.ndarray | None:
    return None if a is None else np.array(a, copy=True)


@dataclass
class NodeInfo:
    """One vertex of the recorded graph."""
    id: int
    kind: str                 # "param" (leaf requiring grad), "input" (leaf without grad), "op"
    label: str                # parameter/input name, or the grad_fn-style op name ("MulBackward0")
    op: str                   # short op name ("mul", "add", ...) or "" for leaves
    shape: tuple
    dtype: str
    inputs: tuple = ()        # ids of input nodes, in argument order
    requires_grad: bool = False
    module: str = ""          # dotted name of the nn.Module that created it ("0" for Sequential[0]), "" if none


@dataclass
class PhaseEvent:
    """Loop-level marker emitted by the Session: zero_grad, forward, loss, backward, step."""
    phase: str
    micro_batch: int = 0
    iteration: int = 0


@dataclass
class ForwardEvent:
    node: int
    op: str
    inputs: tuple
    value: np.ndarray


@dataclass
class BackwardEvent:
    """A node's backward ran: it received ``grad_output`` and sent ``grad_inputs[i]`` to ``inputs[i]``
    (None where that input needs no gradient)."""
    node: int
    op: str
    grad_output: np.ndarray
    inputs: tuple
    grad_inputs: tuple


@dataclass
class AccumulateEvent:
    """A gradient landed in a tensor's ``.grad`` (a leaf, or a non-leaf with ``retain_grad()``)."""
    node: int
    before: np.ndarray | None     # None: .grad was None before
    added: np.ndarray
    after: np.ndarray


@dataclass
class ParamClear:
    node: int
    before: np.ndarray | None


@dataclass
class ZeroGradEvent:
    set_to_none: bool
    cleared: list[ParamClear] = field(default_factory=list)


@dataclass
class ParamUpdate:
    node: int
    before: np.ndarray
    after: np.ndarray
    grad: np.ndarray | None        # None: the parameter was skipped (its .grad was None)
    state_before: dict[str, Any]
    state_after: dict[str, Any]


@dataclass
class StepEvent:
    optimizer: str
    updates: list[ParamUpdate] = field(default_factory=list)
    skipped: bool = False          # e.g. GradScaler found inf/nan and skipped optimizer.step()


@dataclass
class ScalerEvent:
    """GradScaler.update(): the scale before and after, and whether an inf/nan was found."""
    scale_before: float
    scale_after: float
    found_inf: bool


class Recorder:
    """Collects events in the order they happen and a table of the nodes they mention."""

    def __init__(self):
        self.events: list = []
        self.nodes: dict[int, NodeInfo] = {}
        self._ids: dict[int, int] = {}       # id(tensor) -> node id
        self._keep: list = []                # keep tensors alive so id() stays unique

    # -- node table -------------------------------------------------------------------------
    def node_id(self, t) -> int:
        """The recorder's id for tensor ``t``, registering it as a leaf if it is new."""
        key = id(t)
        nid = self._ids.get(key)
        if nid is None:
            nid = len(self._ids)
            self._ids[key] = nid
            self._keep.append(t)
            kind = "param" if t.requires_grad else "input"
            label = getattr(t, "name", None) or (f"p{nid}" if t.requires_grad else f"x{nid}")
            self.nodes[nid] = NodeInfo(nid, kind, label, "", tuple(t.shape), str(t.dtype),
                                       (), bool(t.requires_grad), getattr(t, "module_name", "") or "")
        return nid

    def find(self, t) -> int | None:
        return self._ids.get(id(t))

    # -- hooks called by the engine -----------------------------------------------------------
    def on_forward(self, out, op_name: str, short: str, inputs) -> None:
        in_ids = tuple(self.node_id(t) for t in inputs)
        nid = self.node_id(out)
        info = self.nodes[nid]
        info.kind = "op" if out.grad_fn is not None else info.kind
        info.label, info.op, info.inputs = op_name, short, in_ids
        info.module = _MODULE_STACK[-1] if _MODULE_STACK else ""
        self.events.append(ForwardEvent(nid, op_name, in_ids, _copy(out.data)))

    def on_backward(self, out, op_name, grad_output, inputs, grad_inputs) -> None:
        self.events.append(BackwardEvent(
            self.node_id(out), op_name, _copy(grad_output),
            tuple(self.node_id(t) for t in inputs), tuple(_copy(g) for g in grad_inputs)))

    def on_accumulate(self, t, before, added, after) -> None:
        self.events.append(AccumulateEvent(self.node_id(t), _copy(before), _copy(added), _copy(after)))

    def on_zero_grad(self, params, set_to_none: bool) -> None:
        self.events.append(ZeroGradEvent(set_to_none, [
            ParamClear(self.node_id(p), _copy(None if p.grad is None else p.grad.data)) for p in params]))

    def add(self, event) -> None:
        self.events.append(event)

    def phase(self, phase: str, micro_batch: int = 0, iteration: int = 0) -> None:
        self.events.append(PhaseEvent(phase, micro_batch, iteration))


# Modules push their dotted name while they run so that nodes can be grouped (collapsed) by module.
_MODULE_STACK: list[str] = []


@contextlib.contextmanager
def module_scope(name: str):
    _MODULE_STACK.append(name)
    try:
        yield
    finally:
        _MODULE_STACK.pop()


@contextlib.contextmanager
def record():
    """Activate a fresh Recorder for the duration of the block (recorders do not nest)."""
    global _ACTIVE
    prev, rec = _ACTIVE, Recorder()
    _ACTIVE = rec
    try:
        yield rec
    finally:
        _ACTIVE = prev
