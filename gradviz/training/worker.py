"""The warm worker process that runs training scripts: a time limit, a memory cap, Cancel, and a
crash never takes the caller down.

The parent (the app, the command line, tests) holds a :class:`ScriptWorker`. It starts
``python -m gradviz.training.worker_child``, which imports numpy and gradviz once (about a second),
runs a tiny loop to fill lazy caches, and waits. Each job runs in a *fresh fork* of that warm
process (on Linux; elsewhere the warm process runs one job and a new one is warmed), so a script
never sees what an earlier script did (seeds, ``set_default_dtype``, imports) and a job starts in
milliseconds.

Protocol: length-prefixed pickles. Parent -> worker: the job, on the worker's stdin. Worker ->
parent: messages on a pipe of their own (``pass_fds``), never on fd 1, so a script that writes to
fd 1 directly cannot corrupt them; fd 1 and fd 2 of the worker go to a pipe the parent drains.
The script's ``print`` output comes back as :class:`Output` messages as it is written.

Every job ends with exactly one :class:`Done` (the ScriptResult; its ``.error`` says where the
script failed: an exception, the time limit, the memory cap) or one :class:`Failed` (no result:
the process died, or it was cancelled). Nothing the parent does blocks without a deadline.

Limits, in the job's process: ``SIGALRM`` after ``timeout`` seconds raises at the script line being
run (``lesson.py:4: the script ran longer than the time limit (60 s)``); the parent kills the job
if it has not answered ``GRACE`` seconds later. ``RLIMIT_AS`` = the address space at job start +
``memory_mb``, so an allocation beyond it raises MemoryError (``lesson.py:7: the script used more
memory than the cap (2048 MB)``).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from .worker_child import (
    _MB,
    DEFAULT_TARGET,
    GRACE,
    Done,
    Failed,
    Output,
    Progress,
    TimeLimitExceeded,
    _Alarm,
    _Ended,
    _frame,
    _grow_pipe,
    _prefix,
    _Ready,
    _Spilled,
    _split_frames,
    _Started,
    read_spill,
)

__all__ = ["ScriptWorker", "WorkerError", "Progress", "Output", "Done", "Failed", "TimeLimitExceeded",
           "GRACE"]

TARGET = DEFAULT_TARGET
WARM_TIMEOUT = 60.0         # seconds a new worker process may take to import numpy and gradviz
REAP_TIMEOUT = 3.0          # seconds the warm process may take to report a killed job's end
_DEFAULT = object()          # trace_iterations not given: run_script's default
SEND_TIMEOUT = 5.0          # seconds to hand a job to the warm process


class WorkerError(Exception):
    """A job that ended without a result; ``str()`` is the one line (``lesson.py:4: ...``)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message, self.line = message, line


# -- the parent's side ---------------------------------------------------------------------------

def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "the worker process stopped answering"
    if code == -signal.SIGKILL:
        return "the worker process was killed (SIGKILL; the system may have run out of memory)"
    if code < 0:
        return f"the script crashed the worker process ({_signal_name(-code)})"
    return f"the worker process exited before the script finished (exit status {code})"


def _load(payload: bytes):
    message = pickle.loads(payload)
    if not isinstance(message, _Spilled):
        return message
    try:
        return read_spill(message.path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(message.path)


def _spill_dir() -> str:
    """A private folder for large messages: tmpfs (/dev/shm) when there is one."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="gradviz-worker-", dir=base)


class _Child:
    """One warm process: its pipes, what it said so far, and the job it runs."""

    def __init__(self, forks: bool, target: str, spill_dir: str):
        msg_read, msg_write = os.pipe()
        _grow_pipe(msg_write)
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])      # so `-m gradviz...` imports this gradviz
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.pop("PYTHONSTARTUP", None)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gradviz.training.worker_child", str(msg_write),
                 "fork" if forks else "single", target, spill_dir],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(msg_write,), env=env, start_new_session=True)
        finally:
            os.close(msg_write)
        self.msg_fd, self.err_fd = msg_read, self.process.stderr.fileno()
        for fd in (self.msg_fd, self.err_fd):
            os.set_blocking(fd, False)
        self.buffer = bytearray()
        self.stderr_tail = b""
        self.ready = False
        self.forks = False
        self.eof = False
        self.spent = False            # ran its one job (without forks): never given another
        self.started = time.monotonic()
        self.job: _Job | None = None

    @property
    def alive(self) -> bool:
        return not self.eof and self.process.poll() is None

    def fds(self) -> list[int]:
        return [fd for fd in (self.msg_fd, self.err_fd) if fd >= 0]

    def read(self) -> tuple[list, str]:
        """Complete messages and stderr text that arrived (never blocks)."""
        got_data = False
        while not self.eof:
            try:
                chunk = os.read(self.msg_fd, _MB)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self.buffer += chunk
            got_data = True
        if got_data and self.job is not None:
            self.job.heard = time.monotonic()
        messages = []
        for payload in _split_frames(self.buffer):
            try:
                messages.append(_load(payload))
            except Exception as exc:          # a GradViz bug (an unpicklable result): one line
                if self.job is not None:
                    messages.append(Failed(self.job.number, f"{_prefix(self.job.path, None)}the worker's "
                                                            f"answer could not be read: {type(exc).__name__}: {exc}"))
        err = b""
        while self.err_fd >= 0:
            try:
                chunk = os.read(self.err_fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            err += chunk
        if err:
            self.stderr_tail = (self.stderr_tail + err)[-4096:]
        return messages, err.decode("utf-8", "replace")

    def last_stderr_line(self) -> str:
        lines = self.stderr_tail.decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip()[:300] if lines else ""

    def send(self, payload: bytes) -> None:
        """Hand a job to the process within SEND_TIMEOUT (an OSError if it cannot take it)."""
        fd = self.process.stdin.fileno()
        os.set_blocking(fd, False)
        view, deadline = memoryview(payload), time.monotonic() + SEND_TIMEOUT
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OSError("the worker process did not take the job") from None
                select.select([], [fd], [], 0.05)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            os.killpg(self.process.pid, signal.SIGKILL)      # the warm process and any job it forked
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        self.eof = True

    def close(self) -> None:
        self.kill()
        for fd in (self.msg_fd,):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.msg_fd = -1
        for stream in (self.process.stdin, self.process.stderr):
            with contextlib.suppress(Exception):
                stream.close()
        self.err_fd = -1


@dataclass
class _Job:
    number: int
    path: str
    payload: bytes
    timeout: float | None
    child: _Child | None = None
    pid: int | None = None            # the job's process, once started
    started: float = 0.0
    heard: float = 0.0                # last time bytes arrived for it
    alarm_line: int | None = None
    over: bool = False                # its Done/Failed has been given out
    killed_at: float | None = None
    timed_out: bool = False           # killed by the parent past the time limit and its grace
    retried: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def deadline(self) -> float:
        """When the parent kills the job; a message arriving (a large result) keeps it alive."""
        if self.timeout is None:
            return float("inf")
        deadline = self.started + self.timeout + GRACE
        if self.child is not None and self.child.buffer:
            deadline = max(deadline, self.heard + GRACE)
        return deadline


_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for worker in list(_LIVE):
        worker.close()


class ScriptWorker:
    """Runs scripts in a warm worker process. Qt-free: the app polls, the CLI and tests call run().

    ``forks=None`` forks each job from the warm process on Linux; ``forks=False`` uses one warm
    process per job (another is warmed as each job starts). ``target`` is the ``module:function``
    the worker calls as ``run_script(source, path, progress=, stdout=, trace_only=, trace_budget=)``.
    """

    def __init__(self, *, forks: bool | None = None, target: str = TARGET):
        self.forks = sys.platform.startswith("linux") and hasattr(os, "fork") if forks is None else forks
        self.target = target
        self._children: list[_Child] = []
        self._queue: list[_Job] = []
        self._running: _Job | None = None
        self._outbox: list = []
        self._next_job = 1
        self._closed = False
        self._spill_dir = ""
        _LIVE.add(self)

    # -- public API ---------------------------------------------------------------------------

    def warm(self) -> None:
        """Start a warm process now (it loads numpy and gradviz while the user reads)."""
        self._check_open()
        self._ensure_spare()

    def wait_ready(self, timeout: float = WARM_TIMEOUT) -> bool:
        """Block until an idle warm process is ready (benchmarks, tests); False on timeout."""
        self.warm()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump()
            if self._idle() is not None:
                return True
            self._wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return False

    def submit(self, source: str, path, *, timeout: float | None = 60.0, memory_mb: float | None = 2048,
               trace_only=None, trace_budget: int | None = None, trace_iterations=_DEFAULT) -> int:
        """Queue a script; returns the job id its messages carry. Jobs run one at a time.
        ``trace_only`` (an iteration, or a range/collection of them), ``trace_budget`` and
        ``trace_iterations`` (None: trace every iteration) are passed to ``run_script``."""
        self._check_open()
        number = self._next_job
        self._next_job += 1
        job = {"job": number, "source": source, "path": str(path), "timeout": timeout,
               "memory_mb": memory_mb, "trace_only": trace_only, "trace_budget": trace_budget}
        if trace_iterations is not _DEFAULT:
            job["trace_iterations"] = trace_iterations
        self._queue.append(_Job(number, str(path), _frame(job), timeout))
        self._pump()
        return number

    def poll(self) -> list:
        """Every Progress, Output, Done and Failed since the last call (never blocks)."""
        if self._closed:
            return []
        self._pump()
        messages, self._outbox = self._outbox, []
        return messages

    @property
    def busy(self) -> bool:
        """A submitted job has not had its Done or Failed yet."""
        return bool(self._queue) or (self._running is not None and not self._running.over)

    def cancel(self, job: int | None = None) -> None:
        """Stop the running job (its process is killed; the warm process stays or a new one is
        warmed) and drop the queued ones; with ``job``, only that one. Each gets Failed("cancelled")."""
        for queued in [j for j in self._queue if job is None or j.number == job]:
            self._queue.remove(queued)
            self._finish(queued, Failed(queued.number, f"{queued.name}: cancelled"))
        running = self._running
        if running is not None and (job is None or running.number == job):
            self._kill_job(running)
            self._finish(running, Failed(running.number, f"{running.name}: cancelled"))
        self._pump()

    def run(self, source: str, path, *, timeout: float | None = 60.0, memory_mb: float | None = 2048,
            trace_only=None, trace_budget: int | None = None, trace_iterations=_DEFAULT, on_message=None):
        """Run a script to the end and return its ScriptResult; WorkerError if it has none.
        ``on_message`` receives the job's Progress and Output messages as they come."""
        number = self.submit(source, path, timeout=timeout, memory_mb=memory_mb, trace_only=trace_only,
                             trace_budget=trace_budget, trace_iterations=trace_iterations)
        others, finished = [], False
        try:
            while True:
                for message in self.poll():
                    if message.job != number:
                        others.append(message)
                        continue
                    if isinstance(message, Done):
                        finished = True
                        return message.result
                    if isinstance(message, Failed):
                        finished = True
                        raise WorkerError(message.message, message.line)
                    if on_message is not None:
                        on_message(message)
                self._wait(0.05)
        finally:
            if not finished and not self._closed:      # interrupted (Ctrl-C): never leave it running
                self.cancel(number)
                self._outbox = [m for m in self._outbox if m.job != number]
            self._outbox[:0] = others

    def close(self) -> None:
        """Kill every worker process; the worker cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        for child in self._children:
            child.close()
        self._children.clear()
        self._queue.clear()
        self._running = None
        if self._spill_dir:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    # -- machinery ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this ScriptWorker is closed")

    def _idle(self) -> _Child | None:
        return next((c for c in self._children if c.ready and c.job is None and not c.spent and c.alive),
                    None)

    def _ensure_spare(self) -> None:
        """Keep one process warming or idle (with forks, the one process serves every job)."""
        live = [c for c in self._children if c.alive]
        if self.forks and live:
            return
        if any(c.job is None and not c.spent for c in live):
            return
        if not self._spill_dir or not os.path.isdir(self._spill_dir):
            self._spill_dir = _spill_dir()
        self._children.append(_Child(self.forks, self.target, self._spill_dir))

    def _wait(self, seconds: float) -> None:
        fds = [fd for child in self._children for fd in child.fds()]
        if fds:
            with contextlib.suppress(OSError, ValueError):
                select.select(fds, [], [], seconds)
        else:
            time.sleep(seconds)

    def _finish(self, job: _Job, message) -> None:
        if not job.over:
            job.over = True
            self._outbox.append(message)
        if self._running is job and job.child is None:
            self._running = None

    def _kill_job(self, job: _Job) -> None:
        child = job.child
        if child is None:
            return
        job.killed_at = time.monotonic()
        if child.forks and job.pid is not None and job.pid != child.process.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(job.pid, signal.SIGKILL)
        else:
            child.kill()

    def _pump(self) -> None:
        for child in list(self._children):
            self._read(child)
        self._check_deadlines()
        self._start_next()
        if self._running is not None or self._queue:
            self._ensure_spare()

    def _read(self, child: _Child) -> None:
        messages, err = child.read()
        job = child.job
        if err and job is not None and not job.over:
            self._outbox.append(Output(job.number, err, "stderr"))
        for message in messages:
            if isinstance(message, _Ready):
                child.ready, child.forks = True, message.forks
            elif isinstance(message, _Started):
                if job is not None and job.number == message.job:
                    job.pid = message.pid
            elif isinstance(message, _Alarm):
                if job is not None and job.number == message.job:
                    job.alarm_line = message.line
            elif isinstance(message, _Ended):
                if job is not None and job.number == message.job:
                    self._end_job(child, job, message.code)
                    job = None
            elif job is not None and message.job == job.number and not job.over:
                if isinstance(message, (Done, Failed)):
                    job.over = True
                self._outbox.append(message)
        if not child.alive:
            code = child.process.poll()
            if code is None and child.eof:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = child.process.wait(timeout=1.0)
            if child.job is not None:
                self._end_job(child, child.job, code)
            elif not child.ready:
                self._fail_queue(child)
            self._children.remove(child)
            child.close()

    def _end_job(self, child: _Child, job: _Job, code: int | None) -> None:
        child.job = None
        if self._running is job:
            self._running = None
        if not job.over:
            line = job.alarm_line
            if job.timed_out:
                reason = f"the script ran longer than the time limit ({job.timeout:g} s)"
            else:
                reason = _exit_reason(code)
                detail = child.last_stderr_line()
                if detail and code not in (None, -signal.SIGKILL):
                    reason += f": {detail}"
            self._finish(job, Failed(job.number, _prefix(job.path, line) + reason, line))

    def _fail_queue(self, child: _Child) -> None:
        """The process died while warming: the queued jobs cannot run."""
        detail = child.last_stderr_line() or _exit_reason(child.process.poll())
        for job in self._queue:
            self._finish(job, Failed(job.number, f"{job.name}: the worker process could not start: {detail}"))
        self._queue.clear()

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        job = self._running
        if job is not None and job.child is not None:
            if job.killed_at is None and now > job.deadline():
                job.timed_out = True
                self._kill_job(job)
            elif job.killed_at is not None and now - job.killed_at > REAP_TIMEOUT:
                job.child.kill()                       # the warm process did not report: replace it
        for child in list(self._children):
            if not child.ready and child.alive and now - child.started > WARM_TIMEOUT:
                child.kill()
                child.stderr_tail += b"\nit did not start within %d s" % WARM_TIMEOUT
                self._read(child)

    def _start_next(self) -> None:
        while self._running is None and self._queue:
            child = self._idle()
            if child is None:
                self._ensure_spare()
                return
            job = self._queue.pop(0)
            try:
                child.send(job.payload)
            except OSError:
                child.kill()
                if not job.retried:                   # the idle process died: once more on a new one
                    job.retried = True
                    self._queue.insert(0, job)
                    self._ensure_spare()
                    return
                self._finish(job, Failed(job.number, f"{job.name}: {_exit_reason(child.process.poll())}"))
                continue
            child.stderr_tail = b""
            job.child, job.started = child, time.monotonic()
            job.heard = job.started
            child.job = job
            self._running = job
            if not child.forks:
                child.spent = True
                self._ensure_spare()


