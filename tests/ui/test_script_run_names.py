"""A script names its run for the lesson with a ``# run:`` comment; a script that runs no
iteration finishes with a line in the console instead of an exception."""
from __future__ import annotations

from gradviz.scenario.bundled import bundled_dir
from gradviz.scenario.script_source import header, run_name
from tests.ui.conftest import finish

MANUAL = bundled_dir().parent / "scripts" / "06_manual_update.py"


def test_a_run_comment_names_the_run_and_stays_out_of_the_description():
    source = "# Title\n#\n# What it does.\n#\n# run:   by  hand \nimport torch\n"
    assert run_name(source) == "by hand"
    assert header(source) == ("Title", "What it does.")
    assert run_name("# Title\nimport torch\n") is None


def test_the_bundled_script_run_is_named_for_the_lesson(qtbot, make_window):
    window = make_window(MANUAL)
    qtbot.waitUntil(lambda: window.document.sessions and not window.document.running, timeout=60_000)
    finish(window)
    name = "w -= lr * w.grad by hand"
    assert [v.name for v in window.document.scenario.variants()] == [name]
    assert window.variant_box.itemText(0) == name
    legend = window.dashboards.loss.plot.legend_box
    assert legend.names == [name]


def test_a_script_that_runs_no_iteration_says_so(qtbot, make_window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets
    path = tmp_path / "nothing.py"
    path.write_text("# Nothing\nimport torch\nw = torch.tensor(1.0, requires_grad=True)\nprint('hi')\n")
    window = make_window()
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",          # "nothing.py is a program: run it?"
                        staticmethod(lambda *a, **k: QtWidgets.QMessageBox.StandardButton.Yes))
    window.open_path(path)
    qtbot.waitUntil(lambda: "✓ nothing.py: 0 iterations" in window.scripts.console.plain_text(), timeout=60_000)
    assert window.isVisible()
