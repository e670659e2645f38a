"""Scripts in the app, driven as a person does: open a .py file, play it, edit it in the code panel,
press Ctrl+R or Cancel, break it; assert on what the window shows.

Every window is closed by the ``make_window`` fixture, which ends its worker process. Scripts run
in the real worker (a warm process), so each test costs about a second.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario.bundled import bundled_dir
from tests.ui.conftest import finish, screenshot
from tests.ui.test_main_window import menu_action, patch_open_dialog, patch_save_dialog

Qt = QtCore.Qt
Key = Qt.Key
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
B = QtWidgets.QMessageBox.StandardButton
TUTORIAL = bundled_dir().parent / "scripts" / "01_tutorial_loop.py"

# the line the code panel must light at each phase of the tutorial script
TUTORIAL_LINES = {"forward": "y_pred = w * x + b", "loss": "loss = loss_fn(y_pred, y_true)",
                  "zero_grad": "optimizer.zero_grad()", "zero_grad_after": "optimizer.zero_grad()",
                  "backward": "loss.backward()", "step": "optimizer.step()"}


class _Shared:
    """One warm worker for every window of this module (a new one costs a second): a window's
    ``close()`` of it only stops its job."""

    def __init__(self, worker):
        self.worker = worker

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def close(self):
        if self.worker.busy:
            self.worker.cancel()
        self.worker.poll()                     # forget the answers of a window that is gone


@pytest.fixture(scope="module")
def shared_worker():
    from gradviz.training.worker import ScriptWorker
    worker = ScriptWorker()
    worker.warm()
    yield worker
    worker.close()


@pytest.fixture(autouse=True)
def _one_worker(shared_worker, monkeypatch):
    import ui.script_runner
    monkeypatch.setattr(ui.script_runner, "make_worker", lambda: _Shared(shared_worker))


@pytest.fixture
def answers(monkeypatch):
    """QMessageBox.question answers Yes (run the script; save) and records what it asked."""
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda parent, title, text, *a, **k: asked.append(text) or B.Yes))
    return asked


def lit(window) -> str:
    line = window.code.current_line
    return window.code.line_text(line).strip() if line is not None else ""


def line_of(window, text: str) -> int:
    lines = window.code.toPlainText().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == text)


def click_line(qtbot, window, line: int) -> None:
    """Click at the start of ``line`` in the editor, as a person puts the caret there."""
    code = window.code
    block = code.document().findBlockByNumber(line - 1)
    code.setTextCursor(QtGui.QTextCursor(block))
    code.ensureCursorVisible()
    rect = code.cursorRect()
    qtbot.mouseClick(code.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert code.textCursor().blockNumber() == line - 1


def type_at_end(qtbot, window, text: str) -> None:
    """Click into the editor, Ctrl+End, Return, and type ``text``."""
    click_line(qtbot, window, 1)
    qtbot.keyClick(window.code, Key.Key_End, CTRL)
    qtbot.keyClick(window.code, Key.Key_Return)
    qtbot.keyClicks(window.code, text)


def run(qtbot, window) -> None:
    """Ctrl+R in the editor, then wait for the worker's answer."""
    qtbot.keyClick(window.code, Key.Key_R, CTRL)
    assert window.document.running
    finish(window)


def test_the_tutorial_script_plays_with_its_own_lines_lit(qtbot, make_window, tmp_path):
    window = make_window(TUTORIAL)
    doc = window.document
    assert doc.is_script and window.code.toPlainText() == TUTORIAL.read_text()
    assert "01_tutorial_loop.py" in window.windowTitle() and window.view_state.steps == 100
    assert "w =  tensor([1.8000], requires_grad=True)" in window.scripts.console.plain_text()
    qtbot.keyClick(window, Key.Key_Home)
    seen = set()
    for pos, phase, _mb in window.replay.phase_starts():
        qtbot.keyClick(window, Key.Key_Right, SHIFT)
        assert window.player.position == pos
        assert lit(window) == TUTORIAL_LINES[phase], (phase, lit(window))
        seen.add(phase)
    assert {"forward", "backward", "step", "zero_grad"} <= seen
    for i in range(*window.replay.phase_range("backward")):      # every backward event: the backward line
        window.player.seek(i)
        assert lit(window) == "loss.backward()"
    screenshot(window, "scripts_tutorial_backward")
    # a script is edited as code: the Controls panel says so and offers nothing to change
    controls = window.controls
    assert controls.script_note.isVisibleTo(controls) and "Code panel" in controls.script_note.text()
    assert not controls.kind_box.isEnabled() and not controls.loop_group.isEnabled()
    window.open_default()                                    # a TOML lesson: the controls are back
    assert not controls.script_note.isVisibleTo(controls) and controls.kind_box.isEnabled()


def test_deleting_zero_grad_and_ctrl_r_makes_the_plotted_grad_grow(qtbot, make_window):
    torch = pytest.importorskip("torch")
    window = make_window(TUTORIAL)
    grads = window.dashboards.grads
    before = grads.curve("grad", "w").getData()[1]
    assert np.allclose(before[1:], 0)                             # after the first step, w sits at the minimum
    click_line(qtbot, window, line_of(window, "optimizer.zero_grad()"))
    qtbot.keyClick(window.code, Key.Key_Home)
    qtbot.keyClick(window.code, Key.Key_End, SHIFT)
    qtbot.keyClick(window.code, Key.Key_Delete)
    assert "optimizer.zero_grad()" not in window.code.toPlainText()
    assert window.windowTitle().startswith("*") and window.code_panel.label.text().startswith("●")
    run(qtbot, window)
    after = grads.curve("grad", "w").getData()[1]
    # the oracle: the same edited loop in PyTorch, .grad of w as each step() saw it
    w, b = torch.tensor([1.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    x, y = torch.tensor([2.0]), torch.tensor([4.0])
    opt, seen = torch.optim.SGD([w, b], lr=0.1), []
    for _ in range(100):
        torch.nn.MSELoss()(w * x + b, y).backward()
        seen.append(w.grad.item())
        opt.step()
    assert np.allclose(after, seen, rtol=1e-5, atol=1e-6)
    assert abs(after[1]) > 0 and not np.allclose(after, before)
    assert window.view_state.steps == 100 and not window.document.last_error


@pytest.mark.parametrize("kind, text, message", [
    ("exception", "1 / 0", r"01_tutorial_loop\.py:(\d+): ZeroDivisionError: division by zero"),
    ("unsupported", "torch.nn.Conv2d(1, 1, 3)", r"01_tutorial_loop\.py:(\d+): torch\.nn\.Conv2d is not supported"),
    ("syntax", "def (", r"01_tutorial_loop\.py:(\d+): "),
    ("time limit", "while True: pass", r"01_tutorial_loop\.py:(\d+): .*time limit"),
    ("memory", "big = bytearray(400 * 2 ** 20)", r"01_tutorial_loop\.py:(\d+): .*memory"),
])
def test_a_broken_script_names_file_and_line_lights_it_and_keeps_the_result(qtbot, make_window, kind, text,
                                                                           message):
    window = make_window(TUTORIAL)
    doc = window.document
    doc.time_limit, doc.memory_mb = 1.0, 150
    shown, replay = doc.sessions[0], window.replay
    window.set_iteration(3)
    type_at_end(qtbot, window, text)
    bad = window.code.blockCount()
    run(qtbot, window)
    error = window.statusBar().currentMessage()
    found = re.match(message, error)
    assert found, error
    assert int(found.group(1)) == bad and window.code.error_line == bad
    assert "Traceback" not in error and "\n" not in error
    assert error in window.scripts.console.plain_text()
    assert doc.sessions[0] is shown and window.view_state.steps == 100          # the previous result stays
    assert window.iteration == 3 and window.replay.iteration == 3 and window.replay is not replay
    assert not window.progress.isVisible() and not window.scripts.cancel_button.isVisible()
    screenshot(window, f"scripts_broken_{kind.replace(' ', '_')}")
    qtbot.keyClick(window.code, Key.Key_Backspace)                  # an edit clears the red line
    assert window.code.error_line is None


def test_cancel_stops_a_run_and_the_worker_runs_the_next(qtbot, make_window):
    window = make_window(TUTORIAL)
    type_at_end(qtbot, window, "while True: pass")
    qtbot.keyClick(window.code, Key.Key_R, CTRL)
    qtbot.waitUntil(lambda: window.scripts.cancel_button.isVisible(), timeout=2000)
    assert window.progress.isVisible()
    qtbot.mouseClick(window.scripts.cancel_button, Qt.MouseButton.LeftButton)
    assert not window.document.running and "cancelled" in window.statusBar().currentMessage()
    assert window.view_state.steps == 100
    qtbot.keyClick(window.code, Key.Key_Z, CTRL)                    # undo the loop, run again
    qtbot.keyClick(window.code, Key.Key_Z, CTRL)
    assert "while True" not in window.code.toPlainText()
    run(qtbot, window)
    assert window.document.last_error is None and window.view_state.steps == 100


def test_a_script_asks_once_per_content_before_it_runs(qtbot, make_window, monkeypatch, tmp_path):
    window = make_window()
    path = tmp_path / "lesson.py"
    path.write_text(TUTORIAL.read_text())
    asked, reply = [], [B.No]
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda parent, title, text, *a, **k: asked.append(text) or reply[0]))
    patch_open_dialog(monkeypatch, path)
    menu_action(window.file_menu, "Open").trigger()
    assert len(asked) == 1 and "lesson.py is a program" in asked[0]
    assert not window.document.is_script                            # declined: nothing ran
    reply[0] = B.Yes
    menu_action(window.file_menu, "Open").trigger()
    finish(window)
    assert len(asked) == 2 and window.document.path == path and window.view_state.steps == 100
    menu_action(window.file_menu, "Open").trigger()                 # the same file again: no question
    finish(window)
    assert len(asked) == 2
    path.write_text(TUTORIAL.read_text().replace("range(100)", "range(5)"))
    menu_action(window.file_menu, "Open").trigger()                 # changed on disk: asks again
    finish(window)
    assert len(asked) == 3 and window.view_state.steps == 5


def test_open_dialog_offers_py_files(make_window, monkeypatch, answers):
    window = make_window()
    asked = patch_open_dialog(monkeypatch, TUTORIAL)
    menu_action(window.file_menu, "Open").trigger()
    finish(window)
    assert "*.py" in asked[0][2] and "*.toml" in asked[0][2]
    assert window.document.is_script and answers == []            # bundled scripts are trusted


def test_edits_are_the_document_save_and_the_unsaved_prompt(qtbot, make_window, monkeypatch, tmp_path, answers):
    path = tmp_path / "lesson.py"
    path.write_text(TUTORIAL.read_text())
    window = make_window(path)
    assert answers and not window.windowTitle().startswith("*")
    type_at_end(qtbot, window, "print('done')")
    assert window.windowTitle().startswith("*lesson") or window.windowTitle().startswith("*")
    qtbot.keyClick(window.code, Key.Key_S, CTRL)                    # Save writes the file
    assert path.read_text().endswith("print('done')") and not window.document.modified
    assert not window.windowTitle().startswith("*")
    qtbot.keyClick(window.code, Key.Key_Z, CTRL)                    # undo: modified again
    assert window.document.modified
    patch_open_dialog(monkeypatch, TUTORIAL)
    answers.clear()
    menu_action(window.file_menu, "Open").trigger()                 # the unsaved-changes prompt
    assert any("unsaved changes" in text for text in answers)


def test_editing_a_toml_program_and_running_it_makes_a_script(qtbot, make_window):
    window = make_window()                                          # the tutorial TOML scenario
    assert not window.document.is_script and "for step in range(100):" in window.code.toPlainText()
    window.player.seek(window.replay.phase_range("backward")[0])
    assert lit(window) == "loss.backward()"                          # a TOML program is lit by phase
    click_line(qtbot, window, line_of(window, "for step in range(100):"))
    qtbot.keyClick(window.code, Key.Key_End)
    for _ in range(5):
        qtbot.keyClick(window.code, Key.Key_Backspace)
    qtbot.keyClicks(window.code, "7):")
    assert window.windowTitle().startswith("*") and not window.document.is_script
    run(qtbot, window)
    doc = window.document
    assert doc.is_script and doc.path is None and doc.script_name == "01_tutorial_wx_b.py"
    assert window.view_state.steps == 7 and doc.modified
    assert "loss at the last step" in window.scripts.console.plain_text()


def test_save_as_script_writes_the_program_and_opens_it(qtbot, make_window, monkeypatch, tmp_path):
    window = make_window()
    program = window.code.toPlainText()
    target = tmp_path / "tutorial.py"
    patch_save_dialog(monkeypatch, target)
    menu_action(window.file_menu, "Save as script").trigger()
    finish(window)
    assert target.read_text() == program + "\n" == window.code.toPlainText()
    assert window.document.is_script and window.document.path == target and window.view_state.steps == 100
    assert "w = tensor(1.8000, requires_grad=True)" in window.scripts.console.plain_text()


def test_an_untraced_iteration_is_traced_on_demand(qtbot, make_window):
    window = make_window(TUTORIAL, wait=False)
    window.document.trace_budget = 1                                 # keep (almost) no traces
    window.document.run()
    finish(window)
    run_ = window.session
    k = next(k for k in range(100) if not run_.has_trace(k))
    window.set_iteration(k)
    assert window.statusBar().currentMessage() == f"tracing iteration {k}…"
    assert window.replay is None or window.replay.iteration != k   # not blocked, not shown yet
    qtbot.waitUntil(lambda: window.replay is not None and window.replay.iteration == k, timeout=10000)
    assert run_.has_trace(k) and window.statusBar().currentMessage() == ""


def test_time_limit_is_a_setting(make_window, monkeypatch):
    window = make_window()
    monkeypatch.setattr(QtWidgets.QInputDialog, "getInt", staticmethod(lambda *a, **k: (5, True)))
    menu_action(window.run_menu, "Time limit").trigger()
    assert window.document.time_limit == 5.0
    from ui.main_window import MainWindow
    other = MainWindow()
    try:
        assert other.document.time_limit == 5.0
    finally:
        other.document.close()
        other.deleteLater()


def test_a_large_scripts_trace_is_replayed_off_the_ui_thread(qtbot, make_window, answers, monkeypatch, tmp_path):
    """A script's kept trace of over 1,500 events is made into its Replay in a worker: at the graph-size
    limit (498 Linear(4, 4) + Tanh) the Replay and the graph's fold took 25 ms in the turn in which the
    run's result came, with the plots' refresh, 62-70 ms in all."""
    import threading

    import ui.trace_jobs
    from gradviz.training.script import SHOW_S_PER_EVENT
    from ui.trace_jobs import SYNC_S
    threads = []

    class Watched(ui.trace_jobs.Replay):
        def __init__(self, trace):
            threads.append(threading.current_thread() is threading.main_thread())
            super().__init__(trace)

    monkeypatch.setattr(ui.trace_jobs, "Replay", Watched)
    path = tmp_path / "deep.py"
    path.write_text("import torch\nimport torch.nn as nn\ntorch.manual_seed(0)\n"
                    "model = nn.Sequential(*[m for _ in range(260) for m in (nn.Linear(4, 4), nn.Tanh())])\n"
                    "x, y = torch.randn(8, 4), torch.randn(8, 4)\n"
                    "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)\nfor step in range(3):\n"
                    "    optimizer.zero_grad()\n    nn.functional.mse_loss(model(x), y).backward()\n"
                    "    optimizer.step()\n")
    window = make_window()
    started = []
    threads.clear()                                         # (the tutorial's, shown at once)
    window.traces.started.connect(started.append)
    window.open_path(str(path), confirm=False)
    qtbot.waitUntil(lambda: window.replay is not None and window.document.path == path, timeout=60000)
    events = len(window.replay.events)
    assert events * SHOW_S_PER_EVENT >= SYNC_S              # (the trace is that large)
    assert started == [0] and threads == [False]            # replayed in a worker, not in the UI thread
    assert len(window.session.history.param_names) == 2 * 260
    from gradviz.view.replay import Replay
    walked, advance = [], Replay._advance
    monkeypatch.setattr(Replay, "_advance", lambda self, f: walked.append(1) or advance(self, f))
    window.player.seek(len(window.replay) - 2)              # a jump to the end: its keyframes are made
    assert window.player.position == len(window.replay) - 2 and len(walked) < Replay.KEYFRAME_EVERY
    window.set_iteration(1)                                 # the next iteration's too, then shown
    assert window.replay.iteration == 0
    qtbot.waitUntil(lambda: window.replay.iteration == 1, timeout=20000)
    assert threads == [False, False] and started == [0, 1]
    small = tmp_path / "small.py"                           # a small one is shown at once
    small.write_text(TUTORIAL.read_text())
    window.open_path(str(small), confirm=False)
    finish(window)
    qtbot.waitUntil(lambda: window.replay is not None and window.document.path == small, timeout=60000)
    assert threads[-1] is True and started == [0, 1]


def _run_until_result(qtbot, window) -> None:
    """Ctrl+R, then let the event loop run until the run's result is on screen (not the background)."""
    qtbot.keyClick(window.code, Key.Key_R, CTRL)
    qtbot.waitUntil(lambda: not window.document.running, timeout=20000)


def test_untraced_iterations_are_traced_in_the_background_and_a_request_goes_first(qtbot, make_window):
    from gradviz.training.script import TRACE_ITERATIONS
    window = make_window(TUTORIAL, wait=False)
    doc = window.document
    finish(window)
    _run_until_result(qtbot, window)
    run_ = window.session
    assert sorted(run_.result.traces) == list(range(TRACE_ITERATIONS)) and doc.prefetching
    assert doc._prefetch[0] == 99                        # the last iteration first, then in order
    k = next(k for k in range(98, 0, -1) if not run_.has_trace(k) and k not in doc._prefetch[:21])
    window.set_iteration(k)                              # stepping to an iteration not traced yet
    assert doc._trace_tickets and doc.runner.running_ticket in doc._trace_tickets   # it goes first
    qtbot.waitUntil(lambda: window.replay is not None and window.replay.iteration == k, timeout=10000)
    qtbot.waitUntil(lambda: not doc.prefetching, timeout=20000)    # the background goes on after it
    assert all(run_.has_trace(i) for i in range(100))
    window.set_iteration(42)
    assert window.replay.iteration == 42 and not doc._trace_tickets       # shown at once, nothing asked


def test_a_new_run_cancels_the_background_tracing(qtbot, make_window):
    window = make_window(TUTORIAL, wait=False)
    doc = window.document
    finish(window)
    _run_until_result(qtbot, window)
    assert doc.prefetching
    old = window.session
    qtbot.keyClick(window.code, Key.Key_R, CTRL)         # run again while the background traces
    assert not doc.prefetching and doc.running
    qtbot.waitUntil(lambda: not doc.running, timeout=20000)
    assert window.session is not old and not any(old.has_trace(k) for k in range(TRACE_ITERATIONS_LATE, 100))


TRACE_ITERATIONS_LATE = 60          # far enough that the first run's background tracing cannot have got there


def test_a_large_result_arrives_without_blocking_the_window(qtbot):
    """The runner's own thread polls the worker and unpickles its results, never the UI thread, and
    the UI thread's timer keeps ticking while a large result comes. (How long the longest tick takes
    is measured by benchmarks/bench_scripts.py, not asserted here.)"""
    import threading

    from gradviz.training.worker import ScriptWorker
    from ui.script_runner import ScriptRunner
    on_ui_thread = set()

    class Watched(ScriptWorker):
        def poll(self, *args, **kwargs):        # where messages are read and unpickled
            on_ui_thread.add(threading.current_thread() is threading.main_thread())
            return super().poll(*args, **kwargs)

    source = ("import torch\ntorch.manual_seed(0)\nw = torch.randn(100, 100, requires_grad=True)\n"
              "optimizer = torch.optim.Adam([w], lr=0.01)\nfor i in range(400):\n    optimizer.zero_grad()\n"
              "    (w * w).sum().backward()\n    optimizer.step()\n")
    runner = ScriptRunner(make_worker=Watched)
    try:
        got, ticks = [], []
        runner.done.connect(lambda ticket, result: got.append(result))
        runner.submit(source, "large.py", timeout=60, memory_mb=8000, trace_iterations=None)
        timer = QtCore.QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start()
        qtbot.waitUntil(lambda: bool(got), timeout=30000)
        timer.stop()
        # every iteration asked for: traces until the 64 MB budget is spent (about 90 of 400 iterations)
        assert got[0].history.steps == 400 and got[0].budget_hit and len(got[0].traces) > 50
        assert on_ui_thread == {False}, "the worker was polled (its results unpickled) on the UI thread"
        assert len(ticks) > 10                   # the event loop ran while the script and its result came
    finally:
        runner.close()
