"""The recorder a script runs under: every event with its script line, cut into iterations.

An *iteration* is what happens between two ``step()`` calls of the script's first optimizer (the
first one it constructs), or, in a script without an optimizer, between two manual updates
(``with torch.no_grad(): w -= lr * w.grad``). Iteration k closes at the first forward op (with
grad mode on) or ``backward()`` call after its update, so a ``zero_grad()`` after the step belongs
to it as its ``zero_grad_after`` phase.

While it runs, the recorder marks the loop's phases with ``PhaseEvent``s as a Session does (so the
replay and the views work unchanged): ``forward`` at the first op, ``loss`` when a loss module or
functional loss is called, ``backward`` at ``backward()`` (or ``scaler.scale(loss)``), ``step`` at
the first optimizer's step (or clipping, a scheduler, a manual update), ``zero_grad`` /
``zero_grad_after``. ``micro_batch`` counts the ``backward()`` calls of the iteration.

Each iteration becomes a ``Trace`` while the traces recorded so far stay inside a byte budget;
after that the recorder goes *light*: it keeps only what the ``History`` needs (losses, and the
parameters, gradients and optimizer state each step saw). Ops run with grad mode off build no
graph and are not traced (an update's ``lr * w.grad``, an evaluation under ``no_grad``); ops
before an iteration's first graph-building op (data preparation) are folded into input leaves.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys

import numpy as np

from .. import _tensor
from .. import trace as _trace
from ..nn.modules import Module
from ..scenario.schema import LIMITS
from ..summary import ArraySummary
from ..trace import (
    BackwardCallEvent,
    BackwardEvent,
    ClipEvent,
    ForwardEvent,
    NodeInfo,
    PhaseEvent,
    Recorder,
    StepEvent,
    Trace,
    ZeroGradEvent,
)
from .history import History, HistoryBuffer

__all__ = ["ScriptRecorder", "Cancelled", "StopScript"]

_PER_MICRO_BATCH = ("forward", "loss", "backward")


class Cancelled(Exception):
    """``progress`` returned False: the run stops at the line being run."""


class StopScript(Exception):
    """The iteration asked for with ``trace_only`` is recorded: the run stops (not an error)."""


def _nbytes(obj) -> int:
    """Bytes of the numpy arrays ``obj`` holds (a Trace: its events, nodes and snapshots); an array
    held twice counts twice, so a budget errs on the safe side."""
    if isinstance(obj, (np.ndarray, ArraySummary)):
        return obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    fields = getattr(obj, "__dataclass_fields__", None)
    if fields is not None:
        return sum(_nbytes(getattr(obj, name)) for name in fields)
    return 0


def _ignore(*args, **kwargs) -> None:
    return None


def _no_node(t) -> int:
    """Light recording keeps no node table: the core's hooks get a placeholder id."""
    return -1


def wanted_iterations(trace_only) -> frozenset | range | None:
    """``trace_only`` (None, an iteration, or a range/collection of them) as a container, or None."""
    if trace_only is None:
        return None
    if isinstance(trace_only, (int, np.integer)) and not isinstance(trace_only, bool):
        return range(int(trace_only), int(trace_only) + 1)
    if isinstance(trace_only, range):
        return trace_only if trace_only.step > 0 else frozenset(trace_only)
    return frozenset(int(k) for k in trace_only)


@dataclasses.dataclass
class _Row:
    """What the History keeps of one iteration (arrays are copies)."""
    losses: list = dataclasses.field(default_factory=list)
    params_before: list | None = None
    grads: list | None = None
    state: list | None = None
    grad_scale: float = 1.0
    skipped: bool = False
    lr: float = math.nan
    clip_norm: float = math.nan
    manual: dict = dataclasses.field(default_factory=dict)     # id(param) -> (before, grad) of a manual update


class ScriptRecorder(Recorder):
    """Records a script run from file ``filename``; ``script_globals`` is its module namespace."""

    def __init__(self, filename: str, script_globals: dict | None = None, *, trace_budget: int = 64 * 2 ** 20,
                 trace_only=None, trace_iterations: int | None = None, progress=None):
        super().__init__()
        self.filename = filename
        self.script_globals = script_globals if script_globals is not None else {}
        self.locate = self._locate
        self.trace_budget, self.trace_only, self.progress = int(trace_budget), trace_only, progress
        # which iterations are traced node by node: ``_only`` (trace_only: those, then stop), else the
        # first ``trace_iterations`` (None: all, while the budget lasts); the rest run light
        self._only = wanted_iterations(trace_only)
        self._last_wanted = max(self._only) if self._only else -1
        self._exact = isinstance(trace_only, (int, np.integer))      # one iteration asked for: no budget
        self.trace_iterations = None if trace_iterations is None else max(0, int(trace_iterations))
        self.budget_hit = False              # tracing stopped because the budget was spent
        self.optimizers: list = []           # constructed by the script, in order
        self.first_optimizer = None
        self.params: list | None = None      # the parameters (fixed at the first iteration's end)
        self.param_names: list[str] = []
        self.module_types: dict[str, str] = {}
        self.iteration = 0
        self.rows: list[_Row] = []
        self.traces: dict[int, Trace] = {}
        self.traced_all = True
        self.history_limited = False
        self._manual: list = []              # leaves updated by hand, in order (scripts without optimizer)
        self._update_line: int | None = None  # the script line of the last update (step or manual)
        self._traced_bytes = 0
        self._names: dict[int, tuple] = {}        # id(tensor) -> (tensor, its variable name), last iteration's
        self._set_full(self._wants(0))
        self._begin()

    # -- where an event came from ----------------------------------------------------------------
    def _locate(self) -> int | None:
        f = sys._getframe(2)
        filename = self.filename
        while f is not None:
            if f.f_code.co_filename == filename:
                return f.f_lineno
            f = f.f_back
        return None

    # -- full or light recording ------------------------------------------------------------------
    def _wants(self, k: int) -> bool:
        """Is iteration ``k`` to be traced node by node?"""
        if self.budget_hit:
            return False
        if self._only is not None:
            return k in self._only
        return self.trace_iterations is None or k < self.trace_iterations

    def _set_full(self, full: bool) -> None:
        self.full = full
        d = self.__dict__
        if full:
            for name in ("on_forward", "on_backward", "on_accumulate", "node_id"):
                d.pop(name, None)
        else:
            d["on_forward"], d["on_backward"], d["on_accumulate"] = self._light_forward, _ignore, _ignore
            d["node_id"] = _no_node

    def _begin(self) -> None:
        """State of a new iteration."""
        self._row = _Row()
        self._phase, self._phase_micro = "", 0
        self._micro = 0                      # backward() calls so far in this iteration
        self._pending_close = False
        self._scaling = False                # scaler.scale(loss) seen, its backward() not yet
        self._unscaled: float | None = None
        self._unscaled_node: int | None = None
        self._loss_node: int | None = None
        self._loss_types: dict[str, str] = {}
        self._running = 0
        self.events, self.event_lines = [], []
        self.nodes, self._ids, self._keep, self._leaves = {}, {}, [], {}
        self._leaf_names: dict[int, str] = {}
        self._start: dict[int, tuple] = {}
        if self.full:
            for p in self._known_params():
                self._start[id(p)] = (p._data.copy(), None if p.grad is None else p.grad._data.copy())

    def _known_params(self) -> list:
        if self.params is not None:
            return self.params
        if self.first_optimizer is not None:
            return [p for g in self.first_optimizer.param_groups for p in g["params"]]
        return list(self._manual)

    def node_id(self, t) -> int:
        nid = self._ids.get(id(t))
        if nid is None:                          # a new leaf: remember the tensor, to name it later
            nid = Recorder.node_id(self, t)
            self._leaves[nid] = t
            if not t.requires_grad and t.name is None and self.full:
                # a batch variable is rebound before the iteration closes: name it now
                hit = self._names.get(id(t))
                if hit is not None and hit[0] is t:
                    self._leaf_names[nid] = hit[1]
                else:
                    name = self._tensor_names().get(id(t))
                    if name is not None:
                        self._leaf_names[nid] = name
                        self._names[id(t)] = (t, name)
        return nid

    # -- events --------------------------------------------------------------------------------
    def _emit(self, event) -> None:
        if not self.full:
            return
        if type(event) is ZeroGradEvent and self._phase not in ("zero_grad", "zero_grad_after"):
            self._phase_to("zero_grad_after" if self._pending_close else "zero_grad")
        self.events.append(event)
        self.event_lines.append(self._locate())

    def _phase_to(self, phase: str) -> None:
        micro = self._micro if phase in _PER_MICRO_BATCH else 0
        if self._phase == phase and self._phase_micro == micro:
            return
        self._phase, self._phase_micro = phase, micro
        self._emit(PhaseEvent(phase, micro, self.iteration))

    def _light_forward(self, out, grad_fn, op, inputs, kwargs=None) -> None:
        if self._pending_close and _tensor._state.grad_enabled:
            self._close()
            if self.full:
                self.on_forward(out, grad_fn, op, inputs, kwargs)

    def on_forward(self, out, grad_fn: str, op: str, inputs, kwargs=None) -> None:
        if not _tensor._state.grad_enabled:
            return                           # builds no graph: not part of the trace
        if self._pending_close:
            self._close()
            if not self.full:
                return
        if self._phase not in ("forward", "loss") and not self._scaling:
            self._phase_to("forward")
        super().on_forward(out, grad_fn, op, inputs, kwargs)
        self._running += 3 * out._data.nbytes          # its value, and about what backward sends
        if not self._exact and self._traced_bytes + self._running > self.trace_budget:
            self._abandon()

    def _abandon(self) -> None:
        """Over the budget: this iteration and the rest are recorded light (History only)."""
        self.traced_all = False
        self.budget_hit = True
        self.events, self.event_lines = [], []
        self.nodes, self._ids, self._keep, self._leaves = {}, {}, [], {}
        self._set_full(False)

    @contextlib.contextmanager
    def loss_scope(self, name: str):
        """A loss module or functional loss is computed: its ops form the ``loss`` phase and one box."""
        if not self.full or not _tensor._state.grad_enabled:
            yield
            return
        if self._pending_close:
            self._close()
            if not self.full:
                yield
                return
        self._phase_to("loss")
        scope = f"loss#{self._micro}"
        self._loss_types[scope] = name
        with _trace.module_scope(scope):
            yield

    def on_optimizer(self, optimizer) -> None:
        self.optimizers.append(optimizer)
        if self.first_optimizer is None:
            self.first_optimizer = optimizer

    def on_backward_call(self, tensor) -> None:
        if self._pending_close:
            self._close()
        data = tensor._data
        value = self._unscaled
        if value is None:
            value = float(data.reshape(-1)[0]) if data.size == 1 else math.nan
        self._row.losses.append(value)
        if self.full:
            if not self._scaling:
                self._phase_to("backward")
            nid = self.node_id(tensor)
            self._loss_node = self._unscaled_node if self._unscaled_node is not None else nid
            self._emit(BackwardCallEvent(nid, data.copy()))
        self._scaling, self._unscaled, self._unscaled_node = False, None, None
        self._micro += 1

    def on_scale(self, scaler, outputs) -> None:
        if self._row.grad_scale == 1.0 and not self._row.losses:
            self._row.grad_scale = scaler.get_scale()
        if isinstance(outputs, _tensor.Tensor) and outputs._data.size == 1:
            self._unscaled = float(outputs._data.reshape(-1)[0])
            if self.full:
                self._phase_to("backward")
                self._scaling = True
                self._unscaled_node = self.find(outputs)

    def on_zero_grad(self, params, set_to_none: bool) -> None:
        # A zero_grad written above the update in the file (``optimizer.zero_grad()`` at the top of
        # the loop body) starts the next iteration, as the Session's "before_backward" placement
        # does; one written below it (``step(); zero_grad()``) is this iteration's zero_grad_after.
        if self._pending_close and self._update_line is not None:
            line = self._locate()
            if line is not None and line < self._update_line:
                self._close()
        if self.full:
            Recorder.on_zero_grad(self, params, set_to_none)

    def _to_step_phase(self) -> None:
        if self._phase not in ("step", "zero_grad_after", "zero_grad"):
            self._phase_to("step")

    def on_step(self, optimizer, event) -> None:
        if self.first_optimizer is None:
            self.first_optimizer = optimizer       # made outside the namespace (a custom subclass)
        if optimizer is not self.first_optimizer:
            self._emit(event)
            return
        if self._pending_close:
            self._close()
        if self.full:
            self._phase_to("step")
            self._emit(event)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        row, updates = self._row, event.updates
        if len(updates) == len(params):
            row.params_before = [u.before for u in updates]
            row.grads = [u.grad for u in updates]
            row.state = [u.state_after for u in updates]
        else:                                      # skipped by the GradScaler: nothing moved
            row.params_before = [p._data.copy() for p in params]
            row.grads = [None if p.grad is None else p.grad._data.copy() for p in params]
            row.state = [dict(optimizer.state.get(p) or {}) for p in params]
        row.skipped = bool(event.skipped)
        row.lr = float(optimizer.param_groups[0].get("lr", math.nan))
        self._update_line = self._locate()
        self._pending_close = True

    def on_manual_update(self, tensor, event) -> None:
        if self.full:
            self._to_step_phase()
            self._emit(event)
        if self.first_optimizer is not None:
            return
        if self.params is None and not any(t is tensor for t in self._manual):
            self._manual.append(tensor)
        if id(tensor) not in self._row.manual:
            grad = None if tensor.grad is None else tensor.grad._data.copy()
            self._row.manual[id(tensor)] = (np.array(event.before, copy=True), grad)
        self._update_line = self._locate()
        self._pending_close = True

    def on_clip(self, event) -> None:
        if event.total_norm is not None:
            self._row.clip_norm = float(event.total_norm)
        if self.full:
            self._to_step_phase()
            self._emit(event)

    def on_scheduler(self, scheduler, event) -> None:
        if self.full:
            self._to_step_phase()
            self._emit(event)

    # -- iterations ----------------------------------------------------------------------------
    def _close(self) -> None:
        """Iteration ``self.iteration`` is complete: keep its History row and (if full) its Trace."""
        self._pending_close = False
        if self.params is None:
            self.params = self._known_params()
            self._name_everything()
        row = self._row
        if self.first_optimizer is None:             # a manual step: the values the updates saw
            row.params_before, row.grads = [], []
            for p in self.params:
                before, grad = row.manual.get(id(p), (p._data.copy(), None if p.grad is None else p.grad._data.copy()))
                row.params_before.append(before)
                row.grads.append(grad)
            row.state = [{} for _ in self.params]
        elements = sum(p._data.size for p in self.params) or 1
        if (len(self.rows) + 1) * elements * 3 > LIMITS["max_recorded_values"]:
            self.history_limited = True
        else:
            self.rows.append(row)
        if self.full:
            trace = self._build_trace()
            self.traces[self.iteration] = trace
            # what the trace really holds (the running estimate only decides mid-iteration)
            self._traced_bytes += max(self._running, _nbytes(trace))
        else:
            self.traced_all = False
        self.iteration += 1
        k = self.iteration
        if self.full and not self._exact and self._traced_bytes >= self.trace_budget:
            self.budget_hit = True
        self._set_full(self._wants(k))
        self._begin()
        if self._only is not None and (k > self._last_wanted or self.budget_hit):
            raise StopScript
        if self.progress is not None and self.progress(k) is False:
            raise Cancelled

    def finish(self) -> None:
        """The script ended: close the iteration whose update happened (an unfinished one is dropped)."""
        if self._pending_close:
            try:
                self._close()
            except (StopScript, Cancelled):
                pass
        if self.params is None:
            self.params = self._known_params()
            self._name_everything()

    # -- names -----------------------------------------------------------------------------------
    def _scopes(self) -> list[dict]:
        """The script's variables, innermost frame first, then its module namespace."""
        scopes, f = [], sys._getframe(1)
        while f is not None:
            if f.f_code.co_filename == self.filename and f.f_locals is not self.script_globals:
                scopes.append(f.f_locals)
            f = f.f_back
        scopes.append(self.script_globals)
        return scopes

    def _name_everything(self) -> None:
        """Name the parameters (``named_parameters()`` of the script's models, else the variable
        names, else ``p0``...) and the models' modules, once."""
        owner: dict[int, tuple[str, str]] = {}
        variables: dict[int, str] = {}
        seen_modules: set[int] = set()
        for scope in self._scopes():
            for var, obj in list(scope.items()):
                if var.startswith("_") or var == "self":
                    continue
                if isinstance(obj, Module) and id(obj) not in seen_modules:
                    seen_modules.add(id(obj))
                    for pname, p in obj.named_parameters():
                        owner.setdefault(id(p), (var, pname))
                    for mname, m in obj.named_modules():
                        if mname:
                            self.module_types.setdefault(mname, type(m).__name__)
                elif isinstance(obj, _tensor.Tensor):
                    variables.setdefault(id(obj), var)
        names = []
        for i, p in enumerate(self.params):
            if id(p) in owner:
                names.append(owner[id(p)][1])
            else:
                names.append(variables.get(id(p), f"p{i}"))
        duplicated = {n for n in names if names.count(n) > 1}
        for i, p in enumerate(self.params):
            if names[i] in duplicated:
                names[i] = f"{owner[id(p)][0]}.{names[i]}" if id(p) in owner else f"p{i}"
        self.param_names = names

    def _tensor_names(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for scope in self._scopes():
            for var, obj in list(scope.items()):
                if isinstance(obj, _tensor.Tensor) and not var.startswith("_"):
                    out.setdefault(id(obj), var)
        return out

    # -- the trace of one iteration ------------------------------------------------------------------
    def _build_trace(self) -> Trace:
        events, lines, nodes = self.events, self.event_lines, self.nodes
        param_nodes = {name: self.node_id(p) for name, p in zip(self.param_names, self.params)}
        # Data preparation before the iteration's first graph-building op becomes input leaves.
        first_op = next((i for i, e in enumerate(events)
                         if type(e) is ForwardEvent and nodes[e.node].kind == "op"), len(events))
        folded = {e.node: e.inputs for e in events[:first_op] if type(e) is ForwardEvent}
        keep = [i for i, e in enumerate(events) if not (i < first_op and type(e) is ForwardEvent)]
        events, lines = [events[i] for i in keep], [lines[i] for i in keep]
        if folded:
            values = {e.node: e.value for e in self.events[:first_op] if type(e) is ForwardEvent}
            for nid in folded:
                info, value = nodes[nid], values[nid]
                info.inputs, info.op = (), ""
                info.value = value if value.size <= _trace.LEAF_VALUE_LIMIT else None
        following = None                         # a phase is lit where its first event happens
        for i in range(len(events) - 1, -1, -1):
            if type(events[i]) is not PhaseEvent:
                following = lines[i]
            elif following is not None:
                lines[i] = following
        used = _referenced(events) | set(param_nodes.values())
        stack = list(used)
        while stack:
            for src in nodes[stack.pop()].inputs:
                if src not in used:
                    used.add(src)
                    stack.append(src)
        nodes = {nid: info for nid, info in nodes.items() if nid in used}
        named = self._label_nodes(nodes, param_nodes, folded)
        micro_batches = max(1, self._micro)
        for info in nodes.values():
            if info.module.startswith("loss#"):
                j = int(info.module[5:].split(".")[0])
                info.module = "loss" if micro_batches == 1 else f"loss (micro-batch {j + 1})"
        module_types = dict(self.module_types)
        for scope, kind in self._loss_types.items():
            j = int(scope[5:])
            module_types["loss" if micro_batches == 1 else f"loss (micro-batch {j + 1})"] = kind
        input_nodes: dict[str, list[int]] = {}
        for nid in sorted(named):
            input_nodes.setdefault(nodes[nid].label, []).append(nid)
        grads_before, params_before, params_after = {}, {}, {}
        for name, p in zip(self.param_names, self.params):
            start = self._start.get(id(p))
            value = nodes[param_nodes[name]].value
            params_before[name] = start[0] if start else (value if value is not None else p._data.copy())
            grads_before[name] = start[1] if start else None
            params_after[name] = p._data.copy()
        return Trace(iteration=self.iteration, nodes=nodes, events=events, param_nodes=param_nodes,
                     loss_node=self._loss_node, grads_before=grads_before, params_before=params_before,
                     params_after=params_after, accumulation_steps=micro_batches, input_nodes=input_nodes,
                     module_types=module_types, event_lines=lines)

    def _label_nodes(self, nodes: dict[int, NodeInfo], param_nodes: dict[str, int],
                     folded: dict[int, tuple]) -> set[int]:
        """Parameters by their names; input leaves by the script's variable names (a leaf folded
        from data preparation, ``x.to(float16)`` say, by its input's). Returns the nodes named."""
        for name, nid in param_nodes.items():
            nodes[nid].label = name
        params = set(param_nodes.values())
        leaves = [nid for nid, info in nodes.items()
                  if info.kind == "input" and nid not in params and not info.inputs
                  and not _trace.is_number_label(info.label)]
        if not leaves:
            return set()
        wanted = set(leaves).union(*(folded.get(nid, ()) for nid in leaves)) if folded else leaves
        tensors = {nid: self._leaves[nid] for nid in wanted if nid in self._leaves}
        missing = {nid for nid in wanted if nid not in tensors}
        if missing:     # data made by ops before the loop (x = linspace(...).reshape(-1, 1)): its op's output
            ids = self._ids
            tensors.update({ids[id(t)]: t for t in self._keep if ids.get(id(t)) in missing})
        # The same tensors (x, y) are met every iteration: reuse last iteration's names for them.
        cache, names, variables = self._names, dict(self._leaf_names), None
        for nid, t in tensors.items():
            if nid in names:
                continue
            hit = cache.get(id(t))
            if hit is not None and hit[0] is t:
                names[nid] = hit[1]
                continue
            if variables is None:
                variables = self._tensor_names()
            if id(t) in variables:
                names[nid] = variables[id(t)]
        self._names = {id(tensors[nid]): (tensors[nid], name) for nid, name in names.items() if nid in tensors}
        named = set()
        for nid in leaves:
            info = nodes[nid]
            name = names.get(nid)
            if name is None and nid in folded:
                name = next((names[src] for src in folded[nid] if src in names), None)
            if name is not None:
                info.label = name
                named.add(nid)
            elif nid in folded:
                info.label = f"x{nid}"
        return named

    # -- the History -------------------------------------------------------------------------------
    def history(self, variant: str) -> History | None:
        """Every closed iteration as a History (None when the script never updated a parameter)."""
        if not self.params or not self.rows:
            return None
        rows, params, names = self.rows, self.params, self.param_names
        n = len(rows)
        micro = max(1, max(len(r.losses) for r in rows))
        buf = HistoryBuffer(names, params, n, micro)
        buf.micro[:] = np.nan                     # a row with fewer micro-batches keeps nan in the rest
        diverged: tuple[int, str] | None = None
        for k, r in enumerate(rows):
            if r.losses:
                buf.micro[k, :len(r.losses)] = r.losses
                buf.loss[k] = sum(r.losses) / len(r.losses)
            buf.grad_scale[k], buf.skipped[k] = r.grad_scale, r.skipped
            for i in range(len(params)):
                before = r.params_before[i] if r.params_before and i < len(r.params_before) else None
                if before is not None:
                    buf.params[i][k] = before
                grad = r.grads[i] if r.grads and i < len(r.grads) else None
                if grad is None:
                    buf.grad_none[i][k] = True
                else:
                    buf.grads[i][k] = grad
                if r.state and i < len(r.state) and r.state[i]:
                    buf.record_state(i, k, r.state[i])
            if diverged is None and r.losses and not math.isfinite(buf.loss[k]):
                diverged = (k, f"loss is {'nan' if math.isnan(buf.loss[k]) else 'inf'}")
        for i, p in enumerate(params):
            for k in range(1, n):
                if rows[k].params_before is None:
                    buf.params[i][k] = buf.params[i][k - 1]
            buf.params[i][n] = p._data if len(rows) == self.iteration else buf.params[i][n - 1]
        message = ""
        if diverged is not None:
            message = f"diverged at step {diverged[0]}: {diverged[1]}"
        if self.history_limited:
            message = message or f"the History keeps the first {n} iterations (memory limit)"
        history = buf.history(variant, n, diverged[0] if diverged else None, message)
        lrs = np.array([r.lr for r in rows])
        history.lr = None if np.isnan(lrs).all() else lrs
        clip = np.array([r.clip_norm for r in rows])
        history.clip_norm = None if np.isnan(clip).all() else clip
        return history


def _referenced(events) -> set[int]:
    out: set[int] = set()
    for e in events:
        kind = type(e)
        if kind is ForwardEvent or kind is BackwardEvent:
            out.add(e.node)
            out.update(e.inputs)
        elif kind is ZeroGradEvent:
            out.update(c.node for c in e.cleared)
        elif kind is StepEvent:
            out.update(u.node for u in e.updates)
        elif kind is ClipEvent:
            out.update(g.node for g in e.grads)
        elif kind is not PhaseEvent:
            node = getattr(e, "node", None)
            if node is not None:
                out.add(node)
    return out
