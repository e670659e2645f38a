"""The Player: a QTimer-driven cursor over a Replay's frames.

Views subscribe to ``positionChanged`` and read ``player.frame``; they never move the cursor except
through these methods.  Which iteration is shown is the ViewState's; the main window asks the
Session for its Trace and calls ``set_replay``; ``iterationEndReached`` tells it that playing ran
off the end.
"""
from __future__ import annotations

import time

from PySide6 import QtCore

from ui.turn_budget import TURN

MIN_INTERVAL_MS = 16                 # at most ~60 ticks a second; faster speeds skip frames per tick
MIN_TURN_MS = 4                      # at least this long between two ticks: the window repaints between
MAX_CATCH_UP = 3                     # a late tick moves on by at most this many ticks' frames more


class Player(QtCore.QObject):
    positionChanged = QtCore.Signal(int)
    replayChanged = QtCore.Signal()
    playingChanged = QtCore.Signal(bool)
    speedChanged = QtCore.Signal(float)
    iterationEndReached = QtCore.Signal()

    def __init__(self, replay=None, parent: QtCore.QObject | None = None, events_per_second: float = 2.0):
        super().__init__(parent)
        self._replay = None
        self._position = 0
        self._speed = float(events_per_second)
        self._playing = False
        self._due = 0.0                      # when the next tick is meant to come (perf_counter)
        self._interval = 0.0                 # seconds between two ticks at this speed
        self._timer = QtCore.QTimer(self)    # one shot, started again once a tick is done (``_tick``)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._apply_speed()
        if replay is not None:
            self.set_replay(replay)

    # -- state ----------------------------------------------------------------------------------
    @property
    def replay(self):
        return self._replay

    @property
    def position(self) -> int:
        return self._position

    @property
    def count(self) -> int:
        """Number of cursor positions (events + 1); 0 without a replay."""
        return len(self._replay) if self._replay is not None else 0

    @property
    def frame(self):
        """The Frame at the cursor, or None without a replay."""
        return self._replay.frame(self._position) if self._replay is not None else None

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def at_end(self) -> bool:
        return self._replay is not None and self._position >= self.count - 1

    # -- replay ---------------------------------------------------------------------------------
    def set_replay(self, replay, position: int = 0) -> None:
        """Show another Replay (e.g. the next iteration).  Playing continues if it was on."""
        TURN.begin()                          # (as a tick: the views' slices get what the turn has left)
        self._replay = replay
        self._position = max(0, min(position, self.count - 1)) if replay is not None else 0
        self.replayChanged.emit()
        self.positionChanged.emit(self._position)

    # -- transport ------------------------------------------------------------------------------
    @QtCore.Slot()
    def play(self) -> None:
        if self._replay is None or self.playing:
            return
        if self.at_end:                      # play again from the start, like a media player
            self.seek(0)
        self._playing = True
        self._due = time.perf_counter() + self._interval
        self._start_timer(round(self._interval * 1000))
        self.playingChanged.emit(True)

    @QtCore.Slot()
    def pause(self) -> None:
        if self.playing:
            self._playing = False
            self._timer.stop()
            TURN.tick_at = None
            self.playingChanged.emit(False)

    @QtCore.Slot()
    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    @QtCore.Slot(int)
    def seek(self, i: int) -> None:
        if self._replay is None:
            return
        i = max(0, min(int(i), self.count - 1))
        if i != self._position:
            self._position = i
            self.positionChanged.emit(i)

    @QtCore.Slot()
    def step_forward(self) -> None:
        self.seek(self._position + 1)

    @QtCore.Slot()
    def step_back(self) -> None:
        self.seek(self._position - 1)

    @QtCore.Slot()
    def next_phase(self) -> None:
        if self._replay is not None:
            self.seek(self._replay.next_phase_position(self._position))

    @QtCore.Slot()
    def prev_phase(self) -> None:
        if self._replay is not None:
            self.seek(self._replay.prev_phase_position(self._position))

    @QtCore.Slot()
    def to_start(self) -> None:
        self.seek(0)

    @QtCore.Slot()
    def to_end(self) -> None:
        self.seek(self.count - 1)

    @QtCore.Slot(float)
    def set_speed(self, events_per_second: float) -> None:
        if events_per_second <= 0:
            raise ValueError(f"speed must be positive, got {events_per_second}")
        self._speed = float(events_per_second)
        self._apply_speed()
        self.speedChanged.emit(self._speed)

    # -- timer ----------------------------------------------------------------------------------
    def _apply_speed(self) -> None:
        interval = 1000.0 / self._speed
        self._per_tick = max(1, round(MIN_INTERVAL_MS / interval)) if interval < MIN_INTERVAL_MS else 1
        self._timer.setInterval(max(1, round(interval * self._per_tick)))
        self._interval = self._timer.interval() / 1000

    def _tick(self) -> None:
        """One tick's frames. Ticks keep the speed's cadence, but the next one is at least
        ``MIN_TURN_MS`` after this one is done, so the window repaints between two seeks: with a
        repeating timer, a seek that took longer than the interval (the largest graphs) had the next
        one due at once, and two ran in one turn of the loop. A tick late by whole intervals moves on
        by their frames too (at most ``MAX_CATCH_UP`` more), so playing keeps its pace."""
        if self._replay is None or not self._playing:
            self.pause()
            return
        TURN.begin()                          # the slices after the tick get what this turn has left
        TURN.tick_at = None                   # (this tick is here: its own slices are not cut short)
        interval = self._interval
        behind = min(int(max(0.0, time.perf_counter() - self._due) / interval), MAX_CATCH_UP)
        self.seek(self._position + self._per_tick * (1 + behind))
        if self.at_end:
            self.pause()
            self.iterationEndReached.emit()
        elif self._playing:                   # (a slot of positionChanged may have paused it)
            now = time.perf_counter()
            self._due = max(self._due + interval * (1 + behind), now - interval)   # (after a stall: anew)
            self._start_timer(max(MIN_TURN_MS, round((self._due - now) * 1000)))

    def _start_timer(self, ms: int) -> None:
        """The next tick in ``ms``; the turn budget knows when, so that slices due in the same pass of
        the loop make room for it (``TURN.tick_at``)."""
        self._timer.start(ms)
        TURN.tick_at = time.perf_counter() + ms / 1000
