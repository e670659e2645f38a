"""Workers step aside for the UI thread (ui/run_thread.py ``breathing``): the profile hook sleeps while
the UI thread is in a turn of its event loop (not while it waits for a worker, nor for a turn longer
than TURN_S), and pauses after every slice otherwise. Driven with a fake clock: no timing."""
import sys
import threading

import pytest

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


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(run_thread, "time", fake)
    monkeypatch.setattr(run_thread._UiTurn, "busy", False)
    monkeypatch.setattr(run_thread._UiTurn, "since", 0.0)
    return fake


def calls(hook, n: int) -> None:
    for _ in range(n):
        hook(None, "call", None)


def test_a_worker_pauses_after_each_slice_while_the_ui_thread_is_idle(clock):
    hook = run_thread.breather_hook()
    calls(hook, 320)
    assert clock.sleeps == []                            # within its slice: no pause
    clock.now += run_thread.SLICE_S
    calls(hook, 32)
    assert clock.sleeps == [run_thread.PAUSE_S]


def test_a_worker_waits_while_the_ui_thread_is_in_a_turn(clock):
    hook = run_thread.breather_hook()
    run_thread._UiTurn.busy, run_thread._UiTurn.since = True, clock.now
    ends_after = 5                                       # the turn ends after 5 ms of the worker waiting

    def turn():
        if len(clock.sleeps) >= ends_after:
            run_thread._UiTurn.busy = False
    clock.on_sleep = turn
    calls(hook, 32)
    assert clock.sleeps == [0.001] * ends_after          # slept until the turn ended, not longer


def test_a_long_turn_is_waited_for_at_most_yield_s_then_the_worker_runs(clock):
    hook = run_thread.breather_hook()
    run_thread._UiTurn.busy, run_thread._UiTurn.since = True, clock.now
    calls(hook, 32)
    waited = sum(clock.sleeps)
    assert waited == pytest.approx(run_thread.YIELD_S, abs=0.0015)
    clock.sleeps.clear()
    calls(hook, 32)                                      # its RUN_S: no wait yet
    assert clock.sleeps == []


def test_a_ui_thread_waiting_for_a_worker_is_not_a_turn(clock):
    """A join from the UI thread (tests, exports waiting for a job) clears the turn: the worker it
    waits for does not step aside for it."""
    run_thread._UiTurn.busy, run_thread._UiTurn.since = True, clock.now
    assert threading.current_thread() is threading.main_thread()
    run_thread._UiTurn.waiting()
    hook = run_thread.breather_hook()
    calls(hook, 32)
    assert clock.sleeps == []
    run_thread._UiTurn.busy, run_thread._UiTurn.since = True, clock.now - run_thread.TURN_S
    calls(hook, 32)                                      # a turn over TURN_S old: not waited for
    assert clock.sleeps == []


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
