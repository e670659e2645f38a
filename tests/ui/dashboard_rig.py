"""Shared by the dashboard and controls tests: the plots and the controls on one real widget."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path, load
from gradviz.training.session import Session

RUN_TIMEOUT_MS = 60_000


def rosenbrock(steps: int = 300):
    """The bundled Rosenbrock race, every run cut to ``steps`` steps."""
    scenario = load(bundled_path("04_rosenbrock_race"))
    scenario.loop.steps = steps
    for v in scenario.comparisons:
        v.loop.steps = steps
    return scenario


@pytest.fixture
def rig(qtbot):
    """``rig(stem_or_scenario)``: Document + Dashboards + ControlsPanel side by side, run finished;
    ``picks`` records the iterations chosen (by clicking a plot)."""
    from ui.controls import ControlsPanel
    from ui.dashboards import Dashboards
    from ui.document import Document
    from ui.view_state import ViewState

    def make(source, grid: bool = True):
        scenario = load(bundled_path(source)) if isinstance(source, str) else source
        doc = Document()
        view_state = ViewState(doc)
        picks: list[int] = []
        view_state.iterationChanged.connect(picks.append)
        dash = Dashboards(doc, view_state)
        controls = ControlsPanel(doc, view_state)
        window = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(window)
        layout.addWidget(dash, 1)
        layout.addWidget(controls)
        if grid:
            dash.set_layout_mode("grid")
        window.resize(1500, 900)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        with qtbot.waitSignal(doc.runFinished, timeout=RUN_TIMEOUT_MS):
            doc.set_scenario(scenario, scenario.path)
        dash.finish_pending()          # the small plots made over the next turns: all of them now
        return SimpleNamespace(doc=doc, view_state=view_state, dash=dash, controls=controls, window=window,
                               picks=picks)
    return make


def type_into(qtbot, widget, text: str) -> None:
    """Replace the text of a line edit / spin box the way a user does: select all, type, Enter."""
    widget.setFocus()
    target = widget.lineEdit() if isinstance(widget, QtWidgets.QAbstractSpinBox) else widget
    target.selectAll()
    qtbot.keyClicks(target, text)
    qtbot.keyClick(target, QtCore.Qt.Key.Key_Return)


def choose(qtbot, combo: QtWidgets.QComboBox, text: str) -> None:
    """Pick an item by typing its first letters into the combo box (keyboard search)."""
    # a combo box remembers what was typed for keyboardInputInterval ms: let the last search expire
    qtbot.wait(QtWidgets.QApplication.keyboardInputInterval() + 50)
    combo.setFocus()
    qtbot.keyClicks(combo, text)


def click_checkbox(qtbot, box: QtWidgets.QCheckBox) -> None:
    qtbot.mouseClick(box, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, box.height() // 2))


def original(curve):
    x, y = curve.getOriginalDataset()
    if x is None:                  # a curve made but not given its data yet (a live run's first turn)
        return np.zeros(0), np.zeros(0)
    return np.asarray(x), np.asarray(y)


def run_core(scenario, variant: int = 0):
    return Session(copy.deepcopy(scenario), variant).run()
