"""Turn a recorded Trace into frames: the complete display state at every cursor position.

    replay = Replay(trace)
    len(replay)                  # cursor positions: 0 .. len(trace.events)
    f = replay.frame(i)          # the state after the first i events (frame 0: nothing happened yet)
    f.nodes[w].grad_badge        # w's .grad at that point
    f.description                # one sentence: what event i did
    f.event_kind                 # "forward", "backward", "accumulate", "zero_grad", "step", ...
    replay.contents(w)           # every array w shows over the iteration (a view sizes its box once)

Frames are immutable and share unchanged parts: a node whose state did not change between two
frames is the *same* ``NodeState`` object in both, so a view can redraw only what changed by
comparing identities.  Frames are built incrementally from keyframes (one every
``KEYFRAME_EVERY`` events), so a random seek costs at most that many small steps.

No Qt here: the graph view, the inspector and the tests all read the same frames.
"""
from __future__ import annotations

import dataclasses
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import trace as _trace
from ..summary import ArraySummary
from .format import brief as _brief
from .format import format_array, format_number
from .phases import clip_sentence, manual_update_sentence, phase_sentence, scheduler_sentence

__all__ = ["NODE_STATES", "EdgeState", "Frame", "NodeContents", "NodeState", "Replay", "op_symbol"]

NODE_STATES = ("idle", "forward", "forward_done", "backward", "backward_done")
_ACTIVE_TO_DONE = {"forward": "forward_done", "backward": "backward_done"}

# Big glyph per short op name (the view draws it inside the op node).
_SYMBOLS = {
    "add": "+", "sub": "−", "mul": "×", "div": "÷", "matmul": "@", "addmm": "xWᵀ+b", "pow": "xʸ",
    "pow_scalar": "xⁿ", "reciprocal": "1/x", "index": "[ ]",
    "neg": "−x", "exp": "eˣ", "log": "log", "sqrt": "√", "abs": "|x|", "tanh": "tanh", "sigmoid": "σ",
    "relu": "ReLU", "clamp": "clamp", "to": "cast", "sum": "Σ", "mean": "mean", "max": "max",
    "max_dim": "max", "reshape": "view", "permute": "ᵀ", "getitem": "[ ]",
    # fused ops, one node each as in PyTorch
    "softmax": "softmax", "log_softmax": "log softmax", "mse_loss": "MSE", "bce_with_logits": "BCE",
    "nll_loss": "NLL",
}
_SUPERSCRIPTS = {2: "²", 3: "³", 4: "⁴", -1: "⁻¹", -2: "⁻²", 0.5: "^½", -0.5: "^-½"}
_BINARY = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "matmul": "@", "pow": "**"}
_OP_NAMES = {"pow_scalar": "pow", "max_dim": "max", "getitem": "index"}
_CALLS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "abs", "tanh": "tanh", "sigmoid": "sigmoid",
          "relu": "relu", "clamp": "clamp", "sum": "sum", "mean": "mean", "max": "max", "max_dim": "max",
          "softmax": "softmax", "log_softmax": "log_softmax", "mse_loss": "mse_loss",
          "bce_with_logits": "binary_cross_entropy_with_logits", "nll_loss": "nll_loss"}
# What a fused node sends back, in words: the graph shows one node, the description its formula.
_FUSED_GRADIENTS = {
    "softmax": "∂/∂x = s ⊙ (g − Σ g ⊙ s), s = softmax(x)",
    "log_softmax": "∂/∂x = g − softmax(x) · Σ g",
    "mse_loss": "∂/∂input = 2·(input − target)/n · g (2·(input − target) · g for a sum)",
    "bce_with_logits": "∂/∂input = (σ(input) − target)/n · g (without /n for a sum)",
    "nll_loss": "∂/∂input = −g/n at each target class, 0 elsewhere (−g for a sum)",
}


def op_symbol(op: str, exponent: float | None = None) -> str:
    """The big glyph the graph view draws for a short op name."""
    if op == "pow_scalar" and exponent is not None:
        sup = _SUPERSCRIPTS.get(exponent)
        return "x" + sup if sup and not sup.startswith("^") else f"x^{format_number(exponent, 3)}"
    return _SYMBOLS.get(op, op or "?")


# ----------------------------------------------------------------------------------- the frames



def _arr(a):
    """A recorded value as the frames keep it: an array, or the summary a trace keeps of a large one."""
    return a if type(a) is ArraySummary else np.asarray(a)


def _zeros_like(a):
    return ArraySummary.filled(a.shape, a.dtype, 0.0) if type(a) is ArraySummary else np.zeros_like(a)

@dataclass(frozen=True)
class NodeState:
    """What one node shows at one cursor position."""
    state: str = "idle"                          # one of NODE_STATES
    value: np.ndarray | None = None              # op output after its ForwardEvent; a parameter's value
    grad: np.ndarray | None = None               # gradient the node received in backward (∂loss/∂node)
    grad_badge: np.ndarray | None = None         # the tensor's .grad (parameters, retain_grad tensors)
    accumulation: tuple | None = None            # (before, added, after) of the last AccumulateEvent
    cleared: str = ""                            # "none" / "zeros" right after zero_grad cleared .grad
    param_before: np.ndarray | None = None       # a parameter's value before optimizer.step()
    optimizer_state: dict | None = None          # the optimizer's state for this parameter
    stepped: bool = False                        # optimizer.step() has updated this parameter


@dataclass(frozen=True)
class EdgeState:
    """An edge src -> dst: ``state`` like the nodes'; ``grad`` is what dst sent back to src."""
    state: str = "idle"
    grad: np.ndarray | None = None


class _Describe:
    """A frame's description, made when first read (``Frame.description``): ``method(replay, event)``.
    It holds the replay weakly: the replay keeps its frames, and a frame holding its replay would
    make a cycle that only Python's cycle collector frees."""
    __slots__ = ("replay", "method", "event")

    def __init__(self, replay, method, event):
        self.replay, self.method, self.event = weakref.ref(replay), method, event

    def __call__(self) -> str:
        replay = self.replay()
        return type(self.event).__name__ if replay is None else self.method(replay, self.event)


_IDLE_NODE = NodeState()
_IDLE_EDGE = EdgeState()
_FIELDS = {cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in (NodeState, EdgeState)}


def _replace(obj, /, **changes):
    """``dataclasses.replace`` for a NodeState or EdgeState, without its ``__init__`` (a frozen
    dataclass sets each field through ``object.__setattr__``): 2.6 us instead of 5.7. Playing the
    largest expression derives about 80 states a tick."""
    cls = type(obj)
    unknown = changes.keys() - _FIELDS[cls]
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    new = object.__new__(cls)
    attrs = new.__dict__
    attrs.update(obj.__dict__)
    attrs.update(changes)
    return new


# What kind of event led to a frame, in the words the views use.
_EVENT_KINDS = {_trace.PhaseEvent: "phase", _trace.ForwardEvent: "forward", _trace.BackwardEvent: "backward",
                _trace.AccumulateEvent: "accumulate", _trace.ZeroGradEvent: "zero_grad",
                _trace.StepEvent: "step", _trace.ScalerEvent: "scaler", _trace.ManualUpdateEvent: "manual_update",
                _trace.ClipEvent: "clip", _trace.SchedulerEvent: "scheduler", _trace.BackwardCallEvent: "backward_call"}


@dataclass(frozen=True)
class Frame:
    """The complete display state after ``index`` events (see the module docstring)."""
    index: int
    event: Any                                   # the event that led here (None for frame 0)
    phase: str                                   # from the last PhaseEvent ("" before the first)
    micro_batch: int
    nodes: dict                                  # node id -> NodeState (read-only by convention)
    edges: dict                                  # (src, dst) -> EdgeState
    active_nodes: frozenset
    active_edges: frozenset
    _description: Any                            # the text, or a function of no arguments that makes it
    grad_scale: float | None = None
    line: int | None = None                      # a script's line that caused the event (None: by phase)

    @property
    def description(self) -> str:
        """The event in words, with its numbers. Made when first read: playing computes every frame
        but shows the last of a tick, and a forward or backward event's numbers took 58 of the
        86 us of a frame of the largest expression."""
        text = self._description
        if callable(text):
            text = text()
            object.__setattr__(self, "_description", text)
        return text

    def node(self, node_id: int) -> NodeState:
        return self.nodes[node_id]

    @property
    def event_kind(self) -> str:
        """"forward", "backward", "accumulate", "zero_grad", "step", "phase", "scaler", "manual_update",
        "clip", "scheduler", "backward_call"; "" for frame 0."""
        return _EVENT_KINDS.get(type(self.event), "")

    @property
    def event_node(self) -> int | None:
        """The node the event is about (a forward, backward or accumulation), else None."""
        return getattr(self.event, "node", None)


@dataclass(frozen=True)
class NodeContents:
    """Every array one node shows in a replay, so that a view can size the node once for all of them."""
    values: tuple = ()            # its starting value (leaves) and each forward value
    steps: tuple = ()             # (before, after) of each optimizer.step() that changed it
    grads: tuple = ()             # each gradient it received in backward
    accumulations: tuple = ()     # (before, added, after) of its .grad; a starting .grad g as (None, g, g)


class Replay:
    """Frames of one Trace (any object with the attributes ``docs/contracts.md`` gives a Trace)."""

    KEYFRAME_EVERY = 32
    CACHE_SIZE = 256

    def __init__(self, trace):
        self.trace = trace
        self.iteration: int = getattr(trace, "iteration", 0)
        self.nodes: dict = dict(sorted(trace.nodes.items()))
        self.events: list = list(trace.events)
        self.event_lines: list = list(getattr(trace, "event_lines", None) or [])
        self.param_nodes: dict[str, int] = dict(getattr(trace, "param_nodes", {}) or {})
        self.param_names: dict[int, str] = {nid: name for name, nid in self.param_nodes.items()}
        self.loss_node: int | None = getattr(trace, "loss_node", None)
        self.edges: list[tuple[int, int]] = []
        seen = set()
        for nid, info in self.nodes.items():
            for src in info.inputs:
                if (src, nid) not in seen and src in self.nodes:
                    seen.add((src, nid))
                    self.edges.append((src, nid))
        self.consumers: dict[int, list[int]] = {nid: [] for nid in self.nodes}
        for src, dst in self.edges:
            self.consumers[src].append(dst)
        self.loss_nodes: list[int] = self._find_loss_nodes()
        self.badge_nodes: set[int] = ({n for n, i in self.nodes.items() if i.kind == "param"}
                                      | set(self.param_names)
                                      | {e.node for e in self.events if isinstance(e, _trace.AccumulateEvent)})
        self.accumulation_steps: int = 1 + max((e.micro_batch for e in self.events
                                                if isinstance(e, _trace.PhaseEvent)), default=0)
        self.modules: dict[int, str] = {nid: self._module_of(nid) for nid in self.nodes}
        self._keys: list[Frame] = [self._first_frame()]
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._last: Frame = self._keys[0]
        self._phase_starts = [(i + 1, e.phase, e.micro_batch) for i, e in enumerate(self.events)
                              if isinstance(e, _trace.PhaseEvent)]
        self._contents: dict[int, NodeContents] | None = None

    # -- structure ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.events) + 1

    def node_name(self, node_id: int) -> str:
        """A parameter's name (``0.weight``), an input's name, or the op's grad_fn name."""
        if node_id in self.param_names:
            return self.param_names[node_id]
        info = self.nodes.get(node_id)
        return info.label if info is not None else f"#{node_id}"

    def symbol(self, node_id: int) -> str:
        info = self.nodes[node_id]
        if info.op == "permute" and not self.is_transpose(node_id):
            return "perm"
        return op_symbol(info.op, self._exponent(node_id) if info.op == "pow_scalar" else None)

    def is_transpose(self, node_id: int) -> bool:
        """A permute that swaps the two axes of a matrix (``w.T``)."""
        info = self.nodes[node_id]
        src = self.nodes.get(info.inputs[0]) if info.inputs else None
        return (info.op == "permute" and src is not None and len(info.shape) == 2
                and tuple(src.shape) == tuple(reversed(info.shape)))

    def is_constant(self, node_id: int) -> bool:
        """A Python number in an expression (``1 - y``): a scalar data leaf named after itself ("1")."""
        info = self.nodes[node_id]
        return (node_id not in self.param_names and not info.inputs and info.kind not in ("op", "param")
                and info.shape == () and _trace.is_number_label(self.node_name(node_id)))

    def contents(self, node_id: int) -> NodeContents:
        """Every value, step, gradient and accumulation the node shows over the replay."""
        if self._contents is None:
            self._contents = self._collect_contents()
        return self._contents[node_id]

    def module_type(self, module: str) -> str:
        """A readable class name for a module ("Linear"), from the Trace if it knows, else from its ops."""
        known = getattr(self.trace, "module_types", None) or {}
        if module in known:
            return known[module]
        ops = {self.nodes[n].op for n, m in self.modules.items() if m == module or m.startswith(module + ".")}
        has_params = any(m == module for n, m in self.modules.items() if n in self.badge_nodes)
        if ("matmul" in ops or "addmm" in ops) and has_params:
            return "Linear"
        for op, name in (("tanh", "Tanh"), ("relu", "ReLU"), ("sigmoid", "Sigmoid")):
            if ops == {op}:
                return name
        return "Module"

    def module_members(self, module: str) -> list[int]:
        return [n for n, m in self.modules.items() if m == module or m.startswith(module + ".")]

    def collapsible_modules(self) -> list[str]:
        """Top-level module names with at least two nodes, in order of first appearance."""
        out: dict[str, int] = {}
        for m in self.modules.values():
            if m:
                top = m.split(".")[0]
                out[top] = out.get(top, 0) + 1
        return [m for m, n in out.items() if n >= 2]

    def phase_starts(self) -> list[tuple[int, str, int]]:
        """(cursor position, phase, micro-batch) where each phase starts (right after its PhaseEvent)."""
        return list(self._phase_starts)

    def phase_range(self, phase: str, micro_batch: int | None = None) -> tuple[int, int]:
        """First and last cursor position of the first phase ``phase`` (of that micro-batch)."""
        starts = self._phase_starts
        for k, (pos, name, mb) in enumerate(starts):
            if name == phase and (micro_batch is None or mb == micro_batch):
                end = starts[k + 1][0] - 1 if k + 1 < len(starts) else len(self) - 1
                return pos, end
        raise KeyError(f"no phase {phase!r}" + (f" in micro-batch {micro_batch}" if micro_batch is not None else ""))

    def next_phase_position(self, position: int) -> int:
        for pos, _phase, _mb in self._phase_starts:
            if pos > position:
                return pos
        return len(self) - 1

    def prev_phase_position(self, position: int) -> int:
        """The start of the current phase, or of the previous one when already at a start."""
        best = 0
        for pos, _phase, _mb in self._phase_starts:
            if pos < position:
                best = pos
        return best

    # -- frames ---------------------------------------------------------------------------------
    def frame(self, i: int) -> Frame:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} out of range 0..{n - 1}")
        cached = self._cache.get(i)
        if cached is not None:
            self._cache.move_to_end(i)
            return cached
        k = self.KEYFRAME_EVERY
        base = self._last if self._last.index <= i and i - self._last.index < k else None
        if base is None:
            slot = i // k
            while len(self._keys) <= slot:           # extend the keyframes up to the one we need
                f = self._keys[-1]
                for _ in range(k):
                    f = self._advance(f)
                self._keys.append(f)
            base = self._keys[slot]
        f = base
        while f.index < i:
            f = self._advance(f)
            if f.index % k == 0 and f.index // k == len(self._keys):
                self._keys.append(f)
        self._last = f
        self._cache[i] = f
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return f

    def make_keyframes(self) -> None:
        """Every keyframe made now, as a jump to the last frame makes them (a worker calls this before
        the window gets the Replay). Made on demand, a jump far ahead walked every event before it:
        75-81 ms at the graph-size limit (3,001 events), in the turn of a click on the timeline."""
        self.frame(len(self) - 1)

    def __getitem__(self, i: int) -> Frame:
        return self.frame(i)

    def __iter__(self):
        return (self.frame(i) for i in range(len(self)))

    # -- building -------------------------------------------------------------------------------
    def _find_loss_nodes(self) -> list[int]:
        roots, after_backward = [], False
        for e in self.events:
            if isinstance(e, _trace.PhaseEvent):
                after_backward = e.phase == "backward"
            elif isinstance(e, _trace.BackwardEvent) and after_backward:
                roots.append(e.node)
                after_backward = False
        if self.loss_node is not None and self.loss_node not in roots:
            roots.append(self.loss_node)
        return roots

    def _module_of(self, nid: int) -> str:
        info = self.nodes[nid]
        if info.module:
            return info.module
        name = self.param_names.get(nid, "")
        return name.rsplit(".", 1)[0] if "." in name else ""

    def _exponent(self, nid: int) -> float | None:
        """The exponent of ``x ** k``, from the node's recorded ``attrs`` (None when not recorded)."""
        k = (getattr(self.nodes[nid], "attrs", None) or {}).get("exponent")
        return k if isinstance(k, (int, float)) and not isinstance(k, bool) else None

    def _leaf_value(self, nid: int):
        name = self.param_names.get(nid)
        before = getattr(self.trace, "params_before", None) or {}
        if name is not None and name in before:
            return before[name]
        info = self.nodes[nid]
        value = getattr(info, "value", None)
        if value is None and info.kind == "input" and info.shape == ():
            try:                         # a Python number in an expression is named after itself ("2")
                value = np.array(float(info.label), dtype=info.dtype)
            except (TypeError, ValueError):
                value = None
        return value

    def _collect_contents(self) -> dict[int, NodeContents]:
        values: dict[int, list] = {n: [] for n in self.nodes}
        steps: dict[int, list] = {n: [] for n in self.nodes}
        grads: dict[int, list] = {n: [] for n in self.nodes}
        accs: dict[int, list] = {n: [] for n in self.nodes}
        for n, ns in self.frame(0).nodes.items():
            if ns.value is not None:
                values[n].append(ns.value)
            if ns.grad_badge is not None:
                accs[n].append((None, ns.grad_badge, ns.grad_badge))
        for e in self.events:
            if isinstance(e, _trace.ForwardEvent) and e.node in values:
                values[e.node].append(e.value)
            elif isinstance(e, _trace.BackwardEvent) and e.node in grads:
                grads[e.node].append(e.grad_output)
            elif isinstance(e, _trace.AccumulateEvent) and e.node in accs:
                accs[e.node].append((e.before, e.added, e.after))
            elif isinstance(e, _trace.StepEvent):
                for u in e.updates:
                    if u.node in steps:
                        steps[u.node].append((u.before, u.after))
            elif isinstance(e, _trace.ManualUpdateEvent) and e.node in steps:
                steps[e.node].append((e.before, e.after))
        return {n: NodeContents(tuple(values[n]), tuple(steps[n]), tuple(grads[n]), tuple(accs[n]))
                for n in self.nodes}

    def _first_frame(self) -> Frame:
        grads_before = getattr(self.trace, "grads_before", None) or {}
        first_state: dict[int, dict] = {}
        for e in self.events:
            if isinstance(e, _trace.StepEvent):
                for u in e.updates:
                    first_state.setdefault(u.node, u.state_before)
        nodes = {}
        for nid, info in self.nodes.items():
            value = self._leaf_value(nid) if info.kind != "op" else None
            badge = None
            if nid in self.param_names:
                badge = grads_before.get(self.param_names[nid])
            nodes[nid] = NodeState(value=None if value is None else _arr(value), grad_badge=badge,
                                   optimizer_state=first_state.get(nid)) if (value is not None or badge is not None
                                                                             or nid in first_state) else _IDLE_NODE
        edges = {e: _IDLE_EDGE for e in self.edges}
        return Frame(0, None, "", 0, nodes, edges, frozenset(), frozenset(), self._start_description(grads_before))

    def _start_description(self, grads_before) -> str:
        text = f"Iteration {self.iteration} begins"
        shown = [(name, g) for name, g in grads_before.items()][:4]
        if shown and all(g is None or np.size(g) <= 6 for _, g in shown):
            parts = [f"{name}.grad = {format_array(g)}" for name, g in shown]
            more = " …" if len(grads_before) > len(shown) else ""
            text += ": " + ", ".join(parts) + more
        elif grads_before:
            state = "None" if all(g is None for g in grads_before.values()) else "left from the last backward()"
            text += f": every .grad is {state}" if state == "None" else f": .grad {state}"
        return text + "."

    def _advance(self, prev: Frame) -> Frame:
        """Frame ``prev.index + 1``: retire the previous event's highlights, then apply the next event."""
        event = self.events[prev.index]
        nodes = dict(prev.nodes)
        edges = dict(prev.edges)
        for nid in prev.active_nodes:
            ns = nodes[nid]
            done = _ACTIVE_TO_DONE.get(ns.state)
            if done is not None:
                nodes[nid] = _replace(ns, state=done)
        for key in prev.active_edges:
            es = edges[key]
            done = _ACTIVE_TO_DONE.get(es.state)
            if done is not None:
                edges[key] = _replace(es, state=done)
        phase, micro_batch, grad_scale = prev.phase, prev.micro_batch, prev.grad_scale
        active: set[int] = set()
        active_edges: set[tuple[int, int]] = set()
        E = _trace
        if isinstance(event, E.PhaseEvent):
            phase, micro_batch = event.phase, event.micro_batch
            description = self._phase_description(event)
        elif isinstance(event, E.ForwardEvent):
            nid = event.node
            nodes[nid] = _replace(nodes.get(nid, _IDLE_NODE), state="forward",
                                  value=_arr(event.value), grad=None)
            active.add(nid)
            for src in event.inputs:
                # a leaf lights up when read (again in a later micro-batch)
                if src in nodes and src not in active and self.nodes[src].kind != "op" \
                        and nodes[src].state in ("idle", "forward_done", "backward_done"):
                    nodes[src] = _replace(nodes[src], state="forward")
                    active.add(src)
                key = (src, nid)
                if key in edges:
                    edges[key] = EdgeState("forward", None)
                    active_edges.add(key)
            description = _Describe(self, Replay._forward_description, event)
        elif isinstance(event, E.BackwardEvent):
            nid = event.node
            nodes[nid] = _replace(nodes.get(nid, _IDLE_NODE), state="backward",
                                  grad=_arr(event.grad_output))
            active.add(nid)
            sums: dict[tuple[int, int], np.ndarray] = {}
            for src, g in zip(event.inputs, event.grad_inputs):
                if g is None:
                    continue
                key = (src, nid)
                sums[key] = g if key not in sums else sums[key] + g
            for key, g in sums.items():
                if key in edges:
                    edges[key] = EdgeState("backward", _arr(g))
                    active_edges.add(key)
            description = _Describe(self, Replay._backward_description, event)
        elif isinstance(event, E.AccumulateEvent):
            nid = event.node
            after = _arr(event.after)
            nodes[nid] = _replace(nodes.get(nid, _IDLE_NODE), state="backward",
                                  grad=_arr(event.added), grad_badge=after,
                                  accumulation=(event.before, _arr(event.added), after),
                                  cleared="")
            active.add(nid)
            name = self.node_name(nid)
            if event.before is None:
                description = (f".grad of {name} was None: it now holds the incoming gradient "
                               f"{format_array(event.added)}.")
            else:
                description = (f".grad of {name}: {format_array(event.before)} + {format_array(event.added)} "
                               f"= {format_array(event.after)} (gradients accumulate).")
        elif isinstance(event, E.ZeroGradEvent):
            for c in event.cleared:
                if c.node not in nodes:
                    continue
                if event.set_to_none:
                    badge, how = None, "none"
                else:
                    badge = None if c.before is None else _zeros_like(c.before)
                    how = "zeros"
                nodes[c.node] = _replace(nodes[c.node], grad_badge=badge, accumulation=None,
                                         cleared=how, grad=None)
                active.add(c.node)
            names = ", ".join(self.node_name(c.node) for c in event.cleared[:4])
            names += " …" if len(event.cleared) > 4 else ""
            if event.set_to_none:
                description = f"zero_grad(set_to_none=True): .grad of {names} is now None."
            else:
                description = (f"zero_grad(set_to_none=False): .grad of {names} filled with zeros "
                               "(a None .grad stays None).")
        elif isinstance(event, E.StepEvent):
            parts = []
            for u in event.updates:
                if u.node not in nodes:
                    continue
                ns = nodes[u.node]
                nodes[u.node] = _replace(ns, value=_arr(u.after), param_before=_arr(u.before),
                                         optimizer_state=u.state_after, stepped=u.grad is not None,
                                         accumulation=None, cleared="")
                active.add(u.node)
                if u.grad is None:
                    parts.append(f"{self.node_name(u.node)} skipped (.grad is None)")
                else:
                    parts.append(f"{self.node_name(u.node)} {_brief(u.before)} → {_brief(u.after)}")
            if event.skipped:
                description = f"{event.optimizer}.step() skipped: the GradScaler found inf/nan gradients."
            else:
                shown = "; ".join(parts[:3]) + ("; …" if len(parts) > 3 else ".")
                description = f"{event.optimizer}.step(): {shown}" if parts else f"{event.optimizer}.step()."
        elif isinstance(event, E.ManualUpdateEvent):
            nid = event.node
            if nid in nodes:
                nodes[nid] = _replace(nodes[nid], value=_arr(event.after),
                                      param_before=_arr(event.before), stepped=True,
                                      accumulation=None, cleared="")
                active.add(nid)
            description = manual_update_sentence(self.node_name(nid), event)
        elif isinstance(event, E.ClipEvent):
            for c in event.grads:
                if c.node in nodes:
                    nodes[c.node] = _replace(nodes[c.node], grad_badge=_arr(c.after),
                                             accumulation=None, cleared="")
                    active.add(c.node)
            description = clip_sentence(event)
        elif isinstance(event, E.SchedulerEvent):
            description = scheduler_sentence(event)
        elif isinstance(event, E.BackwardCallEvent):
            if event.node in nodes:
                active.add(event.node)
            info = self.nodes.get(event.node)
            if info is not None and info.op == "mul" and any(
                    self.nodes[i].label == "scale" for i in info.inputs if i in self.nodes):
                description = (f"scaler.scale(loss).backward(): backward() starts from loss × scale = "
                               f"{format_array(event.value)}.")
            else:
                name = "loss" if event.node == self.loss_node or event.node in self.loss_nodes \
                    else self.node_name(event.node)
                description = f"{name}.backward() called on {name} = {format_array(event.value)}."
        elif isinstance(event, E.ScalerEvent):
            grad_scale = event.scale_after
            found = "inf/nan found, scale reduced" if event.found_inf else "no inf/nan"
            description = (f"GradScaler.update(): scale {format_number(event.scale_before)} → "
                           f"{format_number(event.scale_after)} ({found}).")
        else:
            description = type(event).__name__
        lines = self.event_lines
        return Frame(prev.index + 1, event, phase, micro_batch, nodes, edges, frozenset(active),
                     frozenset(active_edges), description, grad_scale,
                     lines[prev.index] if prev.index < len(lines) else None)

    # -- descriptions ---------------------------------------------------------------------------
    def _phase_description(self, e) -> str:
        return phase_sentence(e.phase, e.micro_batch, self.accumulation_steps)

    def _forward_description(self, e) -> str:
        info = self.nodes.get(e.node)
        names = [self.node_name(s) if self.nodes.get(s) is None or self.nodes[s].kind != "op"
                 else _OP_NAMES.get(self.nodes[s].op, self.nodes[s].op) for s in e.inputs]
        op = info.op if info is not None else ""
        if op == "addmm" and len(names) == 3:          # F.linear: input, weight, bias
            expr = f"{names[0]} @ {names[1]}ᵀ + {names[2]}"
        elif op == "reciprocal" and names:
            expr = f"1 / {names[0]}"
        elif op in _BINARY and len(names) == 2:
            expr = f"{names[0]} {_BINARY[op]} {names[1]}"
        elif op == "pow_scalar" and names:
            k = self._exponent(e.node)
            expr = f"{names[0]} ** {format_number(k, 3) if k is not None else 'k'}"
        elif op == "neg" and names:
            expr = f"−{names[0]}"
        elif op in _FUSED_GRADIENTS and names:
            expr = f"{_CALLS[op]}({', '.join(names)})"
        elif op in _CALLS and names:
            expr = f"{_CALLS[op]}({names[0]})"
        elif op == "permute" and names:
            expr = f"{names[0]}ᵀ" if self.is_transpose(e.node) else f"{names[0]}.permute(…)"
        elif names:
            expr = f"{op or e.grad_fn}({', '.join(names)})"
        else:
            expr = op or e.grad_fn
        return f"{e.grad_fn}: {expr} = {format_array(e.value)}"

    def _backward_description(self, e) -> str:
        sent = [f"{format_array(g)} to {self.node_name(s)}" for s, g in zip(e.inputs, e.grad_inputs) if g is not None]
        head = f"{e.grad_fn} received ∂loss/∂out = {format_array(e.grad_output)}"
        info = self.nodes.get(e.node)
        if info is not None and info.op in _FUSED_GRADIENTS:
            head += f" ({_FUSED_GRADIENTS[info.op]})"
        if not sent:
            return head + " and sent nothing back (no input needs a gradient)."
        return head + " and sent " + (", ".join(sent[:-1]) + " and " + sent[-1] if len(sent) > 1 else sent[0]) + "."
