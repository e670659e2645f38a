"""One time budget per turn of the event loop, shared by the window's deferred work.

The window's deferred work comes in slices, each kind with a budget of its own: the text of graph
boxes (``graph/details.py``, 10 ms), the dashboards' jobs (``dashboards/panel.Slices``, 15 ms). When
several came due in the same turn, their slices added up, and with the player's tick and the paint
that followed, one turn took 50-60 ms while playing the largest expression (issue 12: an event log
of its longest turns showed one or two slices of 4-15 ms before the tick's 12-28 ms).

``TURN.deadline(slice_s)`` gives a slice's end: ``slice_s`` from now, but no later than ``TURN_S``
after the turn's first work began (or ``slice_s``, if that is longer: a test's or an export's "all
at once"). Work that cannot be sliced (the player's tick) calls ``TURN.begin()`` first, so that the
slices after it in the same turn get what is left. A deadline may be past already: a job then does
the least it promises (one box, one step) and leaves the rest to the next turns.

A turn ends when the loop comes back: a zero-interval timer started with the turn's first work fires
in the loop's next pass, after this one's timers and posted events (paints among them). Outside an
event loop (``QThread.loopLevel() == 0``: a test or a script driving the window with direct calls
and ``processEvents``) there are no turns to share: each slice gets its own ``slice_s``, as before.
A turn seen to go on for longer than ``STALE_S`` (its timer never fired) starts anew.
"""
from __future__ import annotations

import time

TURN_S = 0.008           # deferred work per turn, all kinds together (12 ms: playing the most
                         # micro-batches file had 12 gaps over 40 ms in six plays; 8 ms: none)
STALE_S = 0.5            # a "turn" older than this is a new one (the end-of-turn timer did not fire)


class TurnBudget:
    def __init__(self, clock=time.perf_counter, in_loop=None):
        self._clock = clock
        self._in_loop = in_loop or _in_event_loop
        self.start: float | None = None              # when this turn's first work began
        self._timer = None

    def begin(self) -> float:
        """Mark that this turn's work has begun (no later than now); -> when it began."""
        now = self._clock()
        if not self._in_loop():
            self.start = None
            return now
        if self.start is None or now - self.start > STALE_S:
            self.start = now
            self._arm()
        return self.start

    def deadline(self, slice_s: float) -> float:
        """The end (``clock`` time) of a slice of at most ``slice_s`` within this turn's budget."""
        start = self.begin()
        return min(self._clock() + slice_s, start + max(TURN_S, slice_s))

    def end_turn(self) -> None:
        self.start = None

    def _arm(self) -> None:
        if self._timer is None:
            try:
                from PySide6 import QtCore, QtWidgets
            except ImportError:                       # (no Qt: turns end by age alone)
                return
            app = QtWidgets.QApplication.instance()
            if app is None:
                return
            self._timer = QtCore.QTimer(app)
            self._timer.setSingleShot(True)
            self._timer.setInterval(0)
            self._timer.timeout.connect(self.end_turn)
        self._timer.start()


def _in_event_loop() -> bool:
    try:
        from PySide6 import QtCore
    except ImportError:
        return False
    return QtCore.QThread.currentThread().loopLevel() > 0


TURN = TurnBudget()
