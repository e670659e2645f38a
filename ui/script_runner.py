"""The app's side of the script worker: ``ScriptRunner`` turns the worker's messages into Qt
signals, one job at a time, so that nothing the UI thread does ever waits on a script.

The worker (``gradviz.training.worker.ScriptWorker``) is a separate, warm Python process; it is
made on the first ``warm()`` or ``submit()`` and kept for the next run (edit-to-picture stays
fast). Each ``submit`` returns a ticket; ``progress``, ``output``, ``done`` and ``failed`` carry it.
Jobs queue behind the one running (``front=True`` puts one at the head of the queue);
``cancel()`` kills the running job (the worker restarts itself warm) and drops the queued ones,
``cancel(ticket)`` only that job; ``close()`` ends the worker process.

The worker is only ever touched by a helper thread of the runner: it polls the worker's pipes and
*unpickles* what arrives there (a large result takes hundreds of milliseconds to read), and hands
the messages to the UI thread through a queued signal. The UI thread only sends it commands
(submit, cancel, close) and emits the public signals, so the window never blocks on a result.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time

from PySide6 import QtCore

POLL_S = 0.02                        # how long the helper thread waits on the worker's pipes per look


def make_worker():
    """A new ScriptWorker (looked up when a runner first needs one: tests may share one worker)."""
    from gradviz.training.worker import ScriptWorker
    return ScriptWorker()


class _Poller(threading.Thread):
    """Owns the worker: runs the UI thread's commands, polls, and posts ``(ticket, message)``."""

    def __init__(self, runner: ScriptRunner, make):
        super().__init__(name="gradviz-script-runner", daemon=True)
        self.runner, self.make = runner, make
        self.commands: queue.Queue = queue.Queue()
        self.worker = None
        self.jobs: dict = {}              # worker job id -> ticket
        self.stopped = False

    def _ensure(self):
        if self.worker is None:
            self.worker = self.make()
        return self.worker

    def run(self) -> None:
        while not self.stopped:
            self._commands(block=self.worker is None or not self.jobs)
            worker = self.worker
            if self.stopped or worker is None or not self.jobs:
                continue
            try:
                messages = worker.poll()
            except Exception as exc:
                messages = [_Lost(job, f"the script worker stopped answering: {exc}") for job in self.jobs]
            for message in messages:
                ticket = self.jobs.get(getattr(message, "job", None))
                if ticket is None:
                    continue                 # a late word from a cancelled job
                if type(message).__name__ in ("Done", "Failed", "_Lost"):
                    self.jobs.pop(message.job, None)
                self.runner._post(ticket, message)
            if self.jobs and not messages:
                wait = getattr(worker, "_wait", None)
                if wait is not None:
                    wait(POLL_S)
                else:
                    time.sleep(POLL_S)

    def _commands(self, block: bool) -> None:
        """Run the commands that came; while idle, wait a little for one."""
        while not self.stopped:
            try:
                command, *args = self.commands.get(timeout=POLL_S * 5) if block else self.commands.get_nowait()
            except queue.Empty:
                return
            block = False
            try:
                getattr(self, "_" + command)(*args)
            except Exception as exc:         # never let the helper thread die on a command
                if command == "submit":
                    path = args[2]
                    self.runner._post(args[0], _Lost(None, f"{getattr(path, 'name', path)}: could not start "
                                                           f"the script worker: {exc}"))

    def _warm(self) -> None:
        worker = self._ensure()
        if hasattr(worker, "warm"):
            worker.warm()

    def _submit(self, ticket: int, source: str, path, options: dict) -> None:
        job = self._ensure().submit(source, str(path), **options)
        self.jobs[job] = ticket

    def _cancel(self, ticket: int | None) -> None:
        for job, owner in list(self.jobs.items()):
            if ticket is None or owner == ticket:
                del self.jobs[job]
                if self.worker is not None:
                    self.worker.cancel(job) if _takes_job(self.worker) else self.worker.cancel()

    def _close(self) -> None:
        self.stopped = True
        self.jobs.clear()
        if self.worker is not None:
            worker, self.worker = self.worker, None
            worker.close()


def _takes_job(worker) -> bool:
    import inspect
    try:
        return "job" in inspect.signature(worker.cancel).parameters
    except (TypeError, ValueError):
        return False


class ScriptRunner(QtCore.QObject):
    progress = QtCore.Signal(int, int, float)       # ticket, iterations done, seconds elapsed
    output = QtCore.Signal(int, str)                # ticket, printed text as it comes
    done = QtCore.Signal(int, object)               # ticket, ScriptResult (its .error may be set)
    failed = QtCore.Signal(int, str, int)           # ticket, one line (worker died, cancelled), its line (0)
    _arrived = QtCore.Signal()                      # the helper thread posted messages (queued)

    def __init__(self, parent=None, make_worker=None):
        super().__init__(parent)
        self._make_worker = make_worker
        self._poller: _Poller | None = None
        self._inbox: queue.Queue = queue.Queue()
        self._queue: list[tuple[int, str, object, dict]] = []
        self._running: int | None = None               # the ticket the worker runs
        self._next_ticket = 1
        self._arrived.connect(self._deliver, QtCore.Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    @property
    def running_ticket(self) -> int | None:
        return self._running

    def _thread(self) -> _Poller:
        if self._poller is None or not self._poller.is_alive():
            self._poller = _Poller(self, lambda: (self._make_worker or make_worker)())
            self._poller.start()
        return self._poller

    def _post(self, ticket: int, message) -> None:
        """(helper thread) a message arrived: the UI thread hands it on."""
        self._inbox.put((ticket, message))
        with contextlib.suppress(RuntimeError):      # the runner is being deleted
            self._arrived.emit()

    def warm(self) -> None:
        """Start the worker process now (it loads numpy and gradviz while the user reads)."""
        self._thread().commands.put(("warm",))

    def submit(self, source: str, path, *, front: bool = False, **options) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        job = (ticket, source, path, options)
        self._queue.insert(0, job) if front else self._queue.append(job)
        self._start_next()
        return ticket

    def _start_next(self) -> None:
        if self._running is not None or not self._queue:
            return
        ticket, source, path, options = self._queue.pop(0)
        self._running = ticket
        self._thread().commands.put(("submit", ticket, source, path, options))

    def poll(self) -> None:
        """Hand on whatever arrived since the last look (never blocks)."""
        self._deliver()

    def _deliver(self) -> None:
        while True:
            try:
                ticket, message = self._inbox.get_nowait()
            except queue.Empty:
                break
            if ticket != self._running:
                continue                     # a late word from a cancelled job
            kind = type(message).__name__
            if kind == "Progress":
                self.progress.emit(ticket, int(message.iterations), float(message.elapsed))
            elif kind == "Output":
                self.output.emit(ticket, message.text)
            elif kind == "Done":
                self._running = None
                self.done.emit(ticket, message.result)
                self._start_next()
            elif kind in ("Failed", "_Lost"):
                self._running = None
                self.failed.emit(ticket, message.message, int(getattr(message, "line", None) or 0))
                self._start_next()

    def cancel(self, ticket: int | None = None) -> None:
        """Stop the running job (the worker restarts warm) and forget the queued ones; with
        ``ticket``, only that job (queued or running): the next one starts."""
        if ticket is None:
            self._queue.clear()
        else:
            self._queue = [job for job in self._queue if job[0] != ticket]
        if self._running is not None and (ticket is None or self._running == ticket):
            self._thread().commands.put(("cancel", self._running))
            self._running = None
            self._start_next()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until every job is answered (tests and exports); signals fire as they would."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            self._deliver()
            if self.busy:
                time.sleep(0.005)
        if self.busy:
            self.cancel()
            raise TimeoutError(f"the script worker did not answer within {timeout:g} s")

    def close(self) -> None:
        self._queue.clear()
        self._running = None
        poller, self._poller = self._poller, None
        if poller is not None and poller.is_alive():
            poller.commands.put(("close",))
            poller.join(timeout=10.0)


class _Lost:
    """The worker's pipe broke: reported like the worker's own ``Failed``."""

    def __init__(self, job, message: str):
        self.job, self.message = job, message
