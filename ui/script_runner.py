"""The app's side of the script worker: ``ScriptRunner`` turns the worker's polled messages into Qt
signals, one job at a time, so that nothing the UI thread does ever waits on a script.

The worker (``gradviz.training.worker.ScriptWorker``) is a separate, warm Python process; it is
made on the first ``warm()`` or ``submit()`` and kept for the next run (edit-to-picture stays
fast). Each ``submit`` returns a ticket; ``progress``, ``output``, ``done`` and ``failed`` carry it.
Jobs queue behind the one running; ``cancel()`` kills the running job (the worker restarts itself
warm) and drops the queued ones; ``close()`` ends the worker process.
"""
from __future__ import annotations

import time

from PySide6 import QtCore

POLL_MS = 25                         # how often the UI thread looks at the worker's pipe while busy


def make_worker():
    """A new ScriptWorker (looked up when a runner first needs one: tests may share one worker)."""
    from gradviz.training.worker import ScriptWorker
    return ScriptWorker()


class ScriptRunner(QtCore.QObject):
    progress = QtCore.Signal(int, int, float)       # ticket, iterations done, seconds elapsed
    output = QtCore.Signal(int, str)                # ticket, printed text as it comes
    done = QtCore.Signal(int, object)               # ticket, ScriptResult (its .error may be set)
    failed = QtCore.Signal(int, str, int)           # ticket, one line (worker died, cancelled), its line (0)

    def __init__(self, parent=None, make_worker=None):
        super().__init__(parent)
        self._make_worker = make_worker
        self._worker = None
        self._queue: list[tuple[int, str, object, dict]] = []
        self._running: tuple[int, object] | None = None     # (ticket, worker job id)
        self._next_ticket = 1
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    def _ensure(self):
        if self._worker is None:
            self._worker = (self._make_worker or make_worker)()
        return self._worker

    def warm(self) -> None:
        """Start the worker process now (it loads numpy and gradviz while the user reads)."""
        worker = self._ensure()
        if hasattr(worker, "warm"):
            worker.warm()

    def submit(self, source: str, path, **options) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._queue.append((ticket, source, path, options))
        self._start_next()
        return ticket

    def _start_next(self) -> None:
        if self._running is not None or not self._queue:
            return
        ticket, source, path, options = self._queue.pop(0)
        try:
            job = self._ensure().submit(source, str(path), **options)
        except Exception as exc:        # no worker: say so for this job, never crash the window
            self.failed.emit(ticket, f"{getattr(path, 'name', path)}: could not start the script worker: {exc}", 0)
            self._start_next()
            return
        self._running = (ticket, job)
        self._timer.start()

    def poll(self) -> None:
        """Hand on whatever the worker said since the last look (never blocks)."""
        if self._running is None:
            self._timer.stop()
            return
        try:
            messages = self._worker.poll()
        except Exception as exc:
            messages = [_Lost(self._running[1], f"the script worker stopped answering: {exc}")]
        for message in messages:
            if self._running is None or getattr(message, "job", None) != self._running[1]:
                continue                     # a late word from a cancelled job
            ticket = self._running[0]
            kind = type(message).__name__
            if kind == "Progress":
                self.progress.emit(ticket, int(message.iterations), float(message.elapsed))
            elif kind == "Output":
                self.output.emit(ticket, message.text)
            elif kind == "Done":
                self._running = None
                self.done.emit(ticket, message.result)
            elif kind in ("Failed", "_Lost"):
                self._running = None
                self.failed.emit(ticket, message.message, int(getattr(message, "line", None) or 0))
        if self._running is None:
            self._start_next()
        if self._running is None:
            self._timer.stop()

    def cancel(self) -> None:
        """Stop the running job (the worker restarts warm) and forget the queued ones."""
        self._queue.clear()
        if self._running is not None:
            self._running = None
            self._timer.stop()
            if self._worker is not None:
                self._worker.cancel()

    def wait(self, timeout: float = 60.0) -> None:
        """Block until every job is answered (tests and exports); signals fire as they would."""
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            self.poll()
            if self.busy:
                time.sleep(0.005)
        if self.busy:
            self.cancel()
            raise TimeoutError(f"the script worker did not answer within {timeout:g} s")

    def close(self) -> None:
        self._queue.clear()
        self._running = None
        self._timer.stop()
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.close()


class _Lost:
    """The worker's pipe broke: reported like the worker's own ``Failed``."""

    def __init__(self, job, message: str):
        self.job, self.message = job, message
