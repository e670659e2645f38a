"""Issue 13, the Controls and the small things (item 9): nothing in the Controls is cut at 800x600
(labels wrap, the panel scrolls), the lr field shows the real lr, the lr slider moves in 1/2/5 steps
and applies once, phases read as titles, never as keys."""
from __future__ import annotations

import copy

import pytest
from PySide6 import QtCore, QtWidgets
from PySide6.QtTest import QTest

from gradviz.scenario import bundled_path, load
from gradviz.scenario.edits import set_optimizer_kind
from gradviz.trace import PHASES
from gradviz.view.phases import PHASE_TITLES, phase_label, phase_title
from tests.ui.conftest import finish, screenshot
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS

Qt = QtCore.Qt
LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier


# -- what "cut" means, widget by widget ------------------------------------------------------------

def _combo_needs(combo: QtWidgets.QComboBox) -> int:
    opt = QtWidgets.QStyleOptionComboBox()
    combo.initStyleOption(opt)
    icon = opt.iconSize.width() + 4 if not opt.currentIcon.isNull() else 0
    size = QtCore.QSize(combo.fontMetrics().horizontalAdvance(combo.currentText()) + icon + 4, 1)
    return combo.style().sizeFromContents(QtWidgets.QStyle.ContentsType.CT_ComboBox, opt, size, combo).width()


def cut_texts(panel) -> list[str]:
    """Every text of ``panel`` (a ControlsPanel) a user cannot read whole: a label, check box, value
    or combo box narrower than its text, a wrapped label shorter than its lines, or a widget that
    runs past the right edge of the panel's viewport while there is no scroll bar to reach it."""
    viewport = panel.scroll.viewport()
    sideways = panel.scroll.horizontalScrollBar().isVisible()
    cut = []
    for w in panel.content.findChildren(QtWidgets.QWidget):
        if not w.isVisibleTo(panel) or w.width() <= 0:
            continue
        fm = w.fontMetrics()
        name = f"{type(w).__name__} {getattr(w, 'text', lambda: '')() if hasattr(w, 'text') else ''!r}"
        right = w.mapTo(viewport, QtCore.QPoint(w.width(), 0)).x()
        if right > viewport.width() + 1 and not sideways:
            cut.append(f"{name}: right edge {right} past the viewport's {viewport.width()}")
        if isinstance(w, QtWidgets.QLabel) and w.text():
            if "…" in w.text():
                cut.append(f"{name}: elided")
            if w.wordWrap():
                if w.height() < w.heightForWidth(w.width()):
                    cut.append(f"{name}: {w.height()} px tall, its lines need {w.heightForWidth(w.width())}")
            elif fm.horizontalAdvance(w.text()) > w.contentsRect().width():
                cut.append(f"{name}: {w.contentsRect().width()} px for {fm.horizontalAdvance(w.text())} px of text")
        elif isinstance(w, (QtWidgets.QCheckBox, QtWidgets.QPushButton)) and w.text():
            if w.sizeHint().width() > w.width():
                cut.append(f"{name}: {w.width()} px wide, needs {w.sizeHint().width()}")
        elif isinstance(w, QtWidgets.QLineEdit) and w.isEnabled():
            if fm.horizontalAdvance(w.text()) > w.width() - 10:
                cut.append(f"{name}: {w.width()} px wide for {fm.horizontalAdvance(w.text())} px of text")
        elif hasattr(w, "shown_text"):            # the variant box: whole, or a short form, never "…"
            if w.shown_text() not in w.forms():
                cut.append(f"{type(w).__name__} {w.currentText()!r}: drawn as {w.shown_text()!r}")
        elif isinstance(w, QtWidgets.QComboBox):
            if _combo_needs(w) > w.width():
                cut.append(f"QComboBox {w.currentText()!r}: {w.width()} px wide, needs {_combo_needs(w)}")
    return cut


def settle(widget) -> None:
    for _ in range(3):
        QtWidgets.QApplication.processEvents()
        widget.updateGeometry()


def in_window(make_window, stem: str, size=(800, 600)):
    window = make_window(bundled_path(stem))
    window.resize(*size)
    window.controls_dock.show()
    window.controls_dock.raise_()
    finish(window)
    settle(window)
    return window


# -- 800x600 and 1400x860: nothing cut -------------------------------------------------------------

@pytest.mark.parametrize("stem", ["01_tutorial_wx_b", "03_gradient_accumulation", "12_clipping_scaled_gradients",
                                  "10_adam_vs_adamw"])
def test_nothing_in_the_controls_is_cut_at_800x600(make_window, stem):
    window = in_window(make_window, stem)
    panel = window.controls
    assert panel.isVisible() and panel.width() >= 150
    assert cut_texts(panel) == []
    # the panel can be narrower than its rows without cutting them: they wrap down to this width
    assert panel.content.minimumSizeHint().width() <= 240
    screenshot(window, f"polish_controls_800x600_{stem}")


def test_nothing_is_cut_at_1400x860_and_the_lr_field_reads_0_01(make_window):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    window = in_window(make_window, "01_tutorial_wx_b", (1400, 860))
    scenario.optimizer.hyper["lr"] = 0.01
    window.document.set_scenario(scenario, None)
    finish(window)
    settle(window)
    panel = window.controls
    assert panel.lr_edit.text() == "0.01"
    assert cut_texts(panel) == []
    screenshot(window, "polish_controls_1400x860")


@pytest.fixture
def panel(qtbot):
    """A ControlsPanel alone, as narrow as a small dock: ``panel(scenario, width)``."""
    from ui.controls import ControlsPanel
    from ui.document import Document
    from ui.view_state import ViewState

    def make(scenario, width: int = 250, height: int = 700):
        doc = Document()
        view_state = ViewState(doc)
        controls = ControlsPanel(doc, view_state)
        qtbot.addWidget(controls)
        controls.resize(width, height)
        controls.show()
        qtbot.waitExposed(controls)
        with qtbot.waitSignal(doc.runFinished, timeout=RUN_TIMEOUT_MS):
            doc.set_scenario(scenario, None)
        settle(controls)
        return controls
    return make


@pytest.mark.parametrize("kind", ["sgd", "adam", "adagrad", "rmsprop"])
def test_a_narrow_panel_wraps_its_rows_instead_of_cutting_them(panel, kind):
    scenario = load(bundled_path("12_clipping_scaled_gradients"))
    set_optimizer_kind(scenario.optimizer, kind)
    scenario.optimizer.hyper["lr"] = 0.000125
    controls = panel(scenario, width=250)
    assert controls.lr_edit.text() == "0.000125"
    assert not controls.scroll.horizontalScrollBar().isVisible()
    assert cut_texts(controls) == []
    # narrower than any row can wrap to: it scrolls sideways instead of cutting
    controls.resize(170, 500)
    settle(controls)
    assert controls.scroll.horizontalScrollBar().isVisible()
    assert cut_texts(controls) == []


def test_the_script_note_wraps_in_a_narrow_dock(panel):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    controls = panel(scenario, width=240)
    script = copy.copy(scenario)
    script.script = "print('hi')\n"
    controls._set_editable(script)                 # what sync() does for a .py document
    settle(controls)
    note = controls.script_note
    assert note.isVisibleTo(controls) and "Code panel" in note.text()
    assert note.height() >= note.heightForWidth(note.width()) > note.fontMetrics().height() * 2
    assert cut_texts(controls) == []


# -- the lr slider ----------------------------------------------------------------------------------

def handle_centre(slider: QtWidgets.QSlider) -> QtCore.QPoint:
    opt = QtWidgets.QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QtWidgets.QStyle.ComplexControl.CC_Slider, opt,
                                         QtWidgets.QStyle.SubControl.SC_SliderHandle, slider).center()


def is_125(lr: float) -> bool:
    mantissa = f"{lr:e}".split("e")[0]
    return float(mantissa) in (1.0, 2.0, 5.0)


def test_an_80px_drag_moves_steadily_in_125_steps_and_applies_once_on_release(panel, qtbot):
    from ui.controls import LR_STEPS
    controls = panel(load(bundled_path("01_tutorial_wx_b")), width=270)
    doc, slider, field = controls.document, controls.lr_slider, controls.lr_edit
    assert field.text() == "0.1" and slider.width() >= 180           # the whole width of the panel
    edits = []
    doc.scenarioChanged.connect(lambda: edits.append(doc.scenario.optimizer.hyper["lr"]))
    start = handle_centre(slider)
    QTest.mousePress(slider, LEFT, NO_MOD, start)
    shown = []
    for dx in range(0, 81, 4):
        QTest.mouseMove(slider, start - QtCore.QPoint(dx, 0))
        shown.append(float(field.text()))
    assert edits == [] and doc.scenario.optimizer.hyper["lr"] == 0.1      # nothing written while dragging
    assert all(is_125(lr) for lr in shown) and set(shown) <= set(LR_STEPS)
    steps = [LR_STEPS.index(lr) for lr in shown]
    assert all(0 <= a - b <= 1 for a, b in zip(steps, steps[1:]))       # one 1/2/5 step at a time, never back
    assert shown[0] == 0.1 and 1e-4 <= shown[-1] <= 0.01                  # 80 px: a decade or two, not five
    with qtbot.waitSignal(doc.runFinished, timeout=RUN_TIMEOUT_MS):
        QTest.mouseRelease(slider, LEFT, NO_MOD, start - QtCore.QPoint(80, 0))
    assert edits == [shown[-1]] and doc.scenario.optimizer.hyper["lr"] == shown[-1]   # once, snapped
    assert field.text() == repr(shown[-1]) and doc.modified


def test_a_drag_back_to_the_start_leaves_an_off_grid_lr_alone(panel, qtbot):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    scenario.optimizer.hyper["lr"] = 0.0375
    controls = panel(scenario)
    slider, field = controls.lr_slider, controls.lr_edit
    assert field.text() == "0.0375"
    start = handle_centre(slider)
    QTest.mousePress(slider, LEFT, NO_MOD, start)
    QTest.mouseMove(slider, start + QtCore.QPoint(30, 0))
    assert field.text() != "0.0375"                               # the preview
    QTest.mouseMove(slider, start)
    QTest.mouseRelease(slider, LEFT, NO_MOD, start)
    qtbot.wait(50)
    assert field.text() == "0.0375" and controls.document.scenario.optimizer.hyper["lr"] == 0.0375
    assert not controls.document.modified


def test_held_arrow_keys_apply_one_value_when_they_pause(panel, qtbot):
    controls = panel(load(bundled_path("01_tutorial_wx_b")))
    doc, slider = controls.document, controls.lr_slider
    edits = []
    doc.scenarioChanged.connect(lambda: edits.append(doc.scenario.optimizer.hyper["lr"]))
    slider.setFocus()
    with qtbot.waitSignal(doc.runFinished, timeout=RUN_TIMEOUT_MS):
        for _ in range(4):
            qtbot.keyClick(slider, Qt.Key.Key_Left)
        assert controls.lr_edit.text() == "0.005" and edits == []     # 0.1 0.05 0.02 0.01 0.005
    assert edits == [0.005]


# -- phases read as titles ------------------------------------------------------------------------

def test_every_phase_has_a_title_not_its_key():
    for phase in PHASES:
        assert phase_title(phase) == PHASE_TITLES[phase] and "_after" not in phase_label(phase, 1, 4)
    assert len(set(PHASE_TITLES.values())) == len(PHASES)          # two phases never read the same
    assert phase_title("zero_grad_after") == "optimizer.zero_grad() (after step)"
    assert phase_title("some_new_phase") == "some new phase"


def test_the_window_never_shows_the_key_zero_grad_after(make_window):
    window = in_window(make_window, "01_tutorial_wx_b", (1400, 860))
    scenario = load(bundled_path("01_tutorial_wx_b"))
    scenario.loop.zero_grad = "after_step"
    window.document.set_scenario(scenario, None)
    finish(window)
    window.player.to_start()
    seen = set()
    while not window.player.at_end:
        window.player.step_forward()
        texts = {label.text() for label in window.findChildren(QtWidgets.QLabel) if label.isVisible()}
        texts.add(window.statusBar().currentMessage())
        assert not any("zero_grad_after" in t for t in texts)
        seen |= texts
    assert "Phase: optimizer.zero_grad() (after step)" in seen                  # the status bar
    assert "optimizer.zero_grad() (after step)" in seen                         # the caption's chip


# -- the exported script of a comparison, and the default speed ------------------------------------

def test_a_comparisons_script_does_not_repeat_the_main_runs_claims():
    from gradviz import codegen
    from gradviz.scenario.edits import add_comparison
    scenario = load(bundled_path("01_tutorial_wx_b"))
    assert "lands on w = 1.8" in scenario.description
    add_comparison(scenario)
    scenario.comparisons[0].optimizer.hyper["lr"] = 0.05
    scenario.comparisons[0].name = "SGD(lr=0.05)"
    for source in (codegen.export_torch(scenario, 1).source, codegen.program(scenario, 1).source):
        header = source.split("import", 1)[0]
        assert "lands on w" not in header and "w = 1.8" not in header
        assert "comparison run SGD(lr=0.05)" in " ".join(header.replace("#", " ").split())
        assert header.startswith("# w·x + b: the classic")
    for source in (codegen.export_torch(scenario, 0).source, codegen.program(scenario, 0).source):
        assert "lands on w = 1.8" in " ".join(source.split("import", 1)[0].replace("#", " ").split())


def test_play_starts_at_a_readable_speed(make_window):
    window = make_window()
    assert window.player.speed <= 2.0 and window.speed_box.currentText() == "1×"
