"""Opening a large scenario file and saving a scenario happen off the UI thread (issue 12).

``FileJobs(window)`` belongs to a MainWindow. Parsing and validating a 2 MB TOML file, or rendering
and writing one, took 0.1-0.6 s of the event loop; here that part, which needs no Qt, runs in a
``Job`` (ui/run_thread.py) watched by a ``JobSlot``'s timer, and only its end comes back to the UI
thread:

- ``open(path)``: a regular ``.toml`` file of ``ASYNC_OPEN_BYTES`` or more is loaded
  (``gradviz.scenario.load``) in a worker; smaller files and scripts stay synchronous (the window
  opens them in the call). The status bar says "Opening NAME… (Esc to stop)" with a Cancel button;
  Cancel, Esc, opening another file or closing the window drop the load and the scenario on screen
  stays. Once loaded, ``document.set_scenario`` (on the UI thread), the recent files and the focus,
  as a synchronous open does; an error is the loader's one-line message, as before.
- ``save(path)`` (File ▸ Save / Save As): a TOML document is written by ``gradviz.scenario.save`` in
  a worker, the status bar saying "Saving NAME…" once it takes longer than ``SAVE_NOTE_MS``. Even a
  small file's save loads the text it wrote back to check it: 60-120 ms of the event loop for the
  largest expression, whose parameters' 166 lines tomlkit parses twice. A script is written in the
  call (its text, no check). The worker saves a shallow copy of the Scenario:
  an edit never changes a Scenario in place (``Document.edit`` takes an edited copy,
  ``edits.editable_copy``), so the copy and the document share only values nobody writes, and what
  ``save`` records on the copy (its path and text) is moved to the document on the UI thread. The
  document is marked unmodified only if it is still the Scenario that was saved (an edit made
  during the save keeps it modified). A save is not cancelled (it is bounded, and atomic):
  ``finish_save()`` waits for it, with the window still painting, before anything asks whether
  there are unsaved changes (opening another file, closing the window).

``wait()`` delivers the job in progress now (tests, benchmarks).

GIL: the loader and the saver compute in Python for 0.1-0.6 s, and a thread computing in Python
keeps the GIL until another has waited for it for the switch interval (5 ms), which the UI thread
then pays at every return to Python while it paints. A ``Job`` pauses after every slice it computed
(``run_thread.breathing``), and the UI thread finds the GIL free. A single long C call (converting a
100,000-number array) is not cut.
"""
from __future__ import annotations

import copy
import os
import stat
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from gradviz.scenario import ScenarioError, load, save

from .run_thread import JobSlot

ASYNC_OPEN_BYTES = 256 * 1024     # a TOML file this large is loaded in a worker
SAVE_NOTE_MS = 300                # a save still being written after this long says so in the status bar
POLL_MS = 20                      # how often the UI thread looks whether a job has ended
SAVE_WAIT_S = 120.0               # finish_save's limit (a save at the documented limits takes < 1 s)


def open_error(path: Path, exc: BaseException) -> str:
    """The one-line message for a file that did not open (as ``MainWindow.load`` says it)."""
    if isinstance(exc, ScenarioError):
        return str(exc)
    if isinstance(exc, (OSError, UnicodeDecodeError)):
        return f"{path}: {getattr(exc, 'strerror', None) or exc}"
    return f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def is_large_file(path: Path) -> bool:
    """A regular file of ``ASYNC_OPEN_BYTES`` or more (anything else is for the loader to refuse)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size >= ASYNC_OPEN_BYTES


class FileJobs(QtCore.QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.document = window.document
        self._open = JobSlot(self, self._open_ended, POLL_MS)
        self._save = JobSlot(self, self._save_ended, POLL_MS)
        self._generation = 0                     # counts the documents opened (a save ends in its own)
        self._save_ok = True                     # the last save's outcome (finish_save)
        self._before: tuple | None = None        # (scenario, source) when the pending open started
        self.document.opened.connect(self._on_opened)

        self.label = QtWidgets.QLabel()
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 0)                  # busy: the loader does not say how far it is
        self.bar.setFixedWidth(90)
        self.bar.setTextVisible(False)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(lambda: self.cancel_open())
        self.act_cancel = window._action("Stop opening", lambda: self.cancel_open(), None,
                                         "Stop opening the file (Esc)")
        self.act_cancel.setEnabled(False)
        for widget in (self.label, self.bar, self.cancel_button):
            widget.setVisible(False)
            window.statusBar().addPermanentWidget(widget)

    # -- state ----------------------------------------------------------------------------------
    @property
    def opening(self) -> bool:
        """A file is being loaded in a worker."""
        return self._open.running()

    @property
    def saving(self) -> bool:
        """A document is being written in a worker."""
        return self._save.running()

    @property
    def busy(self) -> bool:
        return self.opening or self.saving

    def wait(self, timeout: float = 120.0) -> None:
        """Block until the jobs in progress end, and deliver them now (tests, benchmarks)."""
        self._save.wait(timeout)
        self._open.wait(timeout)

    def _on_opened(self) -> None:
        self._generation += 1

    def _show(self) -> None:
        """The status bar's note, busy bar and Cancel button say what is in progress."""
        job = self._open.job or self._save.job
        opening = self._open.job is not None
        if job is not None:
            self.label.setText(job.label)
            self.label.setToolTip(str(job.key[0]))
            self.cancel_button.setToolTip(f"Stop opening {job.key[0].name} (Esc)")
        for widget in (self.label, self.bar):
            widget.setVisible(job is not None)
        self.cancel_button.setVisible(opening)
        self.act_cancel.setEnabled(opening)
        self.act_cancel.setShortcut("Esc" if opening else "")    # Esc is the window's only while opening

    # -- opening ----------------------------------------------------------------------------------
    def open(self, path: Path) -> bool:
        """Start loading ``path`` in a worker if it is a large TOML file: True when started (the
        document changes once it is loaded), False when the caller opens it now. Either way a load
        in progress is dropped."""
        self.cancel_open(quiet=True)
        path = Path(path)
        if path.suffix == ".py" or not is_large_file(path):
            return False
        doc = self.document
        self._before = (doc.scenario, doc.source)
        job = self._open.start(lambda _progress: load(path), (path,))
        job.label = f"Opening {path.name}… (Esc to stop)"
        self._show()
        return True

    def cancel_open(self, quiet: bool = False) -> None:
        """Drop the load in progress (its worker finishes parsing; nobody reads the result)."""
        job = self._open.job
        if job is None:
            return
        self._open.drop()
        self._show()
        if not quiet:
            self.window.statusBar().showMessage(f"Stopped opening {job.key[0].name}", 4000)

    def _open_ended(self, job) -> None:
        (path,) = job.key
        self._show()
        window, doc = self.window, self.document
        if job.exception is not None:
            window.show_error(open_error(path, job.exception))
            return
        # edited while the file loaded (the question was asked before the load): ask again
        if doc.modified and self._before != (doc.scenario, doc.source) and not window.maybe_discard():
            return
        doc.set_scenario(job.result, path)
        window.add_recent(path)
        window.graph.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)   # the keys step through it

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: Path) -> bool:
        """Save the document to ``path`` (``MainWindow._save_to``): True when saved, or when a worker
        has started writing a scenario; an error is shown as one line."""
        self.finish_save()                       # one save at a time, in order
        doc, window = self.document, self.window
        if doc.is_script or doc.scenario is None:
            try:
                doc.save(path)
            except (ScenarioError, OSError) as exc:
                window.show_error(f"Could not save {path}: {exc}")
                return False
            self._saved(path)
            return True
        scenario = doc.scenario
        snapshot = copy.copy(scenario)           # save() records the path and text on it, not on ours
        job = self._save.start(lambda _progress: save(snapshot, path),
                               (Path(path), scenario, snapshot, self._generation))
        job.label = f"Saving {Path(path).name}…"
        QtCore.QTimer.singleShot(SAVE_NOTE_MS, self, lambda: self._save.job is job and self._show())
        return True

    def finish_save(self) -> bool:
        """Wait for the save in progress, if any, and deliver it; the window keeps painting and its
        timers run meanwhile, the user's clicks and keys wait. True when the last save succeeded."""
        job = self._save.job
        if job is None:
            return self._save_ok
        loop = QtCore.QEventLoop()
        check = QtCore.QTimer()
        check.setInterval(5)
        check.timeout.connect(lambda: loop.quit() if job.ended.is_set() else None)
        check.start()
        if not job.ended.is_set():
            loop.exec(QtCore.QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        check.stop()
        job.join(SAVE_WAIT_S)                    # (had the loop been told to quit early)
        if self._save.job is job:
            self._save.poll()
        return self._save_ok

    def _save_ended(self, job) -> None:
        path, scenario, snapshot, generation = job.key
        self._show()
        if job.exception is not None:
            self._save_ok = False
            exc = job.exception
            why = exc if isinstance(exc, (ScenarioError, OSError)) else job.error
            self.window.show_error(f"Could not save {path}: {why}")
            return
        self._save_ok = True
        scenario.path, scenario.source_text = snapshot.path, snapshot.source_text
        doc = self.document
        if generation == self._generation and not doc.is_script:    # the same document, maybe edited since
            doc.mark_saved(path, scenario)
        self._saved(path)

    def _saved(self, path: Path) -> None:
        self.window.add_recent(path)
        self.window._update_title()              # Save As of an unmodified document changes only the name
        self.window.statusBar().showMessage(f"Saved {path}", 4000)
