"""Running a PyTorch script on the core, recorded: the script runner.

    result = run_script(source, "lesson.py")        # ScriptResult: history, traces, stdout, notes, error
    run = ScriptRun(result)                          # what a Session gives the views
    run.trace_iteration(3)                           # a Trace (or TraceNotRecorded: ask for trace_only=3)

The script runs in a fresh ``__main__`` namespace with ``import torch`` resolving to the core
(``torch_namespace``), under a ``ScriptRecorder`` (script_recorder.py) that cuts what it does into
iterations and records each event with its line. Its printed output is captured (and passed on
as it comes); every exception in it becomes one ``ScriptError`` line naming the script's file and
line (``lesson.py:3: ZeroDivisionError: division by zero``), never a line of GradViz's own code.
This runs in the caller's process: the worker (worker.py) adds the time limit and memory cap.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _printing, _tensor
from .. import amp as _amp
from .. import random as _random
from .. import trace as _trace
from ..scenario.schema import LIMITS, OPTIMIZER_CLASSES, OPTIMIZER_DEFAULTS, LoopSpec, OptimizerSpec, Scenario, Variant
from ..scenario.script_source import header
from ..scenario.script_source import run_name as lesson_run_name
from . import landscape as _landscape
from . import torch_namespace
from .build import SessionError
from .history import History
from .script_recorder import Cancelled, ScriptRecorder, StopScript

__all__ = ["run_script", "ScriptResult", "ScriptError", "ScriptAbort", "ScriptRun", "TraceNotRecorded",
           "ScriptOptimizer", "script_scenario", "untraced", "TRACE_BUDGET", "TRACE_ITERATIONS", "STDOUT_LIMIT"]

TRACE_BUDGET = 64 * 2 ** 20          # bytes of traces kept from one run before recording goes light
# iterations a run traces node by node while it runs (the rest are recorded light, History only,
# and traced later with trace_only): tracing every iteration would make a run several times slower
TRACE_ITERATIONS = 5
STDOUT_LIMIT = 1_000_000             # characters of printed output kept in a ScriptResult
SHOW_S_PER_EVENT = 2e-5              # showing a kept trace, per event: its Replay and the graph's fold of
                                     # it took 25 ms for 3,001 events (498 Linear(4, 4) + Tanh); counted
                                     # twice that, a trace of over 1,500 events is replayed in a worker


class ScriptError(Exception):
    """A script failed: ``str()`` is ``"lesson.py:3: message"`` (``"lesson.py: message"`` without a line).

    ``kind`` says what failed: "syntax", "exception", "unsupported" (a torch API the core lacks),
    "memory", "cancelled", "abort" (ScriptAbort: a time limit, say), "exit" (``sys.exit(1)``)."""

    def __init__(self, path, line: int | None, message: str, kind: str = "exception"):
        super().__init__(str(path), line, message, kind)
        self.path, self.line, self.message, self.kind = str(path), line, message, kind

    def __str__(self) -> str:
        name = Path(self.path).name
        return f"{name}:{self.line}: {self.message}" if self.line is not None else f"{name}: {self.message}"


class ScriptAbort(Exception):
    """Raise it inside a running script (from a signal handler, say) to stop it with this message,
    given as is: ``ScriptAbort("the script ran longer than the time limit (60 s)")``."""


class TraceNotRecorded(LookupError):
    """Iteration ``iteration`` ran light (over the trace budget): run the script again with
    ``trace_only=iteration`` and ``ScriptRun.add_trace`` the result's trace."""

    def __init__(self, iteration: int):
        super().__init__(iteration)
        self.iteration = iteration

    def __str__(self) -> str:
        return f"iteration {self.iteration} was not traced: run the script again with trace_only={self.iteration}"


@dataclass
class ScriptOptimizer:
    """The script's first optimizer: its class name and its first param group's hyperparameters."""
    name: str
    hyper: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        shown = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hyper.items()
                 if k == "lr" or k in ("momentum", "weight_decay") and v]
        return f"{self.name}({', '.join(shown)})"


@dataclass
class ScriptResult:
    """What one run of a script gave (picklable: the worker sends it back whole)."""
    path: str
    title: str
    description: str
    source: str
    history: History | None = None
    traces: dict[int, Any] = field(default_factory=dict)      # iteration -> gradviz.trace.Trace
    traced_all: bool = True
    stdout: str = ""
    stderr: str = ""
    notes: list[str] = field(default_factory=list)
    error: ScriptError | None = None
    optimizer: ScriptOptimizer | None = None
    module_types: dict[str, str] = field(default_factory=dict)
    param_names: list[str] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    trace_only: Any = None             # what the run was asked to trace (an iteration, a range), or None
    trace_bytes: int = 0               # about how many bytes ``traces`` hold (what the budget counts)
    budget_hit: bool = False           # tracing stopped because ``trace_budget`` was spent

    @property
    def ok(self) -> bool:
        return self.error is None


class _Output(io.TextIOBase):
    """The script's stdout or stderr: kept up to a limit, and passed on as it comes."""

    def __init__(self, sink, limit: int):
        self.sink, self.limit = sink, limit
        self.parts: list[str] = []
        self.size = 0
        self.cut = False

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        if self.size < self.limit:
            self.parts.append(text[:self.limit - self.size])
            self.size += len(self.parts[-1])
        elif text:
            self.cut = True
        if self.sink is not None:
            if callable(self.sink):
                self.sink(text)
            else:
                self.sink.write(text)
        return len(text)

    def text(self) -> str:
        return "".join(self.parts) + ("\n[… output cut: more than the kept limit]\n" if self.cut else "")


@contextlib.contextmanager
def _fresh_core(seed: bool, filename: str):
    """The core's state as a fresh ``python script.py`` finds it, put back afterwards.

    Grad mode, autocast and the module stack are per thread (``_tensor._state``, ``_amp._state``,
    ``_trace._state``): this saves and resets the calling thread's; the default dtype, print
    options and generators are process-global, as in PyTorch."""
    tstate, astate, rstate = _tensor._state, _amp._state, _trace._state
    saved = (tstate.grad_enabled, tstate.autocast_hook, _tensor._DEFAULT_DTYPE, _printing.get_printoptions(),
             list(rstate.module_stack), sys.argv, list(sys.path))
    # autocast's region count and cast cache, and the default generator (a script left inside an
    # autocast region, or one that drew numbers, must not change what the next caller sees)
    amp_saved = (astate.nesting, astate.cache_enabled, dict(astate.cast_cache))
    rng_saved = _random.get_rng_state()
    astate.nesting, astate.cache_enabled = 0, True
    astate.cast_cache.clear()
    tstate.grad_enabled = True
    tstate.autocast_hook = None
    _tensor._DEFAULT_DTYPE = _tensor.float32
    rstate.module_stack.clear()
    sys.argv = [filename]
    sys.path.insert(0, os.path.dirname(os.path.abspath(filename)))
    if seed:
        random.seed(0)
        np.random.seed(0)
        _random.manual_seed(_random.DEFAULT_SEED)
    try:
        yield
    finally:
        tstate.grad_enabled, tstate.autocast_hook, _tensor._DEFAULT_DTYPE, options, stack, sys.argv, sys.path[:] = saved
        _printing.set_printoptions(**options)
        rstate.module_stack[:] = stack
        astate.nesting, astate.cache_enabled = amp_saved[0], amp_saved[1]
        astate.cast_cache.clear()
        astate.cast_cache.update(amp_saved[2])
        _random.set_rng_state(rng_saved)


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _script_line(tb, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _error(exc: BaseException, path: str, filename: str) -> ScriptError:
    """One line for an exception raised while the script ran, at its innermost line in the script."""
    line = _script_line(exc.__traceback__, filename)
    kind = "exception"
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line, message, kind = exc.lineno, f"{type(exc).__name__}: {exc.msg}", "syntax"
    elif isinstance(exc, Cancelled):
        message, kind = "cancelled", "cancelled"
    elif isinstance(exc, ScriptAbort):
        message, kind = _first_line(exc), "abort"
    elif isinstance(exc, torch_namespace.UnsupportedAPI):
        message, kind = _first_line(exc), "unsupported"
    elif isinstance(exc, ModuleNotFoundError) and "not supported by GradViz" in str(exc):
        message, kind = _first_line(exc), "unsupported"
    elif isinstance(exc, ImportError) and (exc.name or "").partition(".")[0] == "torch" \
            and "cannot import name" in str(exc):
        wanted = str(exc).split("'")[1] if str(exc).count("'") >= 2 else "?"
        message, kind = torch_namespace.unsupported_message(exc.name, wanted), "unsupported"
    elif isinstance(exc, MemoryError):
        message, kind = "MemoryError: the script ran out of memory", "memory"
    else:
        text = _first_line(exc)
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return ScriptError(path, line, message, kind)


def _optimizer_info(optimizer) -> ScriptOptimizer | None:
    if optimizer is None:
        return None
    group = dict(optimizer.param_groups[0]) if optimizer.param_groups else {}
    if "initial_lr" in group:         # a scheduler moved lr: the run is named by the script's own
        group["lr"] = group["initial_lr"]
    hyper = {}
    for key, value in group.items():
        if key in ("params", "param_names", "initial_lr"):
            continue
        if value is None or isinstance(value, (bool, int, float, str)):
            hyper[key] = value
        elif isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
            hyper[key] = tuple(float(v) for v in value)
        elif isinstance(value, np.generic):
            hyper[key] = value.item()
    return ScriptOptimizer(type(optimizer).__name__, hyper)


def run_script(source: str, path, *, trace_budget: int = TRACE_BUDGET, trace_only=None,
               trace_iterations: int | None = TRACE_ITERATIONS, progress=None, stdout=None, stderr=None,
               seed_python_random: bool = True, record: bool = True,
               stdout_limit: int = STDOUT_LIMIT) -> ScriptResult:
    """Run the script ``source`` (from file ``path``) on the core and record it.

    - ``trace_iterations=N``: trace the first N iterations node by node, record the others light
      (History only; ``traced_all`` is False, ``untraced(result)`` lists them); None traces all;
    - ``trace_budget``: bytes of per-iteration Traces to keep; once spent, the later iterations are
      recorded light too and ``budget_hit`` is True;
    - ``trace_only=k``: record only iteration k fully and stop the script right after it (the
      result's ``traces`` is ``{k: trace}``; its History covers the iterations run); a range or
      collection of iterations (``range(5, 25)``) records those (within ``trace_budget``: when it is
      spent the run stops early, ``budget_hit``) and stops after the last;
    - ``progress(iterations_done)`` after each iteration; returning False stops the run with the
      error "cancelled";
    - ``stdout`` / ``stderr``: where the script's printed text goes as it comes (a callable taking
      the text, or a file); it is also kept in the result, up to ``stdout_limit`` characters;
    - ``seed_python_random``: seed Python's ``random``, numpy's global generator and the core's
      default generator as a fresh process would be, the same every run, so that a re-run (for
      ``trace_only``) replays the same numbers;
    - ``record=False`` runs without a recorder (to measure what recording costs).

    Never raises for anything the script does: a failure is ``result.error``.
    """
    filename = os.fspath(path)
    title, description = header(source, filename)
    result = ScriptResult(path=filename, title=title, description=description, source=source,
                          trace_only=trace_only)
    started = time.perf_counter()
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        message = f"{type(exc).__name__}: {getattr(exc, 'msg', None) or _first_line(exc)}"
        result.error = ScriptError(filename, line, message, "syntax")
        return result
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": filename, "__builtins__": builtins,
                                 "__doc__": None}
    rec = ScriptRecorder(filename, namespace, trace_budget=trace_budget, trace_only=trace_only,
                         trace_iterations=trace_iterations, progress=progress) if record else None
    out, err = _Output(stdout, stdout_limit), _Output(stderr, stdout_limit)
    notes: list[str] = []

    def show_warning(message, category, wfile, lineno, file=None, line=None):
        where = rec.locate() if rec is not None else None
        if where is None:
            where = lineno if wfile == filename else None
        text = f"{Path(filename).name}:{where}: " if where is not None else f"{Path(filename).name}: "
        text += f"{category.__name__}: {_first_line(message)}"
        if text not in notes:
            notes.append(text)

    with _fresh_core(seed_python_random, filename), torch_namespace.installed() as shim:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), \
                np.errstate(all="ignore"):
            warnings.simplefilter("default")
            warnings.showwarning = show_warning
            try:
                with _trace.record(rec) if rec is not None else contextlib.nullcontext():
                    exec(code, namespace)
            except StopScript:
                pass
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    line = _script_line(exc.__traceback__, filename)
                    result.error = ScriptError(filename, line, f"SystemExit: {exc.code}", "exit")
            except Exception as exc:
                result.error = _error(exc, filename, filename)
            if rec is not None:
                rec.finish()
        notes[:0] = shim.notes
    result.seconds = time.perf_counter() - started
    result.stdout, result.stderr = out.text(), err.text()
    if rec is not None:
        result.iterations = len(rec.rows) if not rec.history_limited else rec.iteration
        result.param_names = list(rec.param_names)
        result.module_types = dict(rec.module_types)
        result.optimizer = _optimizer_info(rec.first_optimizer)
        result.history = rec.history(Path(filename).name)
        result.traces = rec.traces
        result.traced_all = rec.traced_all and trace_only is None
        result.trace_bytes, result.budget_hit = rec._traced_bytes, rec.budget_hit
        if rec.budget_hit and trace_only is None:
            notes.append(f"traced iterations 0-{max(rec.traces, default=-1)} node by node (the trace budget); "
                         "later ones are traced when shown")
        if rec.history_limited:
            notes.append(f"the History keeps the first {len(rec.rows)} iterations (the memory limit)")
    result.notes = notes
    del namespace
    return result


def untraced(result: ScriptResult, have=()) -> list[int]:
    """The iterations of ``result`` whose Trace was not recorded (nor is in ``have``), in order."""
    if result.history is None:
        return []
    got = set(result.traces) | set(have)
    return [k for k in range(result.history.steps) if k not in got]


# -- what the views read ---------------------------------------------------------------------------
def _optimizer_spec(info: ScriptOptimizer | None) -> OptimizerSpec:
    kinds = {cls: kind for kind, cls in OPTIMIZER_CLASSES.items()}
    kind = kinds.get(info.name) if info is not None else None
    if kind is None:
        return OptimizerSpec("sgd", dict(OPTIMIZER_DEFAULTS["sgd"]))
    hyper = dict(OPTIMIZER_DEFAULTS[kind])
    for key in hyper:
        if key in info.hyper:
            hyper[key] = info.hyper[key]
    return OptimizerSpec(kind, hyper)


def script_scenario(path, source: str, result: ScriptResult | None = None) -> Scenario:
    """The ``Scenario`` the views read for a script: title and description from its header
    comment, ``script`` = its source, the optimizer and steps of ``result``'s run (if given)."""
    title, description = header(source, os.fspath(path))
    steps = result.iterations if result is not None else 0
    accumulation = result.history.accumulation_steps if result is not None and result.history else 1
    info = result.optimizer if result is not None else None
    optimizer = _optimizer_spec(info)
    if info is not None:     # the run is named after the optimizer the script built
        run_name = optimizer.label() if info.name in OPTIMIZER_CLASSES.values() else info.label()
    else:                    # no optimizer: the script updates its parameters itself
        run_name = "manual update" if result is not None and result.history is not None else Path(path).name
    run_name = lesson_run_name(source) or run_name          # a "# run: <name>" comment names it for the lesson
    return Scenario(title=title, description=description, optimizer=optimizer,
                    loop=LoopSpec(steps=steps, accumulation_steps=accumulation),
                    path=Path(path), script=source, run_name=run_name)


class ScriptRun:
    """A script's run, shaped like a ``Session`` for the views: ``history``, ``trace_iteration(k)``,
    ``variant_spec``, ``scalar_parameters()``; ``landscape`` needs a TOML scenario."""

    def __init__(self, result: ScriptResult, scenario: Scenario | None = None):
        self.result = result
        self.scenario = scenario if scenario is not None else script_scenario(result.path, result.source, result)
        self.variant_index = 0
        self.variant_spec = Variant(Path(result.path).name, self.scenario.optimizer, self.scenario.loop)
        self.param_names: list[str] = list(result.param_names)
        self.data = None
        self._traces: dict[int, Any] = dict(result.traces)

    @property
    def history(self) -> History | None:
        return self.result.history

    @property
    def iterations(self) -> int:
        return self.result.history.steps if self.result.history is not None else 0

    def trace_iteration(self, iteration: int):
        """Iteration ``iteration``'s Trace; ``TraceNotRecorded`` when the run recorded it light."""
        iteration = int(iteration)
        if not 0 <= iteration < self.iterations:
            raise IndexError(f"iteration {iteration} is out of range (0..{self.iterations - 1})")
        found = self._traces.get(iteration)
        if found is None:
            raise TraceNotRecorded(iteration)
        if len(found.nodes) > LIMITS["max_graph_nodes"]:
            raise SessionError(f"iteration {iteration} has {len(found.nodes)} graph nodes, more than "
                               f"{LIMITS['max_graph_nodes']} the graph view can show")
        return found

    def trace_estimate(self, iteration: int) -> float:
        """Seconds showing iteration ``iteration``'s trace is expected to take (as
        ``Session.trace_estimate``): a kept trace costs only its Replay and the graph's first pass over
        it, ``SHOW_S_PER_EVENT`` each event (the window builds a large one's Replay in a worker); one
        not kept, nothing here (``trace_iteration`` says so at once)."""
        found = self._traces.get(int(iteration))
        return 0.0 if found is None else len(found.events) * SHOW_S_PER_EVENT

    def add_trace(self, trace) -> None:
        """Keep a trace recorded later (``run_script(..., trace_only=k)``)."""
        self._traces[int(trace.iteration)] = trace

    def has_trace(self, iteration: int) -> bool:
        return int(iteration) in self._traces

    def scalar_parameters(self) -> list[str]:
        history = self.history
        if history is None:
            return []
        return _landscape.scalar_parameters({n: history.params[n][0] for n in history.param_names})

    def landscape(self, p1: str, p2: str, n: int = 100, x_range=None, y_range=None):
        raise SessionError("the loss landscape needs a TOML scenario: GradViz cannot evaluate a script's "
                           "loss at other parameter values without running the whole script again")
