"""A run never blocks the window (issue 12): a 2-256-256-1 MLP on many moons runs in a worker thread
while the event loop keeps turning; Run ▸ Cancel, an edit and closing the window stop it promptly.

No assertion on wall-clock time (the machine may be loaded): the event loop is checked by counting
the ticks of a 5 ms timer while the run goes on, against the number of steps (one step of this
model takes far longer than a tick, so a window blocked while a step computes would tick about
once per step). The longest gap between ticks is printed (``-s`` shows it).
"""
from __future__ import annotations

import threading
import time

import numpy as np
from PySide6 import QtCore

from ui.run_thread import RunThread

RUN_TIMEOUT_MS = 240_000

BIG = """\
[scenario]
title = "Big MLP"
seed = 0

[model]
layers = [2, 256, 256, 1]
activation = "tanh"

[data]
kind = "moons"
n = {n}
noise = 0.1

[loss]
kind = "bce_with_logits"

[optimizer]
kind = "adam"
lr = 0.01

[loop]
steps = {steps}
"""


def big_scenario(tmp_path, steps: int, n: int = 50_000):
    path = tmp_path / "big_mlp.toml"
    path.write_text(BIG.format(n=n, steps=steps))
    return path


class Ticker(QtCore.QObject):
    """A 5 ms timer counting its ticks and the longest gap between two of them (``running``: between
    two ticks that both saw the document running, i.e. not counting what its end triggers)."""

    def __init__(self, document=None):
        super().__init__()
        self.document = document
        self.ticks, self.longest, self.running, self._last = 0, 0.0, 0.0, None
        self._was_running = False
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        running = self.document is not None and self.document.running
        self.longest = max(self.longest, now - self._last)
        if running and self._was_running:
            self.running = max(self.running, now - self._last)
        self._last, self._was_running = now, running
        self.ticks += 1


def started(window, qtbot, path) -> RunThread:
    """Open ``path`` and wait until its run has done a step (the Sessions are built)."""
    window.open_path(path, confirm=False)
    doc = window.document
    assert doc.running
    job = doc._job
    qtbot.waitUntil(lambda: bool(doc.sessions) and job.done > 0, timeout=RUN_TIMEOUT_MS)
    return job


def test_a_large_run_keeps_the_event_loop_turning(qtbot, make_window, tmp_path):
    steps = 8
    window = make_window()
    doc = window.document
    progress: list[int] = []
    doc.runProgress.connect(lambda done, _total: progress.append(done))
    ticker = Ticker(doc)
    ticker.start()
    window.open_path(big_scenario(tmp_path, steps), confirm=False)
    assert doc.running
    qtbot.waitUntil(window.progress.isVisible)          # once the worker has built the runs
    start_ticks = ticker.ticks
    qtbot.waitUntil(lambda: not doc.running, timeout=RUN_TIMEOUT_MS)
    ticks = ticker.ticks - start_ticks
    ticker.timer.stop()
    print(f"\nlongest event-loop gap while running: {ticker.running * 1000:.1f} ms over {ticks} ticks; "
          f"overall (opening, the end's trace and Data view on the UI thread): {ticker.longest * 1000:.1f} ms")
    history = doc.sessions[0].history
    assert history.steps == steps and history.message == ""
    assert progress and progress[-1] == steps
    assert ticks >= 5 * steps, f"the event loop turned {ticks} times during {steps} steps"
    qtbot.waitUntil(lambda: window.replay is not None, timeout=RUN_TIMEOUT_MS)   # replayed in a worker


def test_histories_read_during_the_run_hold_only_finished_rows(qtbot, make_window, tmp_path):
    """The dashboards read ``document.histories`` while the worker appends: every snapshot is
    complete (finite rows, params one row longer) and the step count only grows."""
    window = make_window()
    doc = window.document
    job = started(window, qtbot, big_scenario(tmp_path, steps=6, n=20_000))
    seen = []
    while not job.ended.is_set():
        h = doc.histories[0]
        assert len(h.loss) == h.steps and len(h.params["0.weight"]) == h.steps + 1
        assert all(len(g) == h.steps for g in h.grads.values())
        assert all(len(a) == h.steps for state in h.state.values() for a in state.values())
        assert bool((h.loss == h.loss).all())                 # no nan: every row was written
        seen.append(h.steps)
        qtbot.wait(20)
    assert seen == sorted(seen)
    doc.finish_now()
    assert doc.histories[0].steps == 6


def test_cancel_stops_a_run_after_its_step_and_keeps_what_it_did(qtbot, make_window, tmp_path):
    window = make_window()
    doc = window.document
    job = started(window, qtbot, big_scenario(tmp_path, steps=500))
    cancel = window.scripts.act_cancel
    assert cancel.isEnabled() and window.scripts.cancel_button.isVisible()
    finished = []
    doc.runFinished.connect(lambda: finished.append(True))
    cancel.trigger()
    qtbot.waitUntil(lambda: not doc.running, timeout=RUN_TIMEOUT_MS)
    assert job.ended.is_set() and finished == [True]
    history = doc.sessions[0].history
    assert 0 < history.steps < 500
    assert history.message == f"cancelled after {history.steps} of 500 steps"
    assert not cancel.isEnabled() and not window.scripts.cancel_button.isVisible()
    qtbot.waitUntil(lambda: window.replay is not None, timeout=RUN_TIMEOUT_MS)   # replayed in a worker
    assert window.iteration_total.text().strip() == f"of {history.steps}"


def test_an_edit_during_a_run_restarts_it_with_the_edit(qtbot, make_window, tmp_path):
    window = make_window()
    doc = window.document
    old = started(window, qtbot, big_scenario(tmp_path, steps=500, n=20_000))
    old_sessions = doc.sessions
    edited = doc.editable_copy()
    edited.optimizer.hyper["lr"] = 0.05
    edited.loop.steps = 3
    doc.edit(edited)
    assert old.cancelled and doc.running and doc.sessions == []      # the old run is not shown
    qtbot.waitUntil(lambda: not doc.running, timeout=RUN_TIMEOUT_MS)
    assert old.ended.is_set()
    assert doc.sessions is not old_sessions
    history = doc.sessions[0].history
    assert history.steps == 3 and history.message == ""
    assert history.lr[0] == 0.05
    assert old_sessions[0].history.steps < 500                       # it stopped where it was



def test_a_rerun_gives_the_replaced_runs_memory_back(qtbot, make_window, tmp_path):
    """The replaced runs' Sessions are released (``Session.release``) even though something may
    still hold them (here the test; in the app a finished trace job's key): their History memory is
    back in the pool before the new runs take theirs, so a re-run does not hold two Histories. One
    still computing (cancelled mid-run) is released once its worker lets go of it."""
    window = make_window()
    doc = window.document
    old = started(window, qtbot, big_scenario(tmp_path, steps=500, n=20_000))
    running = doc.sessions[0]
    qtbot.waitUntil(lambda: running.history.steps > 0, timeout=RUN_TIMEOUT_MS)
    doc.rerun()                                   # cancelled mid-run: released once its worker ends
    assert old.cancelled and doc.sessions == []
    qtbot.waitUntil(lambda: bool(doc.sessions), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: running.history.steps == 0, timeout=RUN_TIMEOUT_MS)
    assert running._buffer is None and len(running._checkpoints) == 1
    finished = doc.sessions[0]
    doc.cancel()
    qtbot.waitUntil(lambda: not doc.running, timeout=RUN_TIMEOUT_MS)
    steps = finished.history.steps
    assert steps > 0
    doc.rerun()                  # a run that ended: released now (or once a replay of it ends)
    qtbot.waitUntil(lambda: finished.history.steps == 0, timeout=RUN_TIMEOUT_MS)
    assert finished._buffer is None and not doc._releasing
    doc._stop_run()

def test_closing_the_window_during_a_run_stops_and_joins_it(qtbot, make_window, tmp_path):
    window = make_window()
    doc = window.document
    job = started(window, qtbot, big_scenario(tmp_path, steps=500))
    sessions = job.sessions
    window.document.modified = False
    window.close()
    assert job.cancelled and job.ended.is_set()
    assert not doc.running and doc.sessions == []
    assert job.sessions == []                     # a cancelled run's Histories are let go
    assert sessions[0].history.steps < 500


def test_a_job_computes_off_the_ui_thread():
    """``Job`` (for traces and landscapes off the UI thread): the same trace as on the UI thread."""
    from gradviz.scenario import bundled_path, load
    from gradviz.training.session import Session
    from ui.run_thread import Job

    session = Session(load(bundled_path("08_tanh_neuron")))
    session.run()
    job = Job(lambda _progress: session.trace_iteration(3), key=(session, 3))
    assert job.join(60) and job.error is None
    assert job.result.iteration == 3 and len(job.result.events) == len(session.trace_iteration(3).events)
    failing = Job(lambda _progress: session.trace_iteration(10 ** 6))
    assert failing.join(60) and failing.result is None and "out of range" in failing.error


def test_a_slow_trace_is_replayed_in_a_worker_and_shown_when_ready(qtbot, make_window, monkeypatch):
    """An iteration whose replay is expected to take long (``Session.trace_estimate`` over
    ``trace_jobs.SYNC_S``) is replayed off the UI thread: the status bar says so, the player keeps
    the previous trace meanwhile, and the new one appears by itself, bit for bit the same."""
    from gradviz.scenario import bundled_path
    from ui import trace_jobs

    window = make_window(bundled_path("08_tanh_neuron"))
    session = window.session
    expected = session.trace_iteration(5)
    monkeypatch.setattr(trace_jobs, "SYNC_S", -1.0)          # every replay goes to a worker
    before = window.replay
    window.iteration_box.setValue(5)
    assert window.replay is before                          # nothing blocked: the old trace stays
    assert window.traces.busy
    assert window.statusBar().currentMessage() == "Replaying iteration 5…"
    job = window.traces._slot.job
    qtbot.waitUntil(lambda: window.replay is not before, timeout=RUN_TIMEOUT_MS)
    assert window.replay.iteration == 5 and not window.traces.busy
    assert window.replay is job.result[1], "its Replay was made in the worker too"
    assert [type(e).__name__ for e in window.replay.trace.events] == [type(e).__name__ for e in expected.events]
    assert window.statusBar().currentMessage() == ""


def test_asking_for_another_iteration_drops_the_replay_in_progress(qtbot, make_window, monkeypatch):
    from gradviz.scenario import bundled_path
    from ui import trace_jobs

    window = make_window(bundled_path("08_tanh_neuron"))
    monkeypatch.setattr(trace_jobs, "SYNC_S", -1.0)
    window.iteration_box.setValue(3)
    first = window.traces._slot.job
    window.iteration_box.setValue(7)
    assert first.cancelled and window.traces._slot.job is not first
    qtbot.waitUntil(lambda: window.replay is not None and window.replay.iteration == 7, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(50)
    assert window.replay.iteration == 7                     # the dropped job's trace never shows


def test_a_slow_landscape_is_computed_in_a_worker_with_progress_and_cancel(qtbot, make_window, monkeypatch):
    """A landscape whose first block projects past ``SYNC_LANDSCAPE_S`` goes to a worker: the plot
    says how far it is, Cancel stops it (the trajectories stay, "Compute landscape" starts again),
    and the landscape it draws equals the one computed on the UI thread."""
    from gradviz.scenario import bundled_path
    from gradviz.training import landscape as landscape_module
    from ui.dashboards import param_space

    window = make_window(bundled_path("01_tutorial_wx_b"))
    space = window.dashboards.space
    window.dashboards.tabs.setCurrentWidget(space)
    qtbot.waitUntil(lambda: space.landscape is not None)
    expected = space.landscape.z.copy()
    monkeypatch.setattr(param_space, "SYNC_LANDSCAPE_S", -1.0)   # every landscape goes to a worker ...
    monkeypatch.setattr(landscape_module, "LANDSCAPE_BLOCK", 1)  # ... after its first block of many
    started = threading.Event()
    release = threading.Event()
    real = window.session.landscape

    def slow(*args, progress=None, **kwargs):      # the worker's call waits until the test lets it go
        if threading.current_thread() is threading.main_thread():
            return real(*args, progress=progress, **kwargs)

        def gate(done, total):
            started.set()
            release.wait(30)
            if progress is not None:
                progress(done, total)
        return real(*args, progress=gate, **kwargs)
    monkeypatch.setattr(window.session, "landscape", slow)

    space._axes_changed()                            # e.g. the user picked the axes again
    assert space._jobs.job is not None and space.landscape is None
    assert space.cancel_button.isVisible() and space.cancel_button.text() == "Cancel"
    assert space.message.isVisible() and space.message.toPlainText().startswith("Computing the loss landscape")
    assert started.wait(30)
    qtbot.mouseClick(space.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: space._jobs.job is None, timeout=RUN_TIMEOUT_MS)
    assert space.landscape is None and space.cancel_button.text() == "Compute landscape"
    assert "cancelled" in space.message.toPlainText()
    assert any(t.isVisible() for t in space.trajectories)

    qtbot.mouseClick(space.cancel_button, QtCore.Qt.MouseButton.LeftButton)   # compute it after all
    qtbot.waitUntil(lambda: space.landscape is not None, timeout=RUN_TIMEOUT_MS)
    np.testing.assert_array_equal(space.landscape.z, expected)
    assert not space.cancel_button.isVisible() and not space.message.isVisible()


def test_garbage_is_collected_on_the_ui_thread_once_workers_run(qtbot):
    """A worker that allocates must never collect a cycle holding a Qt wrapper (deleting it outside
    the UI thread crashed a paint): once a worker started, automatic collection is off and the UI
    thread's timer collects, so a cycle's finalizer runs on the UI thread."""
    import gc

    from ui.run_thread import Job

    Job(lambda _p: None).join(10)                   # any worker installs the UI thread's collector
    assert not gc.isenabled()
    ran_on = []

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            ran_on.append(threading.current_thread() is threading.main_thread())
    Cycle()                                           # unreachable at once, freed only by the collector

    def churn(_progress):                             # would trigger a collection in this thread
        return [[] for _ in range(20_000)]            # kept (the job's result): the counts stay up
    job = Job(churn)
    job.join(30)
    qtbot.waitUntil(lambda: bool(ran_on), timeout=10_000)
    assert ran_on == [True] and len(job.result) == 20_000


def test_a_replay_in_a_worker_also_works_out_the_means_the_graph_shows(monkeypatch):
    """The graph's boxes show each large array's mean: ``trace_jobs.replay`` computes them in the
    worker, so the UI thread finds them in ``graph.text``'s memory instead of passing over the data."""
    from gradviz.scenario import bundled_path, load
    from gradviz.training.session import Session
    from ui import trace_jobs
    from ui.graph import text

    monkeypatch.setattr(text, "MEAN_CACHED_FROM", 1000)       # the MLP's 200 x 16 activations count
    session = Session(load(bundled_path("07_mlp_two_moons")))
    session.run()
    trace, replay = trace_jobs.replay(session, 3)
    assert replay.trace is trace
    large = [a for e in trace.events for v in vars(e).values()
             for a in (v if isinstance(v, (tuple, list)) else (v,)) if isinstance(a, np.ndarray) and a.size >= 1000]
    assert large
    for a in large[-8:]:                                      # the memory keeps the most recent ones
        assert text._MEANS[id(a)][0] is a
        assert text._MEANS[id(a)][1] == text.format_number(np.mean(a.astype(np.float64)), 2)


def test_the_startup_objects_are_frozen_and_later_garbage_is_still_collected(qtbot, make_window):
    """A full collection on the UI thread walked ~100,000 objects (130-150 ms); the modules and the
    window built at startup are frozen once, and a scenario's cycles are still collected."""
    import gc
    import weakref

    make_window()
    assert gc.get_freeze_count() > 50_000

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.collect()
    assert alive() is None


def test_runs_start_once_the_ui_thread_shows_their_sessions(qtbot, make_window, tmp_path):
    """The worker builds the Sessions and waits (``go``) until the Document has shown them and let go
    of the last runs (released, so that their History memory is back in the pool) before a run
    allocates its History; a RunThread nobody pumps starts after ``GO_TIMEOUT_S``."""
    from gradviz.scenario import load

    scenario = load(big_scenario(tmp_path, steps=20, n=500))
    job = RunThread(scenario)
    qtbot.waitUntil(lambda: bool(job.sessions), timeout=RUN_TIMEOUT_MS)
    time.sleep(0.1)
    assert job.done == 0 and job.sessions[0].history.steps == 0        # waiting for go
    job.go.set()
    assert job.join(RUN_TIMEOUT_MS / 1000) and job.sessions[0].history.steps == 20

    window = make_window(big_scenario(tmp_path, steps=20, n=500))
    doc = window.document
    doc.finish_now()
    seen = []
    doc.runStarted.connect(lambda: seen.append(doc._job.go.is_set()))
    edited = doc.editable_copy()
    edited.optimizer.hyper["lr"] = 0.02
    doc.edit(edited)
    qtbot.waitUntil(lambda: not doc.running, timeout=RUN_TIMEOUT_MS)
    assert seen == [False]                        # runStarted went out before the runs began
    assert doc.sessions[0].history.lr[0] == 0.02 and doc.sessions[0].history.steps == 20
