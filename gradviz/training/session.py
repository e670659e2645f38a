"""The one training loop: runs what a Scenario describes on the core and records it.

    session = Session(scenario)            # builds model, data, loss, optimizer (and GradScaler)
    history = session.run()                # every optimizer step, as numpy arrays
    trace = session.trace_iteration(12)    # step 12 again, node by node, bit for bit
    land = session.landscape("w", "b")     # the loss over a grid of two scalars

The Session drives a step ``Engine`` (engine.py) built from the scenario (build.py) through a run:
it keeps checkpoints, checks each chunk of steps for divergence, and hands out the ``History``
(history.py) that the engine fills. Nothing here is random except through the seeds in the
scenario, so the same file gives the same numbers, and a step can be replayed exactly from a
checkpoint (that is how ``trace_iteration`` works). The loss landscape is landscape.py's.

Threads: a run may go on in a worker thread (ui/run_thread.py) while another thread reads
``session.history``: the running thread publishes a new History after every chunk (one attribute
assignment, rows written before it), so a reader only ever sees complete rows. The core's grad
mode, autocast and trace recorder are per thread (as in PyTorch), so threads may compute with the
core at once; what they must not share is one Session's engine: ``session.lock`` is held around
every chunk of steps, every trace and every landscape of that Session. Building a layers model
seeds the process-wide generator and draws from it, under ``build.SEED_LOCK``.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from .. import trace
from ..scenario.schema import LIMITS, Scenario, Variant
from ..trace import Trace
from . import landscape as _landscape
from .build import TENSOR_FUNCTIONS, Data, SessionError, check, module_types, one_line, prepare
from .engine import Checkpoint, Engine, batch_order
from .history import DOCUMENT_HISTORY_BUDGET, History, HistoryBuffer, Landscape, plan_stride

__all__ = ["Session", "SessionError", "History", "Landscape", "run_all", "batch_order",
           "TENSOR_FUNCTIONS"]

CHUNK = 200                              # steps between divergence checks / progress calls in run()
RECORD_STEPS = 6                         # a recorded step costs about this many plain ones (trace_estimate)
CHECKPOINTS = 64                         # checkpoints a run keeps at most (an iteration replays from one)
CHECKPOINT_SHARE = 8                     # ... within 1/8 of the run's memory budget (they count in it)


class Session:
    """Runs one variant of a scenario (0 = the main run, i = ``scenario.comparisons[i - 1]``).

    Building checks the scenario (``gradviz.scenario.validate``) and runs one forward pass and the
    loss on the first micro-batch, so a bad expression or a shape mismatch is a ``SessionError``
    here, not later.
    ``variant_index`` is that number and ``variant_spec`` the ``Variant`` it names (its name,
    optimizer and loop).

    ``history_budget``: the bytes this run's History may keep (default: its share of
    ``DOCUMENT_HISTORY_BUDGET``, divided evenly among the scenario's variants); a run that would
    need more keeps parameters, gradients and optimizer state every ``stride``-th step only
    (``History.reduction`` says so; docs/history.md).
    """

    def __init__(self, scenario: Scenario, variant: int = 0, history_budget: int | None = None):
        self.lock = threading.RLock()        # this Session's engine: one thread at a time
        self._wanting: set[int] = set()      # threads waiting for the lock (a trace, a landscape)
        self._setup = setup = prepare(scenario, variant)
        self.scenario = scenario
        self.variant_index: int = variant
        self.variant_spec: Variant = setup.variant_spec
        self.history_budget: int = (DOCUMENT_HISTORY_BUDGET // max(1, len(scenario.variants()))
                                    if history_budget is None else int(history_budget))
        self._engine = Engine(setup)
        self.param_names: list[str] = list(self._engine.names)
        self._initial = {n: p._data.copy() for n, p in zip(self.param_names, self._engine.params)}
        check(setup, self._engine.model, self._engine.loss_fn)
        self._replay: Engine | None = None
        self.step_seconds = 0.0          # the last run's mean time per step (trace_estimate)
        self._checkpoints: dict[int, Checkpoint] = {0: self._engine.checkpoint()}
        self._every = 1
        self._buffer = self._new_buffer(0)
        self._done = 0
        self._total = 0
        self._diverged_at: int | None = None
        self._message = ""
        self._history: History | None = None
        self._running = False            # a run's generator is under way (between its chunks too)
        self._publish()                  # never None from here on: a reader in another thread never builds one

    @property
    def data(self) -> Data:
        """The data set as the loop feeds it: ``inputs`` by name, ``target``, in the run's dtype."""
        return self._setup.data

    # -- running --------------------------------------------------------------------------------
    @property
    def history(self) -> History:
        """What the current (or last) run recorded so far."""
        return self._history

    @property
    def planned_steps(self) -> int:
        """The optimizer steps the current (or last) run was asked for; 0 before any run."""
        return self._total

    def run(self, steps: int | None = None, progress=None) -> History:
        """Run from the initial state for ``steps`` (default ``loop.steps``) optimizer steps.

        ``progress(done, total)`` is called every few hundred steps; returning False cancels (the
        History then holds the steps done, and ``message`` says so). Divergence stops the run and
        is reported in the History; it never raises.
        """
        chunk = CHUNK if progress is None else max(1, min(CHUNK, (steps or self.variant_spec.loop.steps) // 100))
        for done, total in self._run(steps, chunk):
            if progress is not None and progress(done, total) is False:
                self._finish(f"cancelled after {done} of {total} steps")
                break
        return self.history

    def run_chunked(self, chunk: int = 200, seconds: float | None = None,
                    pause: Callable[[], None] | None = None) -> Iterator[tuple[int, int]]:
        """Run from the initial state, yielding ``(done, total)`` after every ``chunk`` steps (or
        sooner, once a chunk has taken ``seconds``; at least one step); ``self.history`` grows in
        between (the UI redraws from it). Stopping early: :meth:`stop` after a yield. ``pause()``,
        if given, is called inside every step after each micro-batch's forward and backward
        (``Engine.pause``: the app's run thread steps aside there for the UI thread)."""
        return self._run(None, max(1, int(chunk)), seconds, pause)

    def stop(self, message: str = "") -> History:
        """End a :meth:`run_chunked` run after the steps it yielded so far (e.g. the user cancelled):
        the History keeps them and says so."""
        self._finish(message or f"cancelled after {self._done} of {self._total} steps")
        return self.history

    def _publish(self) -> None:
        """The History of the steps done so far, as one assignment (see the module docstring)."""
        if self._buffer is not None:               # (none once released)
            self._history = self._buffer.history(self.variant_spec.name, self._done, self._diverged_at,
                                                 self._message)

    def _run(self, steps: int | None, chunk: int, seconds: float | None = None,
             pause: Callable[[], None] | None = None) -> Iterator[tuple[int, int]]:
        total = int(self.variant_spec.loop.steps if steps is None else steps)
        if total < 0:
            raise SessionError(f"steps must be >= 0, found {total}")
        self._running = True            # until this generator ends (release() waits for that)
        # no pause while another thread waits for this Session's lock (the run holds it for a chunk):
        # a UI thread tracing an iteration would otherwise be the turn the run steps aside for
        self._engine.pause = None if pause is None else (lambda: None if self._wanting else pause())
        try:
            yield from self._steps(total, chunk, seconds)
        finally:
            self._engine.pause = None
            self._running = False

    def _steps(self, total: int, chunk: int, seconds: float | None) -> Iterator[tuple[int, int]]:
        self._reset(total)
        engine, buf = self._engine, self._buffer
        check_grads = engine.scaler is None
        began = time.perf_counter()
        every, checkpoints = self._every, self._checkpoints
        while self._done < total:
            start = self._done
            stop = min(total, start + chunk)
            step = start
            bad = None
            deadline = None if seconds is None else time.perf_counter() + seconds
            try:
                with self.lock, np.errstate(all="ignore"):
                    for step in range(start, stop):
                        if step % every == 0 and step not in checkpoints:
                            checkpoints[step] = engine.checkpoint()
                        engine.step(step, buf)
                        if buf.suspect:        # the step's cheap finiteness check tripped: look closer
                            why = buf.bad_at(step, check_grads)
                            if why is not None:
                                bad = (step, why)
                                break
                        if deadline is not None and time.perf_counter() >= deadline:
                            stop = step + 1
                            break
            except Exception as exc:
                self._done = step
                self._finish(f"stopped at step {step}: {one_line(exc)}", final=False)
                raise SessionError(f"step {step}: {one_line(exc)}") from None
            if bad is not None:
                at, what = bad
                self._done = at + 1
                self._diverged_at = at
                for c in [c for c in checkpoints if c > at]:
                    del checkpoints[c]
                self._finish(f"diverged at step {at}: {what}")
                yield self._done, total
                return
            self._done = stop
            self.step_seconds = (time.perf_counter() - began) / stop
            self._publish()
            yield stop, total
        self._finish("")

    def _reset(self, total: int) -> None:
        engine = self._engine
        engine.restore(self._checkpoints[0])
        self._checkpoints = {0: self._checkpoints[0]}
        self._every = max(1, total // CHECKPOINTS, -(-total // self._checkpoint_count()))
        self._buffer = self._new_buffer(total)
        self._done, self._total = 0, total
        self._diverged_at, self._message = None, ""
        self._publish()

    def _checkpoint_count(self) -> int:
        """How many checkpoints a run keeps: ``CHECKPOINTS``, fewer where they would take more than
        ``1 / CHECKPOINT_SHARE`` of the run's budget (each holds the parameters, gradients and
        optimizer state: at 100k parameters 1.6 MB; 9 variants' 64 each were 0.9 GB beside their
        Histories). Fewer checkpoints: an iteration's trace replays more steps."""
        row_bytes, _ = self._row_bytes()
        each = max(1, sum(row_bytes.values()))
        return max(1, min(CHECKPOINTS, self.history_budget // CHECKPOINT_SHARE // each))

    def _new_buffer(self, total: int) -> HistoryBuffer:
        engine = self._engine
        row_bytes, step_bytes = self._row_bytes()
        kept = (-(-total // self._every) + 1) * sum(row_bytes.values()) if total else 0   # the checkpoints
        stride, reduction = plan_stride(total, row_bytes, step_bytes, max(0, self.history_budget - kept))
        if getattr(self, "_buffer", None) is not None:
            # a re-run: unpublish the last run's views (an empty History, as _reset's _publish gives)
            # and drop its buffer first, so that its memory nothing else holds is back in the pool
            # (history_pool.py) for this run's buffer to fill again
            self._history = self._buffer.history(self.variant_spec.name, 0, None, "", copy_out=True,
                                                 first_params=self._checkpoints[0].params)
            self._buffer = None
        return HistoryBuffer(self.param_names, engine.params, total, engine.accumulation_steps,
                             clipping=engine.max_norm is not None, stride=stride, reduction=reduction)

    def _row_bytes(self) -> tuple[dict[str, int], int]:
        """What one kept row of params, grads and optimizer state costs (the buffers the optimizer
        really keeps: ``state_keys``, e.g. three and a step counter for Adam with amsgrad), and what
        one step's scalars cost (loss, lr, grad scale, clip norm, gradient norm, micro-losses, flags)."""
        engine = self._engine
        params = engine.params
        values = sum(p._data.nbytes for p in params)
        optimizer = engine.optimizer
        keys = type(optimizer).state_keys(optimizer.param_groups[0]) if optimizer.param_groups else []
        state = sum(8 * len(params) if key == "step" else values for key in keys)
        step = 8 * (5 + engine.accumulation_steps) + 1 + len(params)
        return {"params": values, "grads": values, "state": state}, step

    def _finish(self, message: str, final: bool = True) -> None:
        """Freeze the History (trimmed to the steps done, so the preallocated rest is freed);
        ``final``: the live parameters are the value after the last step done (not after an error)."""
        if message and not self._message:
            self._message = message
        if self._buffer is None:                   # released (release): its empty History stays
            return
        if final:
            self._buffer.finish(self._done, self._engine.params)
        self._history = self._buffer.history(self.variant_spec.name, self._done, self._diverged_at,
                                             self._message, copy_out=self._done < self._buffer.total)

    def release(self) -> bool:
        """Let go of this Session's run: its History buffer, checkpoints (but the first) and replay
        engine; ``history`` becomes an empty History. For a caller that drops the Session while
        something else may still hold it (a finished trace job's key, a closure): the memory goes
        back to the pool now, not when the last holder lets go. False (nothing done) while another
        thread uses the Session (a run between two chunks, a replay): try again later."""
        if self._running or not self.lock.acquire(blocking=False):
            return False
        try:
            self._checkpoints = {0: self._checkpoints[0]}
            self._replay = None
            # an empty History that holds none of the buffer's memory, and no new buffer: a new one
            # (even of no steps) allocated its rows and scratch rows, 60 ms for nine large variants
            # in the UI thread; a run (``_reset``) makes its own
            if self._buffer is not None:           # (released already: nothing more to let go of)
                self._history = self._buffer.history(self.variant_spec.name, 0, None, "", copy_out=True,
                                                     first_params=self._checkpoints[0].params)
            self._buffer = None
            self._done = self._total = 0
            return True
        finally:
            self.lock.release()

    @contextlib.contextmanager
    def _engine_lock(self):
        """``self.lock``, with this thread counted as waiting for it meanwhile (``run_chunked``'s pause
        is skipped then)."""
        me = threading.get_ident()
        self._wanting.add(me)
        try:
            with self.lock:
                self._wanting.discard(me)
                yield
        finally:
            self._wanting.discard(me)

    # -- replaying one iteration ------------------------------------------------------------------
    def trace_iteration(self, iteration: int) -> Trace:
        """Optimizer step ``iteration`` (0-based) node by node: restore the state before it from the
        nearest checkpoint, replay the steps in between without recording, then record that step."""
        with self._engine_lock():
            return self._trace_iteration(int(iteration))

    def trace_estimate(self, iteration: int) -> float:
        """Seconds :meth:`trace_iteration` is expected to take: the steps replayed from the nearest
        checkpoint plus the recorded one (``RECORD_STEPS`` steps' worth), and building the replay
        engine the first time (one more), at the last run's mean step time."""
        start = max((c for c in list(self._checkpoints) if c <= iteration), default=0)
        build = 1 if self._replay is None else 0
        return self.step_seconds * (max(0, iteration - start) + RECORD_STEPS + build)

    def _trace_iteration(self, iteration: int) -> Trace:
        limit = max(self._done, self.variant_spec.loop.steps)
        if not 0 <= iteration < limit:
            raise IndexError(f"iteration {iteration} is out of range (0..{limit - 1})")
        if self._diverged_at is not None and iteration > self._diverged_at:
            raise IndexError(f"iteration {iteration} is after the run diverged (at step {self._diverged_at})")
        if self._replay is None:
            self._replay = Engine(self._setup)
        engine = self._replay
        start = max(c for c in self._checkpoints if c <= iteration)
        engine.restore(self._checkpoints[start])
        with np.errstate(all="ignore"):
            for step in range(start, iteration):
                engine.step(step)
            names, params = self.param_names, engine.params
            grads_before = {n: None if p.grad is None else p.grad._data.copy() for n, p in zip(names, params)}
            params_before = {n: p._data.copy() for n, p in zip(names, params)}
            with trace.record() as rec:
                param_nodes = {n: rec.node_id(p) for n, p in zip(names, params)}
                loss = engine.step(iteration, rec=rec)
            params_after = {n: p._data.copy() for n, p in zip(names, params)}
        if len(rec.nodes) > LIMITS["max_graph_nodes"]:
            raise SessionError(f"iteration {iteration} has {len(rec.nodes)} graph nodes, more than "
                               f"{LIMITS['max_graph_nodes']}: use fewer accumulation steps")
        data = self.data
        input_nodes: dict[str, list[int]] = {}
        for nid, info in rec.nodes.items():
            if info.kind == "input" and (info.label in data.inputs or info.label == data.target_name):
                input_nodes.setdefault(info.label, []).append(nid)
        return Trace(iteration=iteration, nodes=rec.nodes, events=rec.events, param_nodes=param_nodes,
                     loss_node=rec.find(loss), grads_before=grads_before, params_before=params_before,
                     params_after=params_after, accumulation_steps=engine.accumulation_steps,
                     input_nodes=input_nodes, module_types=module_types(self._setup))

    # -- loss landscape (landscape.py) -------------------------------------------------------------
    def scalar_parameters(self) -> list[str]:
        """Every name :meth:`landscape` accepts: scalar parameters, and elements like ``0.weight[1,0]``."""
        return _landscape.scalar_parameters(self._initial)

    def landscape(self, p1: str, p2: str, n: int = 100, x_range=None, y_range=None,
                  progress=None) -> Landscape:
        """The loss on the whole data set over an ``n`` x ``n`` grid of two scalar parameters (or
        elements), the others at their initial values. Default ranges cover the recorded trajectory
        with a 25% margin and at least +-1 around the start. ``progress(done, total)`` is called
        as grid points are done; what it raises stops the computation (a cancelled job)."""
        with self._engine_lock():
            return _landscape.landscape(self._setup, self._initial, self.history, p1, p2, n, x_range, y_range,
                                        progress)


def run_all(scenario: Scenario) -> list[History]:
    """Run the main variant and every comparison; one History each, in ``scenario.variants()`` order."""
    return [Session(scenario, i).run() for i in range(len(scenario.variants()))]
