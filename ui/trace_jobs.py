"""Traces that take long to replay are replayed off the UI thread.

``TraceJobs.get(session, k)`` returns the trace of iteration ``k`` at once when the Session expects
it to be quick (``Session.trace_estimate`` under ``SYNC_S``: every bundled lesson), else starts a
``Job`` (ui/run_thread.py) and returns None; ``ready`` is emitted once the trace is there, and the
next ``get`` for the same iteration returns it (or raises what the replay raised), and ``replay_of``
its ``Replay``, made in the worker too, with its keyframes (so that a jump on the timeline walks at
most ``Replay.KEYFRAME_EVERY`` events). Asking for
another iteration first drops the job in progress (its result is not wanted). The window shows
"Replaying iteration k…" meanwhile (``started``/``ended``).
"""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from gradviz.view.replay import Replay

from .graph import text
from .run_thread import JobSlot

SYNC_S = 0.03        # a trace expected to take less than this is replayed on the UI thread
POLL_MS = 15         # how often the UI thread looks whether the job has ended


def replay(session, k: int):
    """``session.trace_iteration(k)`` with the means of its large arrays worked out too (the graph's
    boxes show them; ``graph.text.mean_number`` keeps them), so that showing the trace costs the UI
    thread no pass over a 100,000 x 256 activation."""
    trace = session.trace_iteration(k)
    for event in trace.events:
        for value in vars(event).values():
            for a in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(a, np.ndarray) and a.size >= text.MEAN_CACHED_FROM:
                    text.mean_number(a)
    made = Replay(trace)             # (22-34 ms of the UI thread's turn on the largest expression)
    made.make_keyframes()            # (a jump to the end of a 3,001-event trace: 75-81 ms of a turn)
    return trace, made


class TraceJobs(QtCore.QObject):
    ready = QtCore.Signal()          # a trace replayed in a worker is there: ask again
    started = QtCore.Signal(int)     # iteration being replayed in a worker
    ended = QtCore.Signal()          # ... no longer (ready, dropped or failed)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._slot = JobSlot(self, self._ended, POLL_MS)
        self._result: tuple | None = None      # (session, k, trace or exception)
        self._built: tuple | None = None       # (trace, its Replay) made in the worker

    @property
    def busy(self) -> bool:
        return self._slot.running()

    def get(self, session, k: int):
        """The trace of iteration ``k`` of ``session`` now, or None while a worker replays it."""
        if self._result is not None and self._result[0] is session and self._result[1] == k:
            result = self._result[2]
            self._result = None
            if isinstance(result, BaseException):
                raise result
            return result
        estimate = getattr(session, "trace_estimate", None)
        if estimate is None or estimate(k) < SYNC_S:
            self.drop()
            return session.trace_iteration(k)
        if self._slot.running((session, k)):
            return None
        self.drop()
        self._slot.start(lambda _progress: replay(session, k), (session, k))
        self.started.emit(k)
        return None

    def replay_of(self, trace) -> Replay:
        """The Replay of ``trace`` (from ``get``): the one the worker made with it, else made now."""
        built, self._built = self._built, None
        return built[1] if built is not None and built[0] is trace else Replay(trace)

    def drop(self) -> None:
        """Forget the job in progress (it finishes in its thread; nothing reads its result)."""
        if self._slot.running():
            self._slot.drop()
            self.ended.emit()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the job in progress has ended and deliver it (tests, exports)."""
        self._slot.wait(timeout)

    def _ended(self, job) -> None:
        session, k = job.key
        if job.exception is not None:
            self._result = (session, k, job.exception)
        else:
            self._result = (session, k, job.result[0])
            self._built = job.result
        self.ended.emit()
        self.ready.emit()
