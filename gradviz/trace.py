"""Opt-in recording of what the autograd engine and the optimizers do, event by event.

    with gradviz.trace.record() as rec:
        loss = model(x)            # ForwardEvent per op
        loss.backward()            # BackwardEvent per node, AccumulateEvent per leaf
        optimizer.step()           # StepEvent

With no recorder active, every op pays one check (``_state.recorder is None``). The active
recorder and the module stack are per thread: a recorder sees only the ops of the thread that
activated it.  Events are plain
dataclasses holding *copies* of numpy arrays, so a Trace stays valid after training moves on.
The UI replays a Trace; it never computes gradients itself.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .summary import keep, keep_copy


class _State(threading.local):
    """This thread's recording state (each thread starts with no recorder and an empty stack)."""
    recorder: Recorder | None = None     # the active recorder: read on every op, so one attribute

    def __init__(self):
        # Modules push their dotted name while they run so that nodes can be grouped (collapsed) by module.
        self.module_stack: list[str] = []


_state = _State()


def current() -> Recorder | None:
    """This thread's active recorder, or None (the common, free case)."""
    return _state.recorder


def _copy(a) -> np.ndarray | None:
    if type(a) is np.ndarray:
        return a.copy()
    return None if a is None else np.array(a, copy=True)


# The loop phases a Session marks with PhaseEvents, in loop order. Their titles and sentences are
# in gradviz.view.phases; the exported script tags its lines with the same names.
PHASES = ("zero_grad", "forward", "loss", "backward", "step", "zero_grad_after")

_DTYPE_NAMES: dict = {}         # str(dtype) is slow in numpy and every new node needs it
LEAF_VALUE_LIMIT = 100_000      # leaves larger than this are not copied into the trace


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
    value: np.ndarray | None = None   # leaves: the value when first seen (ops' values are in ForwardEvents)
    attrs: dict = field(default_factory=dict)  # an op's plain arguments: {"exponent": 2}, {"dim": 0, ...}


@dataclass
class PhaseEvent:
    """Loop-level marker emitted by the Session: one of :data:`PHASES`."""
    phase: str
    micro_batch: int = 0
    iteration: int = 0


@dataclass
class ForwardEvent:
    """An op ran: node ``node`` (its ``grad_fn`` name, "MulBackward0") was computed from ``inputs``."""
    node: int
    grad_fn: str
    inputs: tuple
    value: np.ndarray


@dataclass
class BackwardEvent:
    """A node's backward ran: it received ``grad_output`` and sent ``grad_inputs[i]`` to ``inputs[i]``
    (None where that input needs no gradient)."""
    node: int
    grad_fn: str
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
    # the param group's hyperparameters at this step (lr, momentum, betas, eps, weight_decay, ...):
    # what the update rule read, so the view can show the rule with its numbers
    hyper: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepEvent:
    optimizer: str
    updates: list[ParamUpdate] = field(default_factory=list)
    skipped: bool = False          # e.g. GradScaler found inf/nan and skipped optimizer.step()
    # a GradScaler unscaled the grads before this step: {"scale", "inv_scale", "found_inf", "event": how
    # many events the recorder had when unscale_() ran} (else None)
    unscale: dict[str, Any] | None = None


@dataclass
class ScalerEvent:
    """GradScaler.update(): the scale before and after, and whether an inf/nan was found."""
    scale_before: float
    scale_after: float
    found_inf: bool
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    tracker_before: int = 0           # clean steps in a row before the update, and after it
    tracker_after: int = 0
    new_scale: bool = False           # update(new_scale) set the scale by hand


@dataclass
class SchedulerEvent:
    """``scheduler.step()``: each param group's learning rate before and after (``StepLR``…)."""
    scheduler: str                    # class name: "StepLR", "OneCycleLR", ...
    lr_before: list[float]
    lr_after: list[float]
    epoch: int = 0                    # the scheduler's last_epoch after the call


@dataclass
class GradClip:
    """One tensor's ``.grad`` before and after clipping."""
    node: int
    before: np.ndarray
    after: np.ndarray


@dataclass
class ClipEvent:
    """``clip_grad_norm_`` (``kind="norm"``) or ``clip_grad_value_`` (``kind="value"``).

    ``limit`` is max_norm or clip_value; for a norm clip ``total_norm`` is the norm of all the
    grads together before clipping and ``clip_coef`` the factor they were multiplied by
    (min(1, max_norm / (total_norm + 1e-6)), as torch computes it)."""
    kind: str
    limit: float
    norm_type: float = 2.0
    total_norm: float | None = None
    clip_coef: float | None = None
    grads: list[GradClip] = field(default_factory=list)


@dataclass
class ManualUpdateEvent:
    """An in-place op changed a leaf that requires grad while grad mode was off: the manual update
    ``with torch.no_grad(): w -= lr * w.grad`` (``op`` is the in-place method, "sub_")."""
    node: int
    op: str
    before: np.ndarray
    after: np.ndarray


@dataclass
class BackwardCallEvent:
    """``tensor.backward()`` was called on node ``node`` (whose value is ``value``): the loss of a
    script's iteration is the tensor its ``backward()`` was called on."""
    node: int
    value: np.ndarray


def is_number_label(text: str) -> bool:
    """True for a constant's label: Python numbers in an expression are named after themselves ("2")."""
    try:
        float(text)
    except ValueError:
        return False
    return True


class Recorder:
    """Collects events in the order they happen and a table of the nodes they mention."""

    def __init__(self):
        self.events: list = []
        # Where each event came from: ``locate()`` (set by the script runner) returns the script
        # line that caused it; without it nothing is collected and ``event_lines`` stays empty.
        self.locate = None
        self.event_lines: list[int | None] = []
        self.nodes: dict[int, NodeInfo] = {}
        self._ids: dict[int, int] = {}       # id(tensor) -> node id
        self._keep: list = []                # keep tensors alive so id() stays unique

    # -- node table -------------------------------------------------------------------------
    def node_id(self, t) -> int:
        """The recorder's id for tensor ``t``, registering it as a leaf if it is new."""
        nid = self._ids.get(id(t))
        if nid is None:
            nid = len(self._ids)
            self._ids[id(t)] = nid
            self._keep.append(t)
            kind = "param" if t.requires_grad else "input"
            label = t.name or (f"p{nid}" if t.requires_grad else f"x{nid}")
            dtype = t._data.dtype            # numpy's (a script's ``t.dtype`` is torch-like)
            dtype_name = _DTYPE_NAMES.get(dtype) or _DTYPE_NAMES.setdefault(dtype, str(dtype))
            module = ""
            stack = _state.module_stack
            if stack and kind == "input" and is_number_label(label):
                module = stack[-1]               # a constant made inside a module (the 1 in 1 - y) belongs to it
            self.nodes[nid] = NodeInfo(nid, kind, label, "", tuple(t.shape), dtype_name,
                                       (), bool(t.requires_grad), module,
                                       _copy(t._data) if t.grad_fn is None and t._data.size <= LEAF_VALUE_LIMIT
                                       else None)
        return nid

    def find(self, t) -> int | None:
        return self._ids.get(id(t))

    # -- hooks called by the engine -----------------------------------------------------------
    def on_forward(self, out, grad_fn: str, op: str, inputs, kwargs=None) -> None:
        """``out`` was computed by ``op`` (``"mul"``, its grad_fn ``"MulBackward0"``) from ``inputs``.
        ``kwargs`` are the op's keyword arguments; the plain ones (numbers, names, shapes, dtypes)
        become the node's ``attrs``, others (index arrays, slices) are left out."""
        ids, node_id = self._ids, self.node_id
        in_ids = tuple([ids[id(t)] if id(t) in ids else node_id(t) for t in inputs])
        # ``out`` was just created by the op: register it directly (this runs once per op).
        nid = len(ids)
        ids[id(out)] = nid
        self._keep.append(out)
        data = out._data
        value = keep_copy(data)       # a large value (over summary.SUMMARY_FROM elements) is summarised
        dtype_name = _DTYPE_NAMES.get(data.dtype) or _DTYPE_NAMES.setdefault(data.dtype, str(data.dtype))
        requires, is_op = out.requires_grad, out.grad_fn is not None
        stack = _state.module_stack
        self.nodes[nid] = NodeInfo(nid, "op" if is_op else "param" if requires else "input", grad_fn, op,
                                   data.shape, dtype_name, in_ids, requires,
                                   stack[-1] if stack else "",
                                   None if is_op or data.size > LEAF_VALUE_LIMIT else value,
                                   _plain_attrs(kwargs) if kwargs else {})
        self._emit(ForwardEvent(nid, grad_fn, in_ids, value))

    def on_backward(self, out, grad_fn: str, grad_output, inputs, grad_inputs) -> None:
        # Gradients in flight are arrays the engine made (backward() copies a caller's gradient) and
        # never changes afterwards (a leaf's .grad is a copy of them), so they are kept, not copied
        # (a large one is summarised).
        node_id = self.node_id
        self._emit(BackwardEvent(
            node_id(out), grad_fn, keep(grad_output), tuple([node_id(t) for t in inputs]),
            tuple([keep(g) for g in grad_inputs])))

    def on_accumulate(self, t, before, added, after) -> None:
        """``before`` must already be a copy (taken before ``.grad`` changed in place); ``after`` is
        ``.grad`` itself, which later steps change, so it is copied."""
        self._emit(AccumulateEvent(self.node_id(t), keep(before), keep(added), keep_copy(after)))

    def on_zero_grad(self, params, set_to_none: bool) -> None:
        self._emit(ZeroGradEvent(set_to_none, [
            ParamClear(self.node_id(p), keep_copy(None if p.grad is None else p.grad._data)) for p in params]))

    def add(self, event) -> None:
        self._emit(event)

    def phase(self, phase: str, micro_batch: int = 0, iteration: int = 0) -> None:
        self._emit(PhaseEvent(phase, micro_batch, iteration))

    def _emit(self, event) -> None:
        self.events.append(event)
        if self.locate is not None:
            self.event_lines.append(self.locate())

    # -- hooks the core calls with the object that acted (a script runner overrides them to follow
    # the first optimizer, the loss and the scaler; by default they only record the event) ------
    def on_backward_call(self, tensor) -> None:
        """``tensor.backward()`` is about to run (before any BackwardEvent it causes)."""

    def on_step(self, optimizer, event) -> None:
        """``optimizer.step()`` ran (or the GradScaler skipped it): ``event`` is its StepEvent."""
        self._emit(event)

    def on_scale(self, scaler, outputs) -> None:
        """``scaler.scale(outputs)`` was called (before the multiply)."""

    def on_scheduler(self, scheduler, event) -> None:
        self._emit(event)

    def on_clip(self, event) -> None:
        self._emit(event)

    def on_manual_update(self, tensor, event) -> None:
        self._emit(event)


_SKIP = object()


def _plain(v):
    """``v`` as a JSON-like value (None, bool, int, float, str, tuples of them), else ``_SKIP``."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic) and v.ndim == 0 and v.dtype.kind in "biuf":
        return v.item()
    if isinstance(v, np.dtype):
        return _DTYPE_NAMES.get(v) or _DTYPE_NAMES.setdefault(v, str(v))
    if isinstance(v, (tuple, list)):
        items = tuple(_plain(x) for x in v)
        return _SKIP if any(x is _SKIP for x in items) else items
    return _SKIP


def _plain_attrs(kwargs: dict) -> dict:
    out = {}
    for key, v in kwargs.items():
        v = _plain(v)
        if v is not _SKIP:
            out[key] = v
    return out


class module_scope:  # noqa: N801 (used like a function: ``with module_scope(name):``)
    """Tag the ops created inside the block with module ``name`` (a class: runs once per module call)."""
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        _state.module_stack.append(self.name)

    def __exit__(self, *exc):
        _state.module_stack.pop()
        return False


@contextlib.contextmanager
def record(recorder: Recorder | None = None):
    """Activate ``recorder`` (default: a fresh Recorder) for the duration of the block.

    Recorders do not nest: an inner ``record()`` takes over until it exits, and the outer one
    does not see its events. The recorder sees only this thread's ops."""
    state = _state
    prev, rec = state.recorder, Recorder() if recorder is None else recorder
    state.recorder = rec
    try:
        yield rec
    finally:
        state.recorder = prev


@dataclass
class Trace:
    """One optimizer step, node by node, as the core's recorder saw it (see :class:`Recorder`).

    ``events`` are in order: PhaseEvent, ForwardEvent, BackwardEvent, AccumulateEvent,
    ZeroGradEvent, StepEvent, ScalerEvent. ``loss_node`` is the last micro-batch's loss (after
    ``/ accumulation_steps``, before the scaler's multiply). ``grads_before`` is each ``.grad``
    when the iteration starts (None where it was None).
    """
    iteration: int
    nodes: dict
    events: list
    param_nodes: dict[str, int]
    loss_node: int | None
    grads_before: dict[str, np.ndarray | None]
    params_before: dict[str, np.ndarray]
    params_after: dict[str, np.ndarray]
    accumulation_steps: int = 1       # micro-batches in the iteration (PhaseEvent.micro_batch < this)
    input_nodes: dict[str, list[int]] = field(default_factory=dict)   # input name -> node per micro-batch
    module_types: dict[str, str] = field(default_factory=dict)  # module name ("0", "loss") -> "Linear", "MSELoss"
    # A script's trace: the 1-based line of its file that caused each event (parallel to
    # ``events``; empty for a TOML scenario, whose code panel lights lines by phase).
    event_lines: list[int | None] = field(default_factory=list)
