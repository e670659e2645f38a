"""Opening and saving a large scenario never block the window (issue 12): a TOML file over
``ASYNC_OPEN_BYTES`` is loaded in a worker, a large document is written by one, and the window goes on
turning meanwhile; Cancel (or Esc) and opening another file drop a load, an edit made during a save
keeps the document modified, and closing the window during a save waits for the complete file.

The files here are about 0.5 MB (400 rows of 64 full-precision features): over the thresholds, quick
to load. No assertion on wall-clock time: the worker's function is held at its end (``Gate``) until
the test has seen what it looks for while the job is pending (the event loop ticking, a click on
Cancel, another open, an edit), so the checks do not depend on how fast this machine parses.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6 import QtCore

from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, dumps, load
from tests.ui.conftest import finish, screenshot
from ui import file_jobs
from ui.main_window import settings

Qt = QtCore.Qt
TIMEOUT_MS = 60_000
HOLD_S = 30.0                  # a gate lets its worker go after this long whatever happens


def big_text(title: str = "big data", rows: int = 400, features: int = 64, bad: bool = False) -> str:
    """A scenario with ``rows`` x ``features`` inline values (full precision: ~1.3 KB a row) on a small
    64-8-10 MLP, 3 steps; ``bad``: a string among the numbers near the end of the data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, features))
    y = (x @ rng.standard_normal((features, 10))).argmax(axis=1)
    lines = ["[" + ", ".join(repr(float(v)) for v in row) + "]" for row in x]
    if bad:
        lines[-3] = '["oops"' + lines[-3][lines[-3].index(","):]
    return (f'[scenario]\ntitle = "{title}"\nseed = 0\n\n[model]\nlayers = [{features}, 8, 10]\n'
            'activation = "tanh"\n\n[data]\nx = [\n' + ",\n".join(lines) + f"\n]\ny = {[int(c) for c in y]}\n\n"
            '[loss]\nkind = "cross_entropy"\n\n[optimizer]\nkind = "adam"\nlr = 0.001\n\n[loop]\nsteps = 3\n')


def big_file(tmp_path, name: str = "big.toml", **kwargs):
    path = tmp_path / name
    path.write_text(big_text(**kwargs), encoding="utf-8")
    assert path.stat().st_size > file_jobs.ASYNC_OPEN_BYTES
    return path


class Gate:
    """Holds ``ui.file_jobs.load`` / ``save`` in the worker, after their real work, until ``release()``
    (only for the paths in ``held``, every path when it is empty)."""

    def __init__(self, monkeypatch, name: str, *held):
        self.held = {str(p) for p in held}
        self.event = threading.Event()
        self.entered = threading.Event()
        real = getattr(file_jobs, name)

        def gated(*args, **kwargs):
            result = real(*args, **kwargs)
            path = str(args[-1] if name == "save" else args[0])
            if not self.held or path in self.held:
                self.entered.set()
                self.event.wait(HOLD_S)
            return result
        monkeypatch.setattr(file_jobs, name, gated)

    def release(self) -> None:
        self.event.set()


class Ticker(QtCore.QObject):
    """A 10 ms timer: its ticks while ``window.files`` has a job pending, and the longest gap."""

    def __init__(self, window, enough: int = 0, then=None):
        super().__init__()
        self.window, self.enough, self.then = window, enough, then
        self.pending_ticks, self.longest, self._last = 0, 0.0, time.perf_counter()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest, self._last = max(self.longest, now - self._last), now
        if self.window.files.busy:
            self.pending_ticks += 1
            if self.pending_ticks == self.enough and self.then is not None:
                self.then()


def recent() -> list[str]:
    value = settings().value("recent") or []
    return [value] if isinstance(value, str) else list(value)


def edit_lr(qtbot, window, value: str) -> None:
    """Type a learning rate into the Controls' lr field and press Enter, as a user does."""
    edit = window.controls.lr_edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, value)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def lr(scenario) -> float:
    return float(scenario.optimizer.hyper["lr"])


# ------------------------------------------------------------------------------------------ opening


def test_a_large_file_opens_in_a_worker_while_the_event_loop_turns(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    path = big_file(tmp_path)
    gate = Gate(monkeypatch, "load")
    ticker = Ticker(window, enough=5, then=gate.release)     # the load ends once the loop has turned 5 times
    assert window.open_path(path)                        # started, not opened yet
    files = window.files
    job = files._open.job
    assert files.opening and job is not None and not job.ended.is_set()
    assert window.document.path == bundled_path(DEFAULT_SCENARIO)
    assert files.label.isVisible() and files.label.text() == "Opening big.toml… (Esc to stop)"
    assert files.cancel_button.isVisible() and files.bar.isVisible()
    screenshot(window, "window_opening_large_file")         # the status bar: note, busy bar, Cancel
    qtbot.waitUntil(lambda: not files.busy, timeout=TIMEOUT_MS)
    ticker.timer.stop()
    print(f"\n{ticker.pending_ticks} ticks while the file loaded; longest gap {ticker.longest * 1000:.0f} ms")
    assert ticker.pending_ticks >= 5 and job.ended.is_set()
    finish(window)
    doc = window.document
    assert doc.path == path and doc.scenario.title == "big data" and not doc.modified
    assert np.asarray(doc.scenario.data.x).shape == (400, 64)
    assert window.windowTitle() == "big data — big.toml — GradViz"
    assert recent()[0] == str(path.resolve())
    assert not files.label.isVisible() and not files.cancel_button.isVisible()
    assert window.replay is not None and window.graph.visible_node_count() > 0     # its run and trace


def test_cancel_and_esc_leave_the_previous_scenario_open(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    path = big_file(tmp_path)
    title, nodes = window.windowTitle(), window.graph.visible_node_count()
    gate = Gate(monkeypatch, "load")
    files = window.files
    jobs = []
    for stop in ("click", "esc"):
        assert window.open_path(path)
        jobs.append(files._open.job)
        if stop == "click":
            qtbot.mouseClick(files.cancel_button, Qt.MouseButton.LeftButton)
        else:
            window.activateWindow()
            qtbot.keyClick(window.graph, Qt.Key.Key_Escape)
        assert not files.opening and not files.label.isVisible() and not files.cancel_button.isVisible()
        assert window.statusBar().currentMessage() == "Stopped opening big.toml"
    gate.release()
    assert all(job.join(HOLD_S) for job in jobs)           # the dropped loads end in their threads ...
    qtbot.wait(100)
    finish(window)
    doc = window.document                                # ... and change nothing
    assert doc.path == bundled_path(DEFAULT_SCENARIO) and window.windowTitle() == title
    assert window.graph.visible_node_count() == nodes and str(path.resolve()) not in recent()
    assert not files.act_cancel.isEnabled() and files.act_cancel.shortcut().isEmpty()   # Esc is free again


def test_a_bad_large_file_shows_its_one_line_error_and_the_app_goes_on(qtbot, make_window, tmp_path, no_dialogs):
    window = make_window()
    bad = big_file(tmp_path, "bad_data.toml", bad=True)
    title = window.windowTitle()
    assert window.open_path(bad) and window.files.opening
    qtbot.waitUntil(lambda: len(no_dialogs) == 1, timeout=TIMEOUT_MS)
    message = no_dialogs[0]
    assert "\n" not in message and message.startswith(str(bad)) and "oops" in message
    assert window.statusBar().currentMessage() == message
    assert window.document.path == bundled_path(DEFAULT_SCENARIO) and window.windowTitle() == title
    assert str(bad.resolve()) not in recent() and not window.files.label.isVisible()
    good = big_file(tmp_path, "good.toml", title="good data")       # the window goes on: the next one opens
    window.open_path(good)
    finish(window)
    assert window.document.path == good and len(no_dialogs) == 1


def test_opening_another_file_while_one_loads_ends_with_the_other(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window()
    first = big_file(tmp_path, "first.toml", title="first")
    second = big_file(tmp_path, "second.toml", title="second")
    gate = Gate(monkeypatch, "load", first)                   # only the first load is held
    assert window.open_path(first)
    held = window.files._open.job
    assert window.open_path(second)                           # a large one: loads in its turn
    assert window.files.label.text().startswith("Opening second.toml")
    finish(window)
    assert window.document.path == second and window.document.scenario.title == "second"
    gate.release()
    held.join(HOLD_S)
    qtbot.wait(100)
    assert window.document.path == second                     # the first one's end is nobody's

    gate.event.clear()
    assert window.open_path(first)                            # and a small file while a large one loads
    held = window.files._open.job
    small = bundled_path("06_saddle_point")
    assert window.open_path(small) and not window.files.opening
    assert window.document.path == small                      # opened in the call
    gate.release()
    held.join(HOLD_S)
    qtbot.wait(100)
    finish(window)
    assert window.document.path == small and recent()[0] == str(small.resolve())


def test_small_files_and_scripts_still_open_in_the_call(make_window, tmp_path):
    window = make_window()
    small = tmp_path / "small.toml"
    small.write_text(bundled_path("08_tanh_neuron").read_text())
    assert window.open_path(small) and window.document.path == small and not window.files.busy


def test_a_large_file_named_on_the_command_line_opens(qtbot, make_window, tmp_path):
    path = big_file(tmp_path)
    window = make_window(path)                                # make_window(path) then finish()
    assert window.document.path == path and recent()[0] == str(path.resolve())


# ------------------------------------------------------------------------------------------- saving


def patch_save_dialog(monkeypatch, path) -> None:
    from PySide6 import QtWidgets
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def test_saving_a_large_document_in_a_worker(qtbot, make_window, tmp_path, monkeypatch):
    window = make_window(big_file(tmp_path))
    doc = window.document
    edit_lr(qtbot, window, "0.002")
    finish(window)
    assert doc.modified and lr(doc.scenario) == 0.002
    target = tmp_path / "saved.toml"
    patch_save_dialog(monkeypatch, target)
    window.act_save_as.trigger()
    assert window.files.saving and not window.files.label.isVisible()   # a quick save does not flash a note
    assert not window.files.cancel_button.isVisible()         # a save is not cancelled: it is bounded
    finish(window)
    assert dumps(load(target)) == dumps(doc.scenario)           # what is on disk loads back equal
    assert doc.path == target and not doc.modified and not window.windowTitle().startswith("*")
    assert "saved.toml" in window.windowTitle() and recent()[0] == str(target.resolve())
    assert window.statusBar().currentMessage() == f"Saved {target}"

    # an edit made while the save is written: the file has what was saved, the document stays modified
    edit_lr(qtbot, window, "0.003")
    finish(window)
    gate = Gate(monkeypatch, "save")
    saved_scenario = doc.scenario
    window.act_save.trigger()                                  # in place now: no dialog
    assert window.files.saving
    qtbot.waitUntil(gate.entered.is_set, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.files.label.isVisible(), timeout=TIMEOUT_MS)    # a long one says so
    assert window.files.label.text() == "Saving saved.toml…" and window.files.bar.isVisible()
    assert not window.files.cancel_button.isVisible()
    edit_lr(qtbot, window, "0.004")
    assert doc.modified and lr(doc.scenario) == 0.004
    gate.release()
    finish(window)
    assert lr(load(target)) == 0.003 and dumps(load(target)) == dumps(saved_scenario)
    assert doc.modified and window.windowTitle().startswith("*") and doc.path == target
    assert doc.scenario.path == target and doc.scenario.source_text == target.read_text(encoding="utf-8")
    window.act_save.trigger()                                  # the next save writes the edit
    finish(window)
    assert lr(load(target)) == 0.004 and not doc.modified


def test_a_failed_large_save_says_one_line_and_keeps_the_document_modified(qtbot, make_window, tmp_path,
                                                                           monkeypatch, no_dialogs):
    window = make_window(big_file(tmp_path))
    edit_lr(qtbot, window, "0.002")
    finish(window)
    target = tmp_path / "read_only.toml"
    target.write_text("x = 1\n")
    target.chmod(0o444)
    patch_save_dialog(monkeypatch, target)
    window.act_save_as.trigger()
    finish(window)
    assert len(no_dialogs) == 1 and no_dialogs[0].startswith(f"Could not save {target}: ")
    assert "\n" not in no_dialogs[0] and ".tmp" not in no_dialogs[0]
    assert target.read_text() == "x = 1\n" and window.document.modified


def test_closing_the_window_during_a_save_leaves_the_whole_file(qtbot, make_window, tmp_path, monkeypatch,
                                                                no_dialogs):
    window = make_window(big_file(tmp_path))
    doc = window.document
    edit_lr(qtbot, window, "0.002")
    finish(window)
    target = tmp_path / "closing.toml"
    patch_save_dialog(monkeypatch, target)
    gate = Gate(monkeypatch, "save")
    window.act_save_as.trigger()
    assert window.files.saving and doc.modified
    QtCore.QTimer.singleShot(200, gate.release)                # the save ends while the window closes
    window.close()
    assert not window.isVisible() and not window.files.busy
    assert no_dialogs == []                                    # saved: no "unsaved changes?" question
    assert load(target).optimizer.hyper["lr"] == 0.002 and dumps(load(target)) == dumps(doc.scenario)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("large", [False, True])
def test_save_then_open_another_file_asks_once(qtbot, make_window, tmp_path, monkeypatch, large):
    """Unsaved edits, Save chosen when opening another file: the save (in a worker when large) is on
    disk before the other file replaces the document."""
    from PySide6 import QtWidgets
    B = QtWidgets.QMessageBox.StandardButton
    window = make_window(big_file(tmp_path) if large else None)
    doc = window.document
    edited = doc.editable_copy()
    edited.optimizer.hyper["lr"] = 0.0123
    doc.edit(edited)
    finish(window)
    target = doc.path if large else tmp_path / "answer.toml"     # the tutorial is bundled: Save asks where
    patch_save_dialog(monkeypatch, target)
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: asked.append(a) or B.Save))
    window.open_path(bundled_path("06_saddle_point"))
    finish(window)
    assert len(asked) == 1 and lr(load(target)) == 0.0123
    assert doc.path == bundled_path("06_saddle_point") and not doc.modified
