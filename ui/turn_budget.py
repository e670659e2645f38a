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

Work that cannot be sliced may also be about to come: the player's tick (``tick_at``, when its timer
fires). A slice ends when the tick is due, or after ``BEFORE_TICK_S`` if it is due already: a 0-ms
slice timer started in the last pass of the loop fires before the tick, and the tick, due during the
slice, right after it. Playing the largest expression, a text slice of 3-7 ms came before each tick
of 11-20 ms that way, and that turn and its paint made the longest gaps (40-55 ms).

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
BEFORE_TICK_S = 0.002    # a slice when the player's tick is due already
TICK_DUE_S = 0.001       # the tick counts as due in this pass from this long before its time
TICK_LATE_S = 0.1        # ... and until this long after (then the player is gone or paused: ignored)


class TurnBudget:
    def __init__(self, clock=time.perf_counter, in_loop=None):
        self._clock = clock
        self._in_loop = in_loop or _in_event_loop
        self.start: float | None = None              # when this turn's first work began
        self.tick_at: float | None = None            # when the player's next tick fires (None: not playing)
        self.work = 0                                # calls of ``begin`` so far (UiThreadGC: is the loop idle?)
        self._timer = None

    def begin(self) -> float:
        """Mark that this turn's work has begun (no later than now); -> when it began."""
        now = self._clock()
        self.work += 1
        if not self._in_loop():
            self.start = None
            return now
        if self.start is None or now - self.start > STALE_S:
            self.start = now
            self._arm()
        return self.start

    def deadline(self, slice_s: float) -> float:
        """The end (``clock`` time) of a slice of at most ``slice_s`` within this turn's budget, and no
        later than the player's next tick (``BEFORE_TICK_S`` from now if the tick is due already)."""
        start = self.begin()
        now = self._clock()
        end = min(now + slice_s, start + max(TURN_S, slice_s))
        tick = self.tick_at
        if self.start is not None and tick is not None and tick >= now - TICK_LATE_S:
            end = min(end, max(tick, now + BEFORE_TICK_S))      # over by the tick's time
        return end

    def tick_due(self, now: float | None = None) -> bool:
        """The player's tick comes in this pass of the loop (it is due, and not long overdue)."""
        tick = self.tick_at
        if tick is None:
            return False
        now = self._clock() if now is None else now
        return now - TICK_LATE_S <= tick <= now + TICK_DUE_S

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
