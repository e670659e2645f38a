"""Workers step aside for the UI thread (ui/run_thread.py ``breathing``): the profile hook sleeps while
the UI thread is in a turn of its event loop (not while it waits for a worker, nor for a turn longer
than TURN_S), and pauses after every slice otherwise. Driven with a fake clock and a fake UI turn
handed to the hook (nothing global is patched: other tests' workers may still be running)."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

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


def _from_worker(ui_turn) -> bool:
    seen = []
    worker = threading.Thread(target=lambda: seen.append(ui_turn.busy))
    worker.start()
    worker.join()
    return seen[0]


def test_a_ui_thread_waiting_for_a_worker_is_not_a_turn(clock, turn, qapp):
    """A join from the UI thread (tests, exports waiting for a job) is not a turn: the worker it
    waits for does not step aside for it; nor for a turn older than TURN_S."""
    ui_turn = run_thread.UI_TURN
    ui_turn.watch()
    assert threading.current_thread() is threading.main_thread()
    QtCore.QAbstractEventDispatcher.instance().awake.emit()
    with ui_turn.joining():
        assert _from_worker(ui_turn) is False
    turn.busy, turn.since = True, clock.now - run_thread.TURN_S
    calls(hook_of(turn, clock), 32)
    assert clock.sleeps == []


def test_without_proc_the_turn_is_marked_without_python(qapp, monkeypatch):
    """Where the UI thread's system call cannot be read (not Linux), the dispatcher's awake /
    aboutToBlock start and stop a marker timer through C++ connections (no Python slot, so the UI
    thread needs no GIL to mark a turn), and a worker thread reads it."""
    monkeypatch.setattr(run_thread._UiTurn, "_watch_syscalls", lambda self: None)
    ui_turn = run_thread._UiTurn()
    ui_turn.watch()
    assert ui_turn.watched and not ui_turn.reads_syscalls
    dispatcher = QtCore.QAbstractEventDispatcher.instance()
    dispatcher.awake.emit()
    assert _from_worker(ui_turn) is True
    dispatcher.aboutToBlock.emit()
    assert _from_worker(ui_turn) is False
    dispatcher.awake.emit()
    with ui_turn.joining():             # the UI thread joins a worker: no turn to step aside for
        assert _from_worker(ui_turn) is False


def _busy_reads_during(qapp, slot_ms: int, every_ms: int, run_ms: int = 600) -> list[bool]:
    """A worker reads UI_TURN.busy every ms while a real event loop runs a timer whose slot computes
    in Python for ``slot_ms`` every ``every_ms`` (no timer when ``slot_ms`` is 0)."""
    import time
    ui_turn = run_thread.UI_TURN
    ui_turn.watch()
    reads, done = [], threading.Event()

    def worker():
        while not done.is_set():
            reads.append(ui_turn.busy)
            time.sleep(0.001)

    def slot():
        end = time.perf_counter() + slot_ms / 1000
        while time.perf_counter() < end:
            pass
    timer = QtCore.QTimer()
    timer.timeout.connect(slot)
    if slot_ms:
        timer.start(every_ms)
    thread = threading.Thread(target=worker)
    thread.start()
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(run_ms, loop.quit)
    loop.exec()
    timer.stop()
    done.set()
    thread.join()
    return reads


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task/TID/syscall")
def test_a_timers_slot_is_a_turn_and_a_blocked_loop_is_not(qapp):
    """The turn a worker sees is the real one: the UI thread computing in a timer's slot is busy (the
    dispatcher's signals missed it: glib and Unix dispatchers deliver timers after aboutToBlock,
    so workers never stepped aside during one), and its loop blocked with nothing to do is idle."""
    if not run_thread.UI_TURN.reads_syscalls:
        run_thread.UI_TURN.watch()
    if not run_thread.UI_TURN.reads_syscalls:
        pytest.skip("this system's /proc does not give the UI thread's system call")
    busy = _busy_reads_during(qapp, slot_ms=40, every_ms=50)
    # 80% of the time in the slot; alone it reads 40-60% busy, 29% was seen with CI's other test
    # process on the second core; the old marker read 0%
    assert busy and sum(busy) / len(busy) > 0.15
    idle = _busy_reads_during(qapp, slot_ms=0, every_ms=0, run_ms=300)
    assert idle and sum(idle) / len(idle) < 0.1


def test_a_run_steps_aside_while_the_ui_thread_is_busy(clock, turn):
    """``step_aside`` (the run thread's pause between a step's phases) waits while the UI thread is
    in a turn, at most YIELD_S, then runs RUN_S before it waits again; it never sleeps while idle,
    nor for a turn older than TURN_S."""
    pause = run_thread.step_aside(turn, clock.perf_counter, clock.sleep)
    pause()
    assert clock.sleeps == []
    turn.busy, turn.since = True, clock.now
    pause()                                      # the turn is read at most every LOOK_S
    assert clock.sleeps == []
    clock.now += run_thread.LOOK_S
    turn.since = clock.now

    def ends_after_5_ms():
        if clock.now >= turn.since + 0.005:
            turn.busy = False
    clock.on_sleep = ends_after_5_ms
    pause()
    assert 0.005 <= sum(clock.sleeps) <= 0.006
    clock.sleeps.clear()
    clock.on_sleep = None
    turn.busy, turn.since = True, clock.now
    pause()                                      # within RUN_S of the last wait: runs on
    assert clock.sleeps == []
    clock.now += run_thread.RUN_S
    turn.since = clock.now
    pause()                                      # a long turn: waited for YIELD_S at most
    assert run_thread.YIELD_S - 0.001 <= sum(clock.sleeps) <= run_thread.YIELD_S + 0.001
    clock.sleeps.clear()
    clock.now += run_thread.RUN_S
    turn.since = clock.now - run_thread.TURN_S   # a turn this old is the UI thread waiting
    pause()
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


class QuietLoop:
    """A clock for UiThreadGC: each reading is one GC interval (plus ``late``) after the last."""

    def __init__(self, late: float = 0.0):
        self.now, self.late = 1000.0, late

    def __call__(self) -> float:
        self.now += run_thread.GC_INTERVAL_MS / 1000 + self.late
        return self.now


class FakeGC:
    """The collector's view of ``gc``: ``old`` objects in the oldest generation, ``frozen`` tenured;
    a collection of the oldest generation tenures nothing by itself, ``freeze`` does."""

    def __init__(self, old: int = 0, frozen: int = 1000):
        self.old, self.frozen_n, self.collected = old, frozen, []

    def collect(self, generation: int) -> None:
        self.collected.append(generation)

    def freeze(self) -> None:
        self.frozen_n, self.old = self.frozen_n + self.old, 0

    def unfreeze(self) -> None:
        self.frozen_n, self.old = 0, self.old + self.frozen_n
        self.collected.append("unfreeze")


def fake_collector(old: int = 0, frozen: int = 1000):
    """A UiThreadGC without its timer, ``gc`` untouched: collections go to a list (``FakeGC``)."""
    collector = run_thread.UiThreadGC.__new__(run_thread.UiThreadGC)
    fake = FakeGC(old, frozen)
    collector.threshold, collector.last_full = (700, 10, 10), 0.0
    collector.last_check, collector.on_time, collector.due_since = 1000.0, True, None
    collector.collect, collector.freeze, collector.unfreeze = fake.collect, fake.freeze, fake.unfreeze
    collector.oldest, collector.frozen = lambda: fake.old, lambda: fake.frozen_n
    collector.young_since, collector.turn = None, FakeTurnBudget()
    collector.work, collector.idle_since = 0, 1000.0
    collector.tenured = collector.major_base = frozen
    collector.major_since = None
    return collector, fake


class FakeTurnBudget:
    """``TURN`` as the collector sees it: ``start`` is not None once other work began in the turn;
    ``work`` counts the work begun."""

    def __init__(self):
        self.start, self.begun, self.work, self.tick_at = None, 0, 0, None

    def begin(self) -> None:
        self.begun += 1
        self.work += 1


def test_a_due_full_collection_waits_for_a_quiet_loop():
    """Two checks in a row on time: the loop is idle, the full collection runs then, in a turn of its
    own. While the loop is late (a turn of other work, workers holding the GIL) it waits, at most
    MAX_DEFER_S; the cheap generations are collected meanwhile."""
    collector, fake = fake_collector()
    collected = fake.collected
    clock = collector.clock = QuietLoop(late=0.03)      # each check 30 ms late: a busy loop
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)
    fake.old = 300                                      # grew by 30%: a full collection is due
    for _ in range(5):
        collector.check()
    assert collected == [1] * 5 and collector.due_since is not None
    collector.counts = lambda: (0, 0, 0)
    clock.late = 0.0
    collector.check()                                   # on time once: not yet
    assert collected == [1] * 5
    collector.check()                                   # twice in a row: quiet
    assert collected == [1] * 5 + [2] and collector.due_since is None and fake.frozen_n == 1300
    fake.old = 700                                      # due again (after FULL_GC_S), the loop stays busy
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)
    clock.late = 0.03
    clock.now += run_thread.FULL_GC_S
    collector.check()
    assert collected[-1] == 1 and collector.due_since is not None
    clock.now += run_thread.MAX_DEFER_S
    collector.check()                                   # waited long enough: it runs anyway
    assert collected[-1] == 2 and collector.due_since is None


def test_a_middle_generation_collection_waits_for_a_turn_with_no_work_yet():
    """Playing the largest expression, a collection of the middle generation (10-34 ms) ran in the same
    turn as the player's tick and the graph's text slice: gaps of 44-57 ms. It waits for a check that
    comes first in its turn (at most MAX_YOUNG_DEFER_S; the youngest generation is collected meanwhile),
    and then begins the turn's budget, so that the work after it waits for the next turn."""
    collector, fake = fake_collector()
    collected = fake.collected
    clock = collector.clock = QuietLoop()
    collector.counts = lambda: (701, 11, 0)             # the middle generation is due
    collector.turn.start = 123.0                        # the player's tick ran in this turn
    collector.check()
    collector.check()
    assert collected == [0, 0] and collector.turn.begun == 0
    collector.turn.start = None                         # a turn with nothing done yet
    collector.check()
    assert collected == [0, 0, 1] and collector.turn.begun == 1 and collector.young_since is None
    collector.turn.start = 123.0                        # busy turns only: it waits at most MAX_YOUNG_DEFER_S
    checks = 0
    while collected[-1] != 1 or checks == 0:
        collector.check()
        checks += 1
    waited = run_thread.MAX_YOUNG_DEFER_S * 1000 / run_thread.GC_INTERVAL_MS
    assert checks == round(waited) + 1
    assert collector.turn.begun == 2
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)   # a due full collection waits for a free turn too
    clock.now += run_thread.FULL_GC_S
    fake.old = 1000
    for _ in range(3):
        collector.check()
    assert collected[-3:] == [0, 0, 0] and collector.due_since is not None
    collector.turn.start = None
    collector.check()
    assert collected[-1] == 2 and collector.due_since is None


def test_the_ui_threads_collector_collects_the_oldest_generation_once_it_grew_by_a_quarter(monkeypatch):
    """CPython's own rule for a full collection: the largest expression left 70,000 objects in the
    oldest generation, and a full collection every FULL_GC_S took 23-40 ms of a turn while the user
    played, though almost nothing new had survived. Collections go to a fake (nothing global)."""
    collector, fake = fake_collector()
    collected = fake.collected
    collector.clock = QuietLoop()                       # every check on time
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)            # every generation over its threshold
    fake.old = 200                                      # grew by a fifth: the middle generation only
    collector.check()
    assert collected == [1]
    collector.last_full = 0.0
    fake.old = 300                                      # by 30%: the oldest too, and the survivors tenured
    collector.check()
    assert collected == [1, 2] and fake.frozen_n == 1300 and fake.old == 0
    fake.old = 5000                                     # at most one full collection per FULL_GC_S
    collector.check()
    assert collected == [1, 2, 1]
    collector.counts = lambda: (100, 0, 0)              # under the thresholds: nothing
    collector.check()
    assert collected == [1, 2, 1]


def test_survivors_of_a_full_collection_are_tenured_and_a_large_backlog_is_tenured_unwalked():
    """A full collection walks only what survived since the last one: at the graph-size limit with
    every module open, walking every object took 65-85 ms (200-330 ms with four iterations' frames).
    Its survivors are tenured (frozen). More than SCAN_MAX objects to walk, old (a large graph just
    built) or young (a script's result just unpickled: 198,000), are tenured without the walk."""
    collector, fake = fake_collector(frozen=100_000)
    collector.clock = QuietLoop()
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)
    fake.old = 20_000                                   # a fifth of the tenured: not due
    collector.check()
    assert fake.collected == [1] and collector.due_since is None
    collector.last_full = 0.0
    fake.old = 30_000                                   # 30 %: due, and run at once (the loop is quiet)
    collector.check()
    assert fake.collected == [1, 2] and (fake.old, fake.frozen_n) == (0, 130_000)
    assert collector.tenured >= 130_000 and collector.turn.begun == 2        # (an estimate)
    collector.last_full = 0.0
    fake.old = run_thread.SCAN_MAX + 10_000             # too many to walk: tenured as they are
    collector.check()
    assert fake.collected == [1, 2] and fake.old == 0 and fake.frozen_n == 190_000
    collector.counts = lambda: (run_thread.SCAN_MAX + 1, 0, 0)     # a large batch of young objects
    fake.old = 5                                        # (the fake counts them with the old ones)
    collector.check()
    assert fake.collected == [1, 2] and fake.old == 0 and collector.turn.begun == 4
    assert collector.major_since is None                # no growth that calls for a walk of everything


def test_a_major_collection_waits_for_an_idle_loop_and_collects_the_tenured_objects_too():
    """A major collection (every object walked: 70-190 ms at the limits) is a safeguard against cycles
    of tenured objects left as garbage: it comes once the tenured objects doubled since the last one
    (and grew by MAJOR_MIN_GROWTH), in a loop idle for MAJOR_IDLE_S: no deferred work, no player's
    tick, every check on time. Whatever the loop does, it comes MAJOR_MAX_DEFER_S after it was due."""
    collector, fake = fake_collector(frozen=100_000)
    clock = collector.clock = QuietLoop()
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)
    fake.old = 150_000                                  # grew by 150 %, not by MAJOR_MIN_GROWTH: no major
    collector.check()
    assert fake.frozen_n == 250_000 and collector.major_since is None
    collector.last_full = 0.0
    fake.old = run_thread.MAJOR_MIN_GROWTH              # now both
    collector.check()
    assert collector.major_since is not None and "unfreeze" not in fake.collected
    collector.counts = lambda: (0, 0, 0)
    checks = round(run_thread.MAJOR_IDLE_S * 1000 / run_thread.GC_INTERVAL_MS)
    for k in range(3 * checks):                         # work in every other turn: never idle
        if k % 2:
            collector.turn.work += 1
        collector.check()
    collector.turn.tick_at = 5.0                        # playing: never idle either
    for _ in range(2 * checks):
        collector.check()
    assert "unfreeze" not in fake.collected
    collector.turn.tick_at = None                       # paused; a late check restarts the wait
    clock.late = 0.03
    collector.check()
    clock.late = 0.0
    for _ in range(checks - 1):
        collector.check()
    assert "unfreeze" not in fake.collected
    collector.check()
    total = 250_000 + run_thread.MAJOR_MIN_GROWTH
    assert fake.collected[-2:] == ["unfreeze", 2] and fake.old == 0 and fake.frozen_n == total
    assert collector.major_since is None and collector.major_base == total
    collector.counts = lambda: (701, 11, run_thread.FULL_AFTER + 1)
    collector.last_full, fake.old = 0.0, 2 * total     # tripled: due again, and the loop stays busy
    collector.check()
    assert collector.major_since is not None
    collector.counts = lambda: (0, 0, 0)
    for _ in range(5):
        collector.turn.work += 1
        collector.check()
    assert fake.collected.count("unfreeze") == 1
    clock.now += run_thread.MAJOR_MAX_DEFER_S
    collector.turn.work += 1
    collector.check()                                   # due too long: it runs anyway
    assert fake.collected[-2:] == ["unfreeze", 2] and collector.major_since is None


TENURE = """
import gc, sys, weakref
from PySide6 import QtCore
app = QtCore.QCoreApplication([])
from ui import run_thread
collector = run_thread.UiThreadGC()
class Node:
    pass
def ring():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a
kept = [ring() for _ in range(2000)]
alive = weakref.ref(kept[0])
before = gc.get_freeze_count()
collector._tenure(0.0, gc.get_count()[0])
assert gc.get_freeze_count() >= before + 4000 and not gc.get_objects(2), gc.get_freeze_count()
assert abs(collector.tenured - gc.get_freeze_count()) < 0.05 * gc.get_freeze_count()
del kept                                           # 2,000 cycles of tenured objects become garbage
gc.collect()
assert alive() is not None                         # a full collection does not walk them ...
collector._major(1.0)
assert alive() is None, "a major collection frees them"
assert collector.tenured == collector.major_base == gc.get_freeze_count()
print("ok")
"""


def test_tenured_objects_are_out_of_full_collections_and_their_garbage_is_freed_by_a_major_one():
    """With the real ``gc``, in a process of its own (it freezes and unfreezes every object)."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", TENURE], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(root)})
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own niceness is Linux's")
def test_workers_compute_at_a_lower_priority_than_the_ui_thread():
    """A worker thread (runs, traces, loads) has a higher niceness than the UI thread, which keeps
    its own: on two cores the UI thread otherwise waited on the run queue behind the run thread."""
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    workers = run_thread.Workers(max_idle=1)
    seen = []
    done = threading.Event()
    workers.submit(lambda: (seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())), done.set()),
                   "probe")
    assert done.wait(10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before      # the UI thread's own
    assert seen == [max(before, run_thread.WORKER_NICE)]


def test_workers_reuse_idle_threads_and_never_queue_a_job_behind_another(monkeypatch):
    """Starting a thread waits until it runs (it needs the GIL): 28 ms of the UI thread's turn while
    a worker computed. Finished threads wait for the next target instead; a job that comes while
    all are busy gets a new thread, never a place in a queue behind a long run."""
    workers = run_thread.Workers(max_idle=2)
    release = threading.Event()
    long_started, done = threading.Event(), []
    workers.submit(lambda: (long_started.set(), release.wait(10)), "long run")
    assert long_started.wait(10)
    for i in range(3):                                  # one after another: the same idle thread
        finished = threading.Event()
        workers.submit(lambda i=i, finished=finished: (done.append(i), finished.set()), "job")
        assert finished.wait(10), "a job waited behind the long run"
        deadline = time.monotonic() + 10
        while workers._idle < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    assert done == [0, 1, 2] and workers.started == 2
    starts = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: starts.append(self))
    finished = threading.Event()
    workers.submit(finished.set, "job")                # an idle thread takes it: nothing started
    assert finished.wait(10) and starts == []
    monkeypatch.undo()
    release.set()


PRELOAD = """
import sys, time
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, sys.argv[2])
from ui.dialogs import settings
from ui.welcome import SEEN_KEY
settings().setValue(SEEN_KEY, True)
B = QtWidgets.QMessageBox.StandardButton
QtWidgets.QMessageBox.question = staticmethod(lambda *a, **k: B.Yes)     # "Run this script?"
from ui.app import make_window
assert "gradviz.training.script" not in sys.modules
window = make_window()
window.show()
before = set(sys.modules)
window.open_path(sys.argv[1], confirm=False)
end = time.monotonic() + 60
def ran():
    sessions = window.document.sessions
    return type(sessions[0]).__name__ if sessions else None
while time.monotonic() < end and ran() != "ScriptRun":
    app.processEvents()
    time.sleep(0.01)
late = sorted(m for m in set(sys.modules) - before if m.startswith(("gradviz", "ui")))
print("ran:", ran(), "late:", late)
window.document.modified = False
"""


def test_opening_a_script_imports_nothing_with_the_window_up(tmp_path):
    """The modules that run a script are imported while the window is built: compiling them on the
    first script's open (23 ms where no .pyc is written) stalled the window (issue 12)."""
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "lesson.py"
    script.write_text("import torch\nw = torch.tensor(1.0, requires_grad=True)\nprint(w * 2)\n")
    out = subprocess.run([sys.executable, "-c", PRELOAD, str(script), str(tmp_path)], cwd=root, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen",
                                                      "PYTHONPATH": str(root), "HOME": str(tmp_path)})
    assert out.stdout.strip().endswith("ran: ScriptRun late: []"), out.stdout + out.stderr
