"""Long core work off the UI thread: a TOML scenario's runs (``RunThread``) and one-off computations
such as a trace or a landscape (``Job``).

    job = RunThread(scenario)          # starts at once
    job.sessions, job.done, job.errors # what it has published so far (read from the UI thread)
    job.cancel()                       # stops after the step in progress; job.ended is then set

The Document's pump (a QTimer on the UI thread) reads what a RunThread publishes and turns it into
its signals; workers never touch Qt. Everything published is one assignment of a finished value
(the sessions list once all are built, the step count after the step's History rows are written, an
error appended), so the UI thread never sees a half-made one. A Session publishes its History after
every chunk of at most ``CHUNK_S`` seconds (at least one step), the moments the job looks at its
cancel flag.

The core's grad mode, autocast and trace recorder are per thread (as in PyTorch), so the UI thread
may compute with the core (the Data tab's forward passes) while a run goes on. What threads must
not share is one Session's engine: ``session.lock`` is held around each chunk, each trace and each
landscape (gradviz/training/session.py). A cancelled job finishing its step and its successor
touch different Sessions.

GIL: a thread computing in Python keeps the GIL until another thread has waited for it for
``sys.getswitchinterval()`` (5 ms). A paint of the dashboards, thousands of Python calls, took
several times longer while a run of small steps competed for the GIL (a 10 ms timer ticked 3 times
in a second). So the worker sleeps after every chunk of ``CHUNK_S`` for ``breather`` seconds, which
the Document sets from how late its pump timer fires: ``BREATHER_S`` while the UI thread keeps up,
up to ``MAX_BREATHER_S`` while it is busy painting what the run published (ui/document.py); the
Document also spaces a run's live updates by what they cost. (A shorter switch interval made it
worse: the UI thread then gave the GIL back every 0.5 ms in the middle of its paint.)
"""
from __future__ import annotations

import contextlib
import gc
import os
import queue
import sys
import threading
import time

from gradviz.training.session import Session

CHUNK_S = 0.02        # a Session's chunk: how often it publishes its History and the cancel flag is read
BIG = 1 << 30         # steps per chunk: the time bound ends chunks, not a step count
BREATHER_S = 0.01     # the worker sleeps this long after every chunk (the UI thread gets the GIL) ...
MAX_BREATHER_S = 0.03  # ... and up to this long while the UI thread is late (RunThread.breather)
GO_TIMEOUT_S = 1.0     # the runs start when the UI thread shows the Sessions, or after this long
SLICE_S = 0.01         # a worker computing in Python (a Job, a run's Session building) runs this long ...
PAUSE_S = 0.005        # ... then sleeps this long, so the UI thread finds the GIL free (``breathing``)
YIELD_S = 0.02         # while the UI thread is busy with a turn, a worker waits up to this long ...
RUN_S = 0.004          # ... then runs at least this long before it waits again
TURN_S = 0.5           # a turn longer than this is not waited for
LOOK_S = 0.001         # a worker reads whether the UI thread is busy at most this often (a system call)
WORKER_NICE = 5        # workers' scheduling priority below the UI thread's (Linux: per thread)


# The UI thread's system calls while it does not need the CPU or the GIL: blocked in its event loop's
# poll, or sleeping (QTest.qWait, time.sleep), by architecture (Linux: /proc/self/task/TID/syscall)
IDLE_SYSCALLS = {
    "x86_64": {b"7", b"23", b"35", b"230", b"232", b"270", b"271", b"281", b"441"},
    # poll, select, nanosleep, clock_nanosleep, epoll_wait, pselect6, ppoll, epoll_pwait, epoll_pwait2
    "aarch64": {b"22", b"72", b"73", b"101", b"115", b"441"},
    # epoll_pwait, pselect6, ppoll, nanosleep, clock_nanosleep, epoll_pwait2
}


class _UiTurn:
    """Whether the UI thread is busy, in a turn of its event loop: workers then step aside
    (``breathing``, ``step_aside``).

    On Linux a worker reads the UI thread's current system call (``/proc/self/task/TID/syscall``,
    one ``pread``: no GIL, no Qt): the UI thread is idle while it is blocked in its event loop's
    poll or sleeping, and busy otherwise (running, or waiting for the GIL a worker holds: a futex).

    Elsewhere, the dispatcher's ``awake`` and ``aboutToBlock`` start and stop a marker QTimer through
    C++ connections (a Python slot would need the GIL to mark a turn). That marker misses most of a
    turn: both Qt dispatchers (glib's and the Unix one) emit ``aboutToBlock`` before they poll and
    then deliver the timers and window-system events that woke them without another ``awake``
    (only the posted events, paints among them, are delivered between the two). With the glib
    dispatcher, a worker read "idle" during every timer's slot, so runs never stepped aside
    (measured: 0 of 1,000 reads busy while limit_expression ran; the UI thread on CPU for a third
    of 60-100 ms gaps, the rest waiting for the GIL).

    ``since`` is when a reader first saw the current turn: close enough to tell a turn that goes on
    for long (``TURN_S``: the UI thread waiting, not painting). While the UI thread waits for a
    worker (``joining``), it is not busy."""
    TURN_MS = 3_600_000      # the marker timer never fires

    def __init__(self):
        self._timer = None
        self._fd: int | None = None
        self._idle: set[bytes] = set()
        self._joins = 0
        self._was = False
        self._seen = 0.0

    def watch(self) -> None:
        """Follow the UI thread (once, from the UI thread)."""
        if self._fd is None:
            self._watch_syscalls()
        if self._timer is not None:
            return
        from PySide6 import QtCore
        dispatcher = QtCore.QAbstractEventDispatcher.instance()
        if dispatcher is None:
            return
        timer = QtCore.QTimer(dispatcher)
        timer.setInterval(self.TURN_MS)
        connect = QtCore.QObject.connect
        if not (connect(dispatcher, QtCore.SIGNAL("awake()"), timer, QtCore.SLOT("start()"))
                and connect(dispatcher, QtCore.SIGNAL("aboutToBlock()"), timer, QtCore.SLOT("stop()"))):
            return
        self._timer = timer

    def _watch_syscalls(self) -> None:
        import platform
        idle = IDLE_SYSCALLS.get(platform.machine())
        if not idle or not sys.platform.startswith("linux"):
            return
        try:
            fd = os.open(f"/proc/self/task/{threading.get_native_id()}/syscall", os.O_RDONLY)
        except OSError:
            return
        try:
            if not os.pread(fd, 64, 0).split():
                raise OSError("empty")
        except OSError:
            os.close(fd)
            return
        self._fd, self._idle = fd, idle

    @property
    def watched(self) -> bool:
        return self._timer is not None or self._fd is not None

    @property
    def reads_syscalls(self) -> bool:
        return self._fd is not None

    @property
    def busy(self) -> bool:
        if self._joins:
            active = False
        elif self._fd is not None:
            try:
                active = os.pread(self._fd, 32, 0).split(None, 1)[0] not in self._idle
            except (OSError, IndexError):
                active = False
        else:
            timer = self._timer
            try:
                active = timer is not None and timer.timerId() >= 0     # a plain field (isActive is bindable)
            except RuntimeError:                 # the application (and its dispatcher) is gone
                self._timer, active = None, False
        if active and not self._was:
            self._seen = time.perf_counter()
        self._was = active
        return active

    @property
    def since(self) -> float:
        return self._seen

    def waiting(self) -> None:
        """The UI thread is about to wait for a worker: the marker's turn ends (see ``joining``)."""
        if threading.current_thread() is threading.main_thread() and self._timer is not None:
            try:
                self._timer.stop()
            except RuntimeError:
                self._timer = None

    @contextlib.contextmanager
    def joining(self):
        """The UI thread waits for a worker (a join) inside: not a turn to step aside for."""
        ui = threading.current_thread() is threading.main_thread()
        if ui:
            self.waiting()
            self._joins += 1
        try:
            yield
        finally:
            if ui:
                self._joins -= 1


UI_TURN = _UiTurn()


def breathing(fn):
    """``fn(*args)`` in this thread, stepping aside for the UI thread: a profile hook (this thread's
    only) looks every 32 calls whether the UI thread is in a turn of its event loop, and if so sleeps
    until the turn ends (at most ``YIELD_S``, then it runs ``RUN_S`` at least); it also pauses
    ``PAUSE_S`` after every ``SLICE_S`` it ran. Why: a worker computing in Python gives the GIL to the
    UI thread only after the UI thread has waited the switch interval (5 ms), at every call back from
    Qt into Python; opening a 2 MB file in the window while its Sessions were built and its program
    written in workers blocked the window 160-380 ms, in Qt's paint calls waiting for the GIL
    (one-line pyqtgraph getters took 3 ms each). A C call is not cut."""
    def run(*args):
        previous = sys.getprofile()
        sys.setprofile(breather_hook())
        try:
            return fn(*args)
        finally:
            sys.setprofile(previous)
    return run


def breather_hook(turn=UI_TURN, clock=time.perf_counter, sleep=time.sleep):
    """The profile hook :func:`breathing` installs (``sys.setprofile``: the calling thread's);
    ``turn``, ``clock`` and ``sleep`` are its view of the UI thread and of time (tests pass fakes)."""
    resume = clock() + SLICE_S
    free_until = look_at = 0.0
    count = 0

    def hook(_frame, _event, _arg) -> None:
        nonlocal resume, count, free_until, look_at
        count += 1
        if count & 31:
            return
        now = clock()
        # (a "turn" longer than TURN_S is the UI thread waiting for a worker, or a long turn that
        # would not end the sooner for this one pausing; ``busy`` is a system call: read it at most
        # every LOOK_S)
        if now >= free_until and now >= look_at and turn.busy and now - turn.since < TURN_S:
            give_up = now + YIELD_S
            while turn.busy and clock() < give_up:
                sleep(0.001)
            now = clock()
            free_until, resume = now + RUN_S, now + SLICE_S
        elif now >= resume:
            sleep(PAUSE_S)
            resume = clock() + SLICE_S
        if now >= look_at:
            look_at = now + LOOK_S
    return hook


def step_aside(turn=UI_TURN, clock=time.perf_counter, sleep=time.sleep):
    """The run thread's ``pause`` (``Session.run_chunked``), called inside a step after each
    micro-batch's forward and backward: while the UI thread is in a turn of its event loop, wait
    for the turn to end (at most ``YIELD_S``, then run ``RUN_S`` at least before waiting again), as
    :func:`breathing` does, but at the step's phases instead of through a profile hook on every
    call (which slowed limit_mlp's run 12 -> 19 s). Why: a step of Python-heavy autograd (an
    expression model at the graph limit: 20 ms a step) kept the GIL for its whole length; the UI
    thread got it back only after a switch interval (5 ms) at every call from Qt into Python, and a
    paint of 35 ms of the UI thread's own work took 80-180 ms."""
    free_until = look_at = 0.0

    def pause() -> None:
        nonlocal free_until, look_at
        now = clock()
        if now < free_until or now < look_at:
            return
        look_at = now + LOOK_S
        if turn.busy and now - turn.since < TURN_S:
            give_up = now + YIELD_S
            while turn.busy and clock() < give_up:
                sleep(0.001)
            free_until = clock() + RUN_S
    return pause


GC_INTERVAL_MS = 100  # the UI thread's garbage collection timer (see UiThreadGC)
FULL_GC_S = 10.0      # at most one full (oldest generation) collection this often
QUIET_S = 0.005       # a due full collection waits for two checks in a row this close to on time ...
MAX_DEFER_S = 30.0    # ... at most this long
MAX_YOUNG_DEFER_S = 1.0   # a middle-generation collection waits for a turn with no work yet, at most this long
MIDDLE_AFTER = 1      # the middle generation is collected after this many of the youngest (CPython: 10) ...
FULL_AFTER = 100      # ... the oldest is considered after this many of the middle one (CPython: 10 of its 10x rarer)
SCAN_MAX = 50_000     # a collection walks at most this many objects (about 25 ms); more are tenured unwalked
MAJOR_GROWTH = 2.0    # a major collection (the tenured objects too) once they grew this much since the last ...
MAJOR_MIN_GROWTH = 500_000   # ... and by at least this many (100-200 MB), ...
MAJOR_IDLE_S = 3.0    # ... in a loop idle this long (no work, every check on time) ...
MAJOR_MAX_DEFER_S = 600.0    # ... at most this long after it became due

_gc: UiThreadGC | None = None


class UiThreadGC:
    """Python's cyclic garbage collector runs in whichever thread allocates past its threshold. A
    worker thread collecting a cycle that holds a PySide wrapper (a closed window's plot, a replaced
    graph item) deletes that Qt object outside the UI thread while the UI thread paints: a
    segmentation fault (seen in the test suite). So once a worker has started, automatic collection
    is off and this timer on the UI thread collects instead, by the same thresholds (the oldest
    generation at most every ``FULL_GC_S``). pyqtgraph's ``GarbageCollector`` does the same.

    The oldest generation is collected only once it has grown by a quarter since the last full
    collection, CPython's own rule (``long_lived_pending > long_lived_total / 4``), which this timer
    skipped: with the largest expression open (70,000 objects), a full collection took 23-40 ms
    every ``FULL_GC_S`` while the user played or clicked, though almost nothing new had survived.

    A full collection that is due waits for a quiet loop: two checks in a row that came on time
    (within ``QUIET_S`` of their interval), at most ``MAX_DEFER_S``. Changing iteration on the
    largest expression, a collection of 33 ms (perf does not say of which generation) ran in the
    same 99-ms gap as the new iteration's work while three workers had the GIL; a full one costs
    37-45 ms there. The youngest generation is collected at once: it is bounded by the thresholds.

    The middle generation is collected after every ``MIDDLE_AFTER`` collection of the youngest, not
    CPython's 10: each then walks what survived in the last 100-200 ms, not in the last second. Playing
    the largest expression, what survived a second (the graph's items made for the boxes scrolled
    into view, PySide wrappers slow to walk, and the frames' states) took 14-42 ms to walk; now 3-15.
    The oldest generation is considered after ``FULL_AFTER`` of those, as often as before: a full
    collection walks every long-lived object (38-53 ms with the largest expression open).

    A collection of the middle generation waits, at most ``MAX_YOUNG_DEFER_S``, for a check that comes
    before any other work of its turn (``TURN``): playing the largest expression, it ran after the
    player's tick and the graph's text slice in one turn, and with the paint that followed the window
    stopped for 44-57 ms. A due full collection waits for such a turn too. A collection of the middle
    or oldest generation begins the turn's budget (``TURN.begin``), so that the deferred work after it
    in the same turn (the graph's frame update, its text) waits for the next turn.

    Objects that survive a full collection are tenured (``gc.freeze``): the next full collections walk
    only what survived since, not the graph that was there already. At the graph-size limit with every
    module open (170,000 objects with the app's), a full collection took 65-85 ms, and 200-330 ms with
    four iterations' frames cached; it now walks what survived since the last one. A full collection
    is due once that grew by a quarter of the tenured objects (CPython's rule, counting them). More
    than ``SCAN_MAX`` objects to walk (a large graph just built; or, in the youngest generation, a
    script's result just unpickled: 198,000 objects, 20 ms to walk there and 25 ms again in the
    middle generation) are tenured without the walk.

    A cycle among tenured objects that becomes garbage is not collected until a major collection
    (``gc.unfreeze``, then a full one over every object: 70-190 ms at the limits). The window makes
    no such cycles when a scenario or a graph is replaced (measured: 20 scenario and script switches,
    and the limit graph replaced by another, left no cyclic garbage: the graph's items are reaped, the
    rest is freed by reference counting), so a major collection is a safeguard against a leak, not
    routine: once the tenured objects doubled since the last one and grew by ``MAJOR_MIN_GROWTH``,
    in a loop idle for ``MAJOR_IDLE_S`` (no deferred work, no player's tick, every check on time),
    or ``MAJOR_MAX_DEFER_S`` after it became due whatever the loop does."""

    def __init__(self):
        from PySide6 import QtCore
        self.threshold = gc.get_threshold()
        self.clock = time.monotonic
        self.last_full = self.last_check = self.clock()
        self.on_time = False                        # the last check came on time
        self.due_since: float | None = None         # a full collection waits for a quiet loop since
        self.counts, self.collect = gc.get_count, gc.collect
        self.freeze, self.unfreeze, self.frozen = gc.freeze, gc.unfreeze, gc.get_freeze_count
        self.young_since: float | None = None       # a middle-generation collection waits since
        from .turn_budget import TURN
        self.turn = TURN
        self.work = TURN.work                       # the turns' work seen by the last check
        self.idle_since = self.last_check           # no work and every check on time since
        self.tenured = self.major_base = self.frozen()   # frozen objects (after the last major collection)
        self.major_since: float | None = None       # a major collection is due since
        gc.disable()
        self.timer = QtCore.QTimer()
        self.timer.setInterval(GC_INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    @staticmethod
    def oldest() -> int:
        return len(gc.get_objects(2))

    def check(self) -> None:
        now = self.clock()
        on_time = now - self.last_check < GC_INTERVAL_MS / 1000 + QUIET_S
        quiet, self.on_time, self.last_check = on_time and self.on_time, on_time, now
        if not on_time or self.turn.work != self.work or self.turn.tick_at is not None:
            self.idle_since = now
        self.work = self.turn.work
        counts, t0 = self.counts(), self.threshold[0]
        generation = -1
        if counts[0] > SCAN_MAX:                           # a large batch of new objects (a script's result
            generation = 2                                 # unpickled: 198,000): tenured unwalked, below
        elif counts[0] > t0:
            generation = 0
            if counts[1] >= MIDDLE_AFTER:
                generation = 1
                if self.due_since is None and counts[2] > FULL_AFTER and now - self.last_full >= FULL_GC_S:
                    if self.oldest() > self.tenured // 4:   # (what survived since the last: ~1.6 ms for 70,000)
                        self.due_since = now
                    else:
                        self.last_full = now
        busy = self.turn.start is not None                  # other work began in this turn
        major = self.major_since is not None and not busy and (
            quiet and now - self.idle_since >= MAJOR_IDLE_S or now - self.major_since >= MAJOR_MAX_DEFER_S)
        if major:
            generation = 3
        elif generation == 2 or self.due_since is not None and (quiet and not busy or
                                                                  now - self.due_since >= MAX_DEFER_S):
            generation, self.due_since, self.last_full = 2, None, now
        elif generation == 1 and busy and now - (self.young_since or now) < MAX_YOUNG_DEFER_S:
            self.young_since = self.young_since or now       # a later turn's, before its other work
            generation = 0
        if generation >= 1:
            self.young_since = None
            self.turn.begin()                              # the work after it in this turn: the next
            self.work = self.turn.work                     # (not work that makes the loop busy)
        if generation == 3:
            self._major(now)
        elif generation == 2:
            self._tenure(now, counts[0])
        elif generation >= 0:
            self.collect(generation)

    def _tenure(self, now: float, young: int) -> None:
        """A full collection of what is not tenured yet, and what survives it tenured; more than
        ``SCAN_MAX`` objects (young or old) are tenured without the walk. ``tenured`` is an estimate
        (what the youngest and oldest generations held, garbage included; not the middle one's few):
        ``gc.get_freeze_count`` walks every frozen object (8 ms at 280,000), so it counts them
        exactly only when the estimate says a major collection may be due."""
        old = self.oldest() if young <= SCAN_MAX else 0
        if young + old <= SCAN_MAX:
            self.collect(2)
        self.freeze()
        self.tenured += young + old
        if self.major_since is None and self.tenured > self._major_at():
            self.tenured = self.frozen()
            if self.tenured > self._major_at():
                self.major_since = now

    def _major_at(self) -> float:
        return max(self.major_base * MAJOR_GROWTH, self.major_base + MAJOR_MIN_GROWTH)

    def _major(self, now: float) -> None:
        """A full collection of every object, tenured ones too (the garbage among them), then tenure."""
        self.unfreeze()
        self.collect(2)
        self.freeze()
        self.tenured = self.major_base = self.frozen()
        self.major_since, self.due_since, self.last_full = None, None, now


def lower_priority(nice: int = WORKER_NICE) -> bool:
    """Make the calling thread yield the CPU to the UI thread: on two cores a run thread computing
    all the time and the UI thread left the UI thread waiting 15-23 ms of a 56-72 ms window on the
    run queue as soon as a third thread woke (measured from /proc's per-thread schedstat during
    limit_data's run), a stall of the window though nothing in it was slow. Linux only, where a
    niceness is a thread's own (``setpriority`` of its thread id); elsewhere, nothing. True when set."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError:
        return False
    return True


class Workers:
    """Daemon threads that take their targets from a queue, so that starting work does not wait.
    ``Thread.start`` waits until the new thread runs, and it needs the GIL to run: while a worker
    computed, that wait took 28 ms of the UI thread's turn (an iteration change on the largest
    expression). A thread is started only when none is idle; a finished one waits on the queue
    (the GIL released), at most ``max_idle`` of them. Each target put has a thread for it: an idle
    one reserved under the lock, or a new one, so a job never waits behind another."""

    def __init__(self, max_idle: int = 4):
        self.max_idle = max_idle
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0                   # threads done with their target and not reserved since
        self.started = 0                 # threads started (tests)

    def submit(self, target, name: str) -> None:
        with self._lock:
            reserved = self._idle > 0
            if reserved:
                self._idle -= 1
            self._queue.put((target, name))
        if not reserved:
            self.started += 1
            threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        me = threading.current_thread()
        lower_priority()
        while True:
            target, me.name = self._queue.get()
            target()                     # (a target catches what it raises; if not, the thread ends)
            with self._lock:
                if self._idle >= self.max_idle:
                    return
                self._idle += 1
            me.name = "gradviz-idle"


WORKERS = Workers()


def _start_worker(target, name: str) -> None:
    """Run ``target`` in a worker thread (``WORKERS``; from the UI thread: garbage is then collected
    there)."""
    global _gc
    if _gc is None and threading.current_thread() is threading.main_thread():
        _gc = UiThreadGC()
        UI_TURN.watch()
    WORKERS.submit(target, name)


class RunThread:
    def __init__(self, scenario, chunk_s: float = CHUNK_S):
        self.scenario = scenario
        self.chunk_s = chunk_s
        self.total = sum(int(v.loop.steps) for v in scenario.variants())
        self.sessions: list = []               # every variant's Session, published once all are built
        self.done = 0                          # steps done over all variants
        self.errors: list[str] = []            # one line each, in the order they happened
        self.cancelled = False
        self.breather = BREATHER_S             # the sleep after each chunk (set by the UI thread)
        self.ended = threading.Event()         # set when the worker has returned
        self.go = threading.Event()            # set by the UI thread once it shows the Sessions
        _start_worker(self._main, "gradviz-run")

    def cancel(self) -> None:
        """Stop after the step in progress (a Session running keeps the steps it did)."""
        self.cancelled = True
        self.go.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to return (at most one step once cancelled); True when it has."""
        with UI_TURN.joining():
            return self.ended.wait(timeout)

    def _main(self) -> None:
        try:
            if breathing(self._build)():
                # the UI thread shows the new Sessions first (``go``): the views let go of the last
                # run's Histories, whose memory the first run's History then reuses (history_pool)
                self.go.wait(GO_TIMEOUT_S)
                self._run()
        except Exception as exc:              # never let a run take the app down
            self.errors.append(f"{self.scenario.title}: {exc}")
        finally:
            if self.cancelled:
                self.sessions = []            # a cancelled run's Histories are nobody's now
            self.ended.set()

    def _build(self) -> bool:
        sessions = []
        for i in range(len(self.scenario.variants())):
            if self.cancelled:
                return False
            try:
                sessions.append(Session(self.scenario, i))      # runs one forward pass
            except Exception as exc:          # a scenario the loader accepted but the core refuses
                self.errors.append(f"{self.scenario.title}: {exc}")
                return False
            time.sleep(BREATHER_S)
        self.sessions = sessions
        return True

    def _run(self) -> None:
        # (the steps do not go through ``breathing``: its hook, stepping aside for every turn of the
        # UI thread, made limit_mlp's run 12 -> 19 s for 46 -> 39 ms of longest stall; the chunks'
        # breathers give the UI thread its share, and ``step_aside`` its turns inside a long step)
        before = 0
        for session in self.sessions:
            steps = int(session.variant_spec.loop.steps)
            try:
                for done, total in session.run_chunked(BIG, seconds=self.chunk_s, pause=step_aside()):
                    self.done = before + done
                    if self.cancelled:
                        session.stop(f"cancelled after {done} of {total} steps")
                        return
                    time.sleep(self.breather)
            except Exception as exc:          # this variant failed: say so, run the next
                self.errors.append(f"{session.variant_spec.name}: {exc}")
            before += steps
            self.done = before
            if self.cancelled:
                return


class Cancelled(Exception):
    """Raised inside a Job's function by ``progress()`` once the job was cancelled."""


class Job:
    """``fn(progress)`` in a worker thread: ``result`` (or ``error``, one line) once ``ended`` is set.

    ``fn`` may call ``progress(done, total)`` now and then: it records the fraction for a progress
    bar and raises ``Cancelled`` once ``cancel()`` was called, so a long computation stops early;
    one that never calls it runs to its end and its result is dropped (``cancelled``)."""

    def __init__(self, fn, *, key=None, label: str = ""):
        self.key = key
        self.label = label
        self.result = None
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.cancelled = False
        self.fraction = 0.0
        self.ended = threading.Event()
        self._fn = fn
        _start_worker(self._main, "gradviz-job")

    def cancel(self) -> None:
        self.cancelled = True

    def progress(self, done: float, total: float) -> None:
        self.fraction = done / total if total else 0.0
        if self.cancelled:
            raise Cancelled()

    def join(self, timeout: float | None = None) -> bool:
        with UI_TURN.joining():
            return self.ended.wait(timeout)

    def _main(self) -> None:
        try:
            self.result = breathing(self._fn)(self.progress)
        except Cancelled:
            self.cancelled = True
        except Exception as exc:
            self.exception = exc
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finally:
            self.ended.set()


class JobSlot:
    """One view's job at a time, watched from the UI thread: ``start(fn, key)`` replaces (cancels)
    the job in progress; ``on_end(job)`` is called on the UI thread once a job ends (cancelled ones
    too, with ``job.cancelled`` set), polled every ``interval_ms``; ``wait()`` delivers it now (tests,
    exports); ``drop()`` forgets the job in progress without calling ``on_end``."""

    def __init__(self, parent, on_end, interval_ms: int = 30):
        from PySide6 import QtCore
        self.job: Job | None = None
        self._on_end = on_end
        self._timer = QtCore.QTimer(parent)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)

    def running(self, key=None) -> bool:
        """A job is in progress (for ``key``, if given)."""
        return self.job is not None and (key is None or self.job.key == key)

    def start(self, fn, key) -> Job:
        self.drop()
        self.job = Job(fn, key=key)
        self._timer.start()
        return self.job

    def drop(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self._timer.stop()

    def wait(self, timeout: float = 120.0) -> None:
        if self.job is not None:
            self.job.join(timeout)
            self.poll()

    def poll(self) -> None:
        job = self.job
        if job is None or not job.ended.is_set():
            return
        self.job = None
        self._timer.stop()
        self._on_end(job)
