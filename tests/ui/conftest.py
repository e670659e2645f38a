"""UI test fixtures: a factory that builds main windows, waits for their runs, and closes them.

Like napari's ``make_napari_viewer``: every window a test makes is closed at the end, and a test
that leaves extra top-level widgets behind fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ui.dashboard_rig import rig  # noqa: F401  (the dashboards rig fixture, for every UI test)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config):
    config.addinivalue_line("markers", "first_run: the settings are a first launch's (the welcome shows)")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch, request):
    """QSettings (recent files, window layout) go to a temporary place, never the user's. The
    first-launch welcome counts as seen there, unless the test is marked ``first_run``."""
    from PySide6 import QtCore
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    if request.node.get_closest_marker("first_run") is None:
        from ui.dialogs import settings
        from ui.welcome import SEEN_KEY
        settings().setValue(SEEN_KEY, True)
    yield


@pytest.fixture
def no_dialogs(monkeypatch):
    """Record message boxes instead of showing them (a modal box would hang an offscreen test)."""
    from PySide6 import QtWidgets
    shown = []
    B = QtWidgets.QMessageBox.StandardButton

    def warning(parent, title, text, *a, **k):
        shown.append(text)
        return B.Ok

    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", staticmethod(warning))
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", staticmethod(warning))
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda *a, **k: shown.append(a[2] if len(a) > 2 else "") or B.Discard))
    return shown


@pytest.fixture
def make_window(qtbot, no_dialogs):
    """``make_window(path=None)`` -> a shown MainWindow whose runs have finished."""
    from PySide6 import QtCore, QtWidgets

    from ui.app import make_window as build

    before = {id(w) for w in QtWidgets.QApplication.topLevelWidgets()}
    made = []

    def factory(path: str | os.PathLike | None = None, *, wait: bool = True):
        window = build(str(path) if path else None)
        made.append(window)
        window.resize(1400, 860)
        window.show()
        qtbot.waitExposed(window)
        if wait:
            finish(window)
        return window

    yield factory
    for window in made:
        window.document.modified = False      # no "save changes?" prompt at teardown
        window.player.pause()
        window.close()
        window.deleteLater()
    QtWidgets.QApplication.processEvents()
    # processEvents() never runs deferred deletes posted at its own loop level: without this every
    # test's window (and its application-wide event filter, plots, worker) lived to the end of the
    # session, and each later test paid for all of them
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    import shiboken6
    leaked = [w for w in QtWidgets.QApplication.topLevelWidgets()
              if id(w) not in before and shiboken6.isValid(w) and w.isVisible()
              and not isinstance(w, QtWidgets.QMenu)]
    assert not leaked, f"widgets left open: {leaked}"


def finish(window) -> None:
    """Complete any run in progress and load the current iteration, as the event loop would."""
    window.files.wait()                   # a large file loaded (or saved) in a worker
    window.document.finish_now()
    from PySide6 import QtWidgets
    QtWidgets.QApplication.processEvents()
    window.traces.wait()                  # a long trace replayed in a worker
    window.graph.wait_built()             # a large graph built a slice at a time
    window.dashboards.finish_pending()    # plots made a few per event-loop turn (may start a landscape)
    window.dashboards.space.wait_landscape()   # ... and a long landscape computed in a worker
    window.dashboards.data.wait_evaluation()   # ... and a large data set's fit
    QtWidgets.QApplication.processEvents()


def screenshot(widget, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    widget.grab().save(str(path))
    return path
