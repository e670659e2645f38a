"""Issue 13, look and feel: light and dark themes (following the system's colour scheme unless
overridden), every view following a switch without a restart, and crisp icons on high-dpi screens."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from ui import code_view, console, icons
from ui import theme as T

ROOT = Path(__file__).resolve().parents[2]


def lightness(colour) -> int:
    return QtGui.QColor(colour).lightness()


@pytest.fixture
def themed(qapp):
    """Every test starts light and leaves the app light (the palette is process-wide)."""
    T.apply(qapp, "light")
    yield qapp
    T.apply(qapp, "light")


def canvas_colour(graph) -> QtGui.QColor:
    """The graph canvas's colour (the viewport's background tile, away from its dot)."""
    brush = graph.viewport().palette().brush(QtGui.QPalette.ColorRole.Base)
    return brush.texture().toImage().pixelColor(0, 0)


def keyword_colour(editor) -> str:
    """The colour of the first ``import`` keyword in the code panel."""
    line = next(i for i in range(editor.blockCount()) if editor.line_text(i + 1).startswith("import"))
    block = editor.document().findBlockByNumber(line)
    for rng in block.layout().formats():
        if rng.start == 0:
            return rng.format.foreground().color().name()
    return ""


def axis_text_colour(plot) -> str:
    return plot.getAxis("left").textPen().color().name()


def test_dark_and_back_to_light_reaches_every_view(themed, make_window):
    window = make_window()
    plot = window.dashboards.loss.plots()[0]
    param = next(g for g in window.graph.node_items.values() if g.spec.kind == "param")
    assert lightness(canvas_colour(window.graph)) > 200
    light_axis = axis_text_colour(plot)

    with_signal = []
    T.notifier.changed.connect(lambda: with_signal.append(T.scheme()))
    assert T.apply(themed, "dark") and with_signal == ["dark"]
    QtWidgets.QApplication.processEvents()
    assert T.is_dark() and T.BACKGROUND == T.DARK["BACKGROUND"] and T.TEXT == T.DARK["TEXT"]
    assert lightness(QtWidgets.QApplication.palette().color(QtGui.QPalette.ColorRole.Window)) < 60
    assert QtWidgets.QApplication.style().name().lower() == "fusion"
    # the graph: the canvas, and the nodes rebuilt in the dark palette
    assert canvas_colour(window.graph).name() == T.DARK["BACKGROUND"]
    param = next(g for g in window.graph.node_items.values() if g.spec.kind == "param")
    assert param.root.brush().color().name() == T.DARK["PARAM_FILL"]
    assert "background: rgba(23, 29, 40" in window.graph.caption.styleSheet()
    # the plots: background and axis text
    assert window.dashboards.loss.view.backgroundBrush().color().name() == T.DARK["PLOT_BACKGROUND"]
    assert axis_text_colour(plot) == T.DARK["PLOT_FOREGROUND"] != light_axis
    title = window.dashboards.schedule.lr_plot.titleLabel            # made once, with the light text
    assert QtGui.QColor(title.opts["color"]).name() == T.DARK["PLOT_FOREGROUND"]
    colorbar = window.dashboards.space.colorbar.axis
    assert colorbar.textPen().color().name() == T.DARK["PLOT_FOREGROUND"]
    # the code panel: a dark page, Python in the dark colours
    editor = window.code
    assert lightness(editor.palette().color(QtGui.QPalette.ColorRole.Base)) < 60
    assert keyword_colour(editor) == code_view.DARK_COLOURS["CODE_KEYWORD"]
    # what the user sees: a dark page under the code, a dark canvas under the graph
    image = window.grab().toImage()
    code_pt = editor.viewport().mapTo(window, QtCore.QPoint(editor.viewport().width() - 4,
                                                            editor.viewport().height() - 4))
    assert lightness(image.pixelColor(code_pt)) < 60
    assert lightness(window.graph.grab().toImage().pixelColor(3, window.graph.height() - 3)) < 60

    assert T.apply(themed, "light") and with_signal == ["dark", "light"]
    QtWidgets.QApplication.processEvents()
    assert T.BACKGROUND == T.LIGHT["BACKGROUND"]
    assert lightness(QtWidgets.QApplication.palette().color(QtGui.QPalette.ColorRole.Window)) > 200
    assert canvas_colour(window.graph).name() == T.LIGHT["BACKGROUND"]
    param = next(g for g in window.graph.node_items.values() if g.spec.kind == "param")
    assert param.root.brush().color().name() == T.LIGHT["PARAM_FILL"]
    assert window.dashboards.loss.view.backgroundBrush().color().name() == T.LIGHT["PLOT_BACKGROUND"]
    assert axis_text_colour(plot) == light_axis
    assert lightness(editor.palette().color(QtGui.QPalette.ColorRole.Base)) > 200
    assert keyword_colour(editor) == code_view.LIGHT_COLOURS["CODE_KEYWORD"]
    assert not T.apply(themed, "light")                 # no switch, no signal
    assert with_signal == ["dark", "light"]


def test_a_window_opened_in_dark_is_dark_throughout(themed, make_window):
    T.apply(themed, "dark")
    window = make_window()
    assert canvas_colour(window.graph).name() == T.DARK["BACKGROUND"]
    assert lightness(window.code.palette().color(QtGui.QPalette.ColorRole.Base)) < 60
    edge = next(iter(window.graph.edge_items.values()))
    assert lightness(edge.lines[0].pen().color()) < 200           # not the light theme's pale grey on black
    assert lightness(window.graph.grab().toImage().pixelColor(3, window.graph.height() - 3)) < 60


def test_the_environment_variable_and_the_view_menu_choose_the_scheme(themed, monkeypatch):
    monkeypatch.delenv(T.ENV_VAR, raising=False)
    assert T.preference() == "system"
    assert T.wanted_scheme() == "light"                 # offscreen reports no scheme: light
    monkeypatch.setenv(T.ENV_VAR, "dark")
    assert T.wanted_scheme() == "dark"
    T.apply(themed)
    assert T.is_dark()
    monkeypatch.setenv(T.ENV_VAR, "LIGHT")              # any case
    T.apply(themed)
    assert not T.is_dark()

    monkeypatch.delenv(T.ENV_VAR)
    menu = T.theme_menu()
    by_choice = {a.data(): a for a in menu.actions()}
    assert set(by_choice) == {"system", "light", "dark"}
    by_choice["dark"].trigger()
    assert T.is_dark() and T.preference() == "dark"
    assert T._settings().value(T.SETTINGS_KEY) == "dark"     # remembered for the next start
    menu.aboutToShow.emit()
    assert by_choice["dark"].isChecked() and not by_choice["system"].isChecked()
    monkeypatch.setenv(T.ENV_VAR, "light")              # the variable wins over the saved choice
    T.apply(themed)
    assert not T.is_dark()
    monkeypatch.delenv(T.ENV_VAR)
    by_choice["system"].trigger()
    assert not T.is_dark() and T.preference() == "system"
    menu.deleteLater()


def test_the_main_window_has_a_theme_menu(themed, make_window):
    window = make_window()
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    theme = [a.menu() for a in view.actions() if a.menu() is not None and "Theme" in a.text()]
    if not theme:
        pytest.skip("View ▸ Theme is not wired in the main window yet")
    assert {a.data() for a in theme[0].actions()} == {"system", "light", "dark"}


def test_the_console_recolours_its_own_lines(themed, qtbot):
    class Doc(QtCore.QObject):
        output = QtCore.Signal(str)
        scriptFailed = QtCore.Signal(str, int)
        last_error = ""

    doc = Doc()
    pane = console.Console(doc)
    qtbot.addWidget(pane)
    doc.output.emit("▶ running lesson.py\n")
    doc.output.emit("printed\n")
    doc.scriptFailed.emit("ValueError: boom", 3)

    def colours():
        found = set()
        block = pane.text.document().begin()
        while block.isValid():
            for r in block.layout().formats() or []:
                found.add(r.format.foreground().color().name())
            it = block.begin()
            while not it.atEnd():
                fmt = it.fragment().charFormat()
                if fmt.hasProperty(QtGui.QTextFormat.Property.ForegroundBrush):
                    found.add(fmt.foreground().color().name())
                it += 1
            block = block.next()
        return found

    assert {console.LIGHT_COLOURS["RUN_COLOUR"], console.LIGHT_COLOURS["ERROR_COLOUR"]} <= colours()
    T.apply(themed, "dark")
    found = colours()
    assert {console.DARK_COLOURS["RUN_COLOUR"], console.DARK_COLOURS["ERROR_COLOUR"]} <= found
    assert console.LIGHT_COLOURS["RUN_COLOUR"] not in found
    assert "printed" in pane.plain_text()


def test_heat_maps_and_idea_colours_read_on_dark(themed):
    import numpy as np
    T.apply(themed, "dark")
    image = T.heat_image(np.array([[-1.0, 0.0, 1.0]]))
    zero = image.pixelColor(1, 0)
    assert lightness(zero) < 60                          # zero recedes into the dark node
    assert image.pixelColor(0, 0).blue() > 200 and image.pixelColor(2, 0).red() > 200
    for name in ("FORWARD", "BACKWARD", "STEP", "ZERO", "LOSS", "TEXT", "PLOT_FOREGROUND"):
        assert lightness(getattr(T, name)) - lightness(T.BACKGROUND) > 90, name
    assert T.PHASE_COLOURS["backward"] == T.DARK["BACKWARD"]


def test_icons_are_drawn_at_the_screen_pixel_ratio(themed):
    icon = icons.icon("play")
    for ratio in (1.0, 1.5, 2.0):
        pixmap = icon.pixmap(QtCore.QSize(24, 24), ratio)
        assert pixmap.devicePixelRatio() == ratio
        assert pixmap.width() == round(24 * ratio)
    # drawn, not scaled up: a 2x icon has more distinct edge shades than the 1x one
    sharp = icon.pixmap(QtCore.QSize(24, 24), 2.0).toImage()
    assert sharp.pixelColor(26, 24).alpha() == 255      # the triangle's middle, in device pixels
    light = icon.pixmap(QtCore.QSize(24, 24)).toImage()
    T.apply(themed, "dark")
    dark = icon.pixmap(QtCore.QSize(24, 24)).toImage()
    opaque = [(x, y) for x in range(24) for y in range(24) if light.pixelColor(x, y).alpha() == 255]
    x, y = opaque[len(opaque) // 2]
    assert lightness(dark.pixelColor(x, y)) > lightness(light.pixelColor(x, y))   # lighter on dark


SCALED = r"""
import sys
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from ui.app import make_window
w = make_window()
w.resize(800, 600)
w.show()
for _ in range(20):
    app.processEvents()
w.document.finish_now()
app.processEvents()
button = w.transport.widgetForAction(w.act_play)
image = button.grab().toImage()
print(app.devicePixelRatio(), image.devicePixelRatio(), image.width(), button.width())
w.document.modified = False
w.close()
"""


def test_a_scale_factor_of_two_renders_at_double_resolution():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2", HOME=os.environ.get("HOME", "/tmp"))
    env.pop("GRADVIZ_THEME", None)
    out = subprocess.run([sys.executable, "-c", SCALED], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    app_ratio, image_ratio, image_w, button_w = out.stdout.split()[-4:]
    assert float(app_ratio) == 2.0 and float(image_ratio) == 2.0
    assert int(image_w) == 2 * int(button_w)          # the button is grabbed at full device resolution


def test_a_change_of_the_system_scheme_is_followed(themed, monkeypatch):
    monkeypatch.delenv(T.ENV_VAR, raising=False)
    monkeypatch.setattr(T, "system_scheme", lambda: "dark")       # offscreen has no desktop to ask
    themed.styleHints().colorSchemeChanged.emit(QtCore.Qt.ColorScheme.Dark)
    assert T.is_dark()
    monkeypatch.setenv(T.ENV_VAR, "light")                          # an override is not overridden
    monkeypatch.setattr(T, "system_scheme", lambda: "light")
    T.apply(themed)
    monkeypatch.setattr(T, "system_scheme", lambda: "dark")
    themed.styleHints().colorSchemeChanged.emit(QtCore.Qt.ColorScheme.Dark)
    assert not T.is_dark()


def test_a_huge_array_is_drawn_from_evenly_spaced_rows_and_columns():
    """A 100,000 x 300 activation becomes a 256 x 256 thumbnail of its evenly spaced rows and
    columns (first and last included), not a 30-megapixel image; small arrays keep one pixel each."""
    a = np.zeros((100_000, 300))
    a[0, 0], a[-1, -1] = 1.0, -1.0                      # both corners are among the kept elements
    img = T.heat_image(a)
    assert (img.width(), img.height()) == (T.HEAT_MAX_SIDE, T.HEAT_MAX_SIDE)
    assert QtGui.QColor(img.pixel(0, 0)) == QtGui.QColor(T.HEAT_LUT[255])
    assert QtGui.QColor(img.pixel(255, 255)) == QtGui.QColor(T.HEAT_LUT[0])
    small = T.heat_image(np.arange(12.0).reshape(3, 4))
    assert (small.width(), small.height()) == (4, 3)


def test_a_large_arrays_mean_is_computed_once_and_exactly():
    from ui.graph import text
    a = np.random.default_rng(0).standard_normal((400, 500)).astype(np.float32)
    first = text.mean_number(a)
    assert first == text.format_number(np.mean(a.astype(np.float64)), 2)
    a_view_mean = text._MEANS[id(a)]
    assert a_view_mean[0] is a and text.mean_number(a) == first
