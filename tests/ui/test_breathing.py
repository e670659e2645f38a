"""Workers step aside for the UI thread (ui/run_thread.py ``breathing``): the profile hook sleeps while
the UI thread is in a turn of its event loop (not while it waits for a worker, nor for a turn longer
than TURN_S), and pauses after every slice otherwise. Driven with a fake clock and a fake UI turn
handed to the hook (nothing global is patched: other tests' workers may still be running)."""
import sys
import threading

import pytest
from PySide6 import QtCore

from ui import run_thread


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()

    on_sleep = None


class FakeTurn:
    busy = False
    since = 0.0


@pytest.fixture
def clock():
    return FakeTime()


@pytest.fixture
def turn():
    return FakeTurn()


def hook_of(turn, clock):
    return run_thread.breather_hook(turn, clock.perf_counter, clock.sleep)


def calls(hook, n: int) -> None:
    for _ in range(n):
        hook(None, "call", None)


def test_a_worker_pauses_after_each_slice_while_the_ui_thread_is_idle(clock, turn):
    hook = hook_of(turn, clock)
    calls(hook, 320)
    assert clock.sleeps == []                            # within its slice: no pause
    clock.now += run_thread.SLICE_S
    calls(hook, 32)
    assert clock.sleeps == [run_thread.PAUSE_S]


def test_a_worker_waits_while_the_ui_thread_is_in_a_turn(clock, turn):
    hook = hook_of(turn, clock)
    turn.busy, turn.since = True, clock.now
    ends_after = 5                                       # the turn ends after 5 ms of the worker waiting

    def the_turn_goes_on():
        if len(clock.sleeps) >= ends_after:
            turn.busy = False
    clock.on_sleep = the_turn_goes_on
    calls(hook, 32)
    assert clock.sleeps == [0.001] * ends_after          # slept until the turn ended, not longer


def test_a_long_turn_is_waited_for_at_most_yield_s_then_the_worker_runs(clock, turn):
    hook = hook_of(turn, clock)
    turn.busy, turn.since = True, clock.now
    calls(hook, 32)
    waited = sum(clock.sleeps)
    assert waited == pytest.approx(run_thread.YIELD_S, abs=0.0015)
    clock.sleeps.clear()
    calls(hook, 32)                                      # its RUN_S: no wait yet
    assert clock.sleeps == []


def test_a_ui_thread_waiting_for_a_worker_is_not_a_turn(clock, turn, qapp):
    """A join from the UI thread (tests, exports waiting for a job) clears the turn: the worker it
    waits for does not step aside for it; nor for a turn older than TURN_S."""
    ui_turn = run_thread.UI_TURN
    ui_turn.watch()
    assert threading.current_thread() is threading.main_thread()
    QtCore.QAbstractEventDispatcher.instance().awake.emit()
    assert ui_turn.busy is True
    ui_turn.waiting()
    assert ui_turn.busy is False
    turn.busy, turn.since = True, clock.now - run_thread.TURN_S
    calls(hook_of(turn, clock), 32)
    assert clock.sleeps == []


def test_the_turn_is_marked_without_python(qapp):
    """The dispatcher's awake / aboutToBlock start and stop a marker timer through C++ connections
    (no Python slot, so the UI thread needs no GIL to mark a turn), and a worker thread reads it."""
    ui_turn = run_thread.UI_TURN
    ui_turn.watch()
    assert ui_turn.watched
    dispatcher = QtCore.QAbstractEventDispatcher.instance()

    def from_worker():
        seen = []
        worker = threading.Thread(target=lambda: seen.append(ui_turn.busy))
        worker.start()
        worker.join()
        return seen[0]
    dispatcher.awake.emit()
    assert from_worker() is True
    dispatcher.aboutToBlock.emit()
    assert from_worker() is False
    dispatcher.awake.emit()
    ui_turn.waiting()                   # the UI thread joins a worker: no turn to step aside for
    assert from_worker() is False


def test_breathing_installs_the_hook_in_its_thread_only_and_removes_it():
    seen = {}

    def work(x):
        seen["inside"] = sys.getprofile()
        return x * 2

    before = sys.getprofile()
    assert run_thread.breathing(work)(21) == 42
    assert seen["inside"] is not None and seen["inside"] is not before
    assert sys.getprofile() is before


def test_every_job_runs_breathing():
    job = run_thread.Job(lambda progress: sys.getprofile() is not None)
    assert job.join(10) and job.result is True
