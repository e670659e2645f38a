"""A monkey test: a few thousand seeded random clicks and key presses on the main window, across
several bundled scenarios, with every modal dialog and popup menu closed as soon as it opens. It
fails on any Python exception raised in a slot or an event handler (pytest-qt captures them)."""
from __future__ import annotations

import random
import traceback

import shiboken6
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path

Qt = QtCore.Qt
Key = Qt.Key
Mod = Qt.KeyboardModifier
SEED = 1317
# small runs (Rosenbrock's 2000 steps × 4 variants re-run on every edit a click makes would be slow)
SCENARIOS = ["01_tutorial_wx_b", "08_tanh_neuron", "03_gradient_accumulation", "13_scheduler_before_step",
             "05_ill_conditioned_bowl", "02_forgot_zero_grad"]
EVENTS_PER_SCENARIO = 350               # × 6 scenarios: 2100 clicks and keys
KEYS = [(Key.Key_Space, Mod.NoModifier), (Key.Key_Right, Mod.NoModifier), (Key.Key_Left, Mod.NoModifier),
        (Key.Key_Right, Mod.ShiftModifier), (Key.Key_Left, Mod.ShiftModifier), (Key.Key_Up, Mod.NoModifier),
        (Key.Key_Down, Mod.NoModifier), (Key.Key_PageUp, Mod.NoModifier), (Key.Key_PageDown, Mod.NoModifier),
        (Key.Key_Home, Mod.NoModifier), (Key.Key_End, Mod.NoModifier), (Key.Key_Escape, Mod.NoModifier),
        (Key.Key_F, Mod.NoModifier), (Key.Key_Z, Mod.ControlModifier), (Key.Key_O, Mod.ControlModifier),
        (Key.Key_S, Mod.ControlModifier), (Key.Key_F, Mod.ControlModifier),
        (Key.Key_Right, Mod.ControlModifier), (Key.Key_Left, Mod.ControlModifier), (Key.Key_Tab, Mod.NoModifier),
        (Key.Key_Return, Mod.NoModifier), (Key.Key_1, Mod.NoModifier)]
RARE_KEYS = [(Key.Key_B, Mod.ControlModifier)]     # the bundled dialog reads every scenario: not too often


def close_dialogs_and_menus(opened: list) -> None:
    modal = QtWidgets.QApplication.activeModalWidget()
    if modal is not None:
        opened.append(type(modal).__name__)
        if isinstance(modal, QtWidgets.QDialog):
            modal.reject()
        else:
            modal.close()
    popup = QtWidgets.QApplication.activePopupWidget()
    if popup is not None:
        opened.append(type(popup).__name__)
        popup.close()


def targets(window) -> list[QtWidgets.QWidget]:
    """The visible widgets of the window (and its floating docks) a click can land on."""
    found = [w for w in window.findChildren(QtWidgets.QWidget)
             if w.isVisible() and w.width() > 2 and w.height() > 2 and not w.isWindow()]
    return found or [window]


def test_random_clicks_and_keys_raise_nothing(qtbot, make_window, monkeypatch):
    # file dialogs answer "cancel" at once (a real one would be closed by the timer, slowly)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    rng = random.Random(SEED)
    opened: list = []
    closer = QtCore.QTimer()
    closer.timeout.connect(lambda: close_dialogs_and_menus(opened))
    closer.start(15)
    window = make_window(bundled_path(SCENARIOS[0]))
    window.resize(1000, 700)
    errors = []
    try:
        with qtbot.captureExceptions() as exceptions:
            for n, stem in enumerate(SCENARIOS):
                if n:
                    window.document.modified = False                 # no "save changes?" question
                    window.open_path(bundled_path(stem), confirm=False)
                for i in range(EVENTS_PER_SCENARIO):
                    if not window.isVisible():
                        window.show()
                    if i % 16 == 0:
                        widgets = targets(window)
                    if rng.random() < 0.5:
                        widget = rng.choice(widgets)
                        if not shiboken6.isValid(widget) or not widget.isVisible():
                            continue                                 # gone since the list was made
                        pos = QtCore.QPoint(rng.randrange(widget.width()), rng.randrange(widget.height()))
                        button = Qt.MouseButton.LeftButton if rng.random() < 0.9 else Qt.MouseButton.RightButton
                        qtbot.mouseClick(widget, button, pos=pos)
                    else:
                        key, mod = rng.choice(RARE_KEYS if rng.random() < 0.01 else KEYS)
                        focus = QtWidgets.QApplication.focusWidget()
                        target = focus if focus is not None and focus.window() is window else window
                        qtbot.keyClick(target, key, mod)
                    if i % 8 == 0:
                        QtWidgets.QApplication.processEvents()
                window.player.pause()
                window.document.finish_now()
                QtWidgets.QApplication.processEvents()
                window.reset_layout()                                # every dock back for the next burst
        errors = ["".join(traceback.format_exception(*e)) for e in exceptions]
    finally:
        closer.stop()
        window.player.pause()
        window.reset_layout()
        QtWidgets.QApplication.processEvents()
    assert not errors, "\n".join(errors[:3])
    assert window.isVisible()
