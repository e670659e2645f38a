"""The window's part in running programs: the Run menu (Run Ctrl+R, Cancel, Time limit…), the
console dock, the status bar's run progress with its Cancel button, File ▸ Save as script…, and
what a failed run or a missing trace shows.

``ScriptActions(window)`` builds them on a MainWindow that has its Document, code panel and
status bar; it keeps the window's own module about the window.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .console import Console
from .dialogs import ask_time_limit, settings, trust

SCRIPT_FILTER = "Python scripts (*.py);;All files (*)"
TIME_LIMIT_KEY = "scripts/time_limit"


class ScriptActions(QtCore.QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        doc = self.document = window.document
        self.act_run = window._action("&Run", doc.run, "Ctrl+R", "Run the program in the code panel (Ctrl+R)",
                                      "play")
        self.act_run.setIconText("Run")
        self.act_cancel = window._action("&Cancel run", doc.cancel, None, "Stop the run in progress")
        self.act_cancel.setEnabled(False)
        self.act_time_limit = window._action("&Time limit…", self.ask_time_limit, None,
                                             "How long a script may run before it is stopped")
        self.act_save_as_script = window._action(
            "Save as s&cript…", self.save_as_script, None,
            "Write the PyTorch program of this scenario as a .py file and open it as a script")
        limit = settings().value(TIME_LIMIT_KEY)
        if limit is not None:
            doc.time_limit = float(limit)
        self.console = Console(doc)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.cancel_button.setToolTip("Stop the run in progress")
        self.cancel_button.clicked.connect(doc.cancel)
        self.cancel_button.setVisible(False)
        self._started = 0.0
        self.tracing: int | None = None          # the iteration whose trace is on its way
        doc.runStarted.connect(self._on_started)
        doc.runProgress.connect(self._on_progress)
        doc.runFinished.connect(self._on_finished)
        doc.scriptFailed.connect(self._on_failed)
        doc.traceReady.connect(self._on_trace_ready)
        # a script's values are its text: the Controls panel greys itself out and says so, and the
        # Inspector (what a click on a node shows) comes to the front of that dock instead
        doc.opened.connect(self._front_dock)

    def _front_dock(self) -> None:
        window = self.window
        (window.inspector_dock if window.document.is_script else window.controls_dock).raise_()

    def install(self, run_menu: QtWidgets.QMenu, file_menu: QtWidgets.QMenu, before: QtGui.QAction) -> None:
        """Fill the Run menu, put Save as script… in the File menu, the console dock below the code
        and the Cancel button in the status bar."""
        w = self.window
        run_menu.addActions([self.act_run, self.act_cancel])
        run_menu.addSeparator()
        run_menu.addAction(self.act_time_limit)
        file_menu.insertAction(before, self.act_save_as_script)
        self.console_dock = w._dock("Console", self.console, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        w.splitDockWidget(w.code_dock, self.console_dock, QtCore.Qt.Orientation.Vertical)
        w.view_menu.addAction(self.console_dock.toggleViewAction())
        w.statusBar().addPermanentWidget(self.cancel_button)

    # -- a run in progress ----------------------------------------------------------------------
    def _on_started(self) -> None:
        self._started = time.monotonic()
        scripted = self.document.is_script
        self.act_cancel.setEnabled(True)         # a TOML run is cancelled after its step in progress
        self.cancel_button.setVisible(True)
        if scripted:
            bar = self.window.progress
            bar.setRange(0, 0)                   # a script does not say how many iterations it has
            bar.setFormat(f"running {self.document.script_name}…")
            bar.setTextVisible(True)

    def _on_progress(self, done: int, total: int) -> None:
        if total == 0 and self.document.is_script:
            bar = self.window.progress
            bar.setRange(0, 0)
            bar.setFormat(f"iteration {done} · {time.monotonic() - self._started:.1f} s")

    def _on_finished(self) -> None:
        self.act_cancel.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.window.progress.setFormat("%p%")

    def _on_failed(self, message: str, _line: int) -> None:
        """One line in the status bar; the console (with the printed output) comes to the front. No
        dialog: a learner re-running an edit should not have to dismiss boxes."""
        self.window.statusBar().showMessage(message, 15000)
        self.console_dock.show()
        self.console_dock.raise_()

    # -- traces on demand -------------------------------------------------------------------------
    def request_trace(self, run, k: int) -> None:
        """Iteration ``k`` was run without keeping its trace: the worker records it (never blocking)."""
        if self.document.request_trace(run, k):
            self.tracing = k
            self.window.statusBar().showMessage(f"tracing iteration {k}…")
        else:
            self.window.statusBar().showMessage(f"iteration {k} has no trace to show", 6000)

    def _on_trace_ready(self, run, k: int) -> None:
        if self.tracing == k:
            self.tracing = None
            self.window.statusBar().clearMessage()
        if run is self.window.session and k == self.window.view_state.iteration:
            self.window._show_trace()

    # -- settings and files -----------------------------------------------------------------------
    def ask_time_limit(self) -> None:
        limit = ask_time_limit(self.window, self.document.time_limit)
        if limit is not None:
            self.document.time_limit = limit
            settings().setValue(TIME_LIMIT_KEY, limit)

    def save_as_script(self) -> bool:
        """Write the program the code panel shows (a TOML scenario's clean program, or a script's
        text) to a .py file and open that file as a script document (trusted: GradViz wrote it)."""
        doc, w = self.document, self.window
        text = w.code.toPlainText().rstrip("\n") + "\n"
        stem = doc.run_path.stem if doc.is_script or doc.path is None else doc.path.stem
        start = Path.home() / f"{stem}.py"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(w, "Save as PyTorch script", str(start), SCRIPT_FILTER)
        if not path:
            return False
        path = Path(path if path.endswith(".py") else path + ".py")
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            w.show_error(f"Could not write {path}: {exc}")
            return False
        trust(settings(), path, text)
        return w.open_path(path, confirm=False)
