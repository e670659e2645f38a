"""Where the main window's docks and toolbars go, and how large they are, at any window size.

Dock sizes are kept as *shares* of the window (the code column a quarter of its width, the plots a
third of its height…), clamped to a readable minimum and a useful maximum, and re-applied whenever
the window changes size: shrinking to 800×600 and enlarging again gives the same layout back (Qt
alone gives every pixel of a grown window to the centre and leaves the docks as narrow as the small
window made them). Dragging a dock's edge sets its share. The shares are saved with the window's
state; a restored state that is from another version or would not fit the screen is dropped for the
default layout (View ▸ Reset layout returns to it any time).

The transport toolbar and the view toolbar (iteration, variant, speed) share one row when it is wide
enough for both, and wrap onto two rows when it is not, so no control hides behind an overflow
button.
"""
from __future__ import annotations

import json

from PySide6 import QtCore, QtWidgets

Area = QtCore.Qt.DockWidgetArea
Horizontal, Vertical = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical

LAYOUT_VERSION = 2          # saveState's version: layouts saved before shares existed are not restored
# name: (share of the window, minimum px, maximum px); widths for the columns, heights for the rest
DEFAULT_SHARES = {
    "code": (330 / 1400, 200, 620),       # the code column: 330 px in a 1400 px window
    "right": (340 / 1400, 280, 520),      # the controls / inspector column
    "bottom": (0.33, 150, 480),           # the plots
    "console": (0.22, 60, 260),           # the console, a share of the code column's height
}
CODE_MIN, RIGHT_MIN = 150, 250             # the narrowest the code and the controls columns get
WINDOW_SHARE = 0.8                         # the first window: this much of the screen…
WINDOW_MAX = QtCore.QSize(1800, 1120)      # …but no larger than this
WINDOW_MIN = QtCore.QSize(800, 600)
SCRUBBER_MIN, SCRUBBER_MAX = 160, 900      # the event scrubber's width in the transport toolbar


class Scrubber(QtWidgets.QSlider):
    """The transport's event slider: as wide as ``set_hint_width`` says (a toolbar gives a widget its
    size hint, and the last toolbar of a row all the rest)."""

    def __init__(self, parent=None):
        super().__init__(QtCore.Qt.Orientation.Horizontal, parent)
        self._hint = SCRUBBER_MIN
        self.setMinimumWidth(SCRUBBER_MIN)

    def set_hint_width(self, width: int) -> None:
        if width != self._hint:
            self._hint = width
            self.updateGeometry()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt's name)
        return QtCore.QSize(self._hint, super().sizeHint().height())


def default_geometry(screen: QtCore.QRect) -> QtCore.QRect:
    """The first window's rectangle on a screen's available geometry: 80 % of it, capped, at least
    800×600 when the screen has room for it, centred."""
    w = int(screen.width() * WINDOW_SHARE)
    h = int(screen.height() * WINDOW_SHARE)
    w = max(min(w, WINDOW_MAX.width()), min(WINDOW_MIN.width(), screen.width()))
    h = max(min(h, WINDOW_MAX.height()), min(WINDOW_MIN.height(), screen.height()))
    return QtWidgets.QStyle.alignedRect(QtCore.Qt.LayoutDirection.LeftToRight, QtCore.Qt.AlignmentFlag.AlignCenter,
                                        QtCore.QSize(w, h), screen)


class WindowLayout(QtCore.QObject):
    """Keeps a MainWindow's docks at their shares and its toolbars on one or two rows.

    ``WindowLayout(window)`` after every dock and toolbar exists; the window calls ``restore(s)`` and
    ``save(s)`` with its QSettings, and ``reset()`` is View ▸ Reset layout."""

    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.w = window
        self.shares = {name: share for name, (share, _lo, _hi) in DEFAULT_SHARES.items()}
        self._applied = QtCore.QSize()
        self._dragging = False
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.apply)
        # minimums below the default sizes: a window at its smallest (about 750 px) still has room
        window.code_dock.setMinimumWidth(CODE_MIN)
        window.controls_dock.setMinimumWidth(RIGHT_MIN)
        window.inspector_dock.setMinimumWidth(RIGHT_MIN)
        window.dashboards_dock.setMinimumHeight(DEFAULT_SHARES["bottom"][1] - 20)
        # the left column (code over console) fits under two toolbar rows at 800×600
        window.code_panel.setMinimumHeight(80)
        window.scripts.console.setMinimumHeight(48)
        window.installEventFilter(self)

    def _docks(self) -> dict:
        w = self.w
        return {"code": w.code_dock, "console": w.scripts.console_dock, "inspector": w.inspector_dock,
                "controls": w.controls_dock, "bottom": w.dashboards_dock}

    # -- sizes --------------------------------------------------------------------------------------
    def target(self, name: str, length: int) -> int:
        """The size of dock ``name`` in a window (or column) ``length`` px long."""
        _share, lo, hi = DEFAULT_SHARES[name]
        return int(max(lo, min(hi, round(self.shares[name] * length))))

    @staticmethod
    def _docked(dock) -> bool:
        return dock.isVisible() and not dock.isFloating()

    def _right_dock(self):
        """The dock that stands for the right column (the front tab of the controls/inspector pair)."""
        w = self.w
        for dock in (w.controls_dock, w.inspector_dock):
            if self._docked(dock) and not dock.visibleRegion().isEmpty():
                return dock
        for dock in (w.controls_dock, w.inspector_dock):
            if self._docked(dock):
                return dock
        return None

    def schedule(self) -> None:
        self._timer.start()

    @QtCore.Slot()
    def apply(self, force: bool = False) -> None:
        """Give every docked dock its share of the window's current size, and wrap the toolbars."""
        w = self.w
        size = w.size()
        if not w.isVisible() or (size == self._applied and not force):
            return
        self._applied = size
        self._wrap_toolbars(size.width())
        docks = self._docks()
        widths, heights = [], []
        if self._docked(docks["code"]):
            widths.append((docks["code"], self.target("code", size.width())))
        right = self._right_dock()
        if right is not None:
            widths.append((right, self.target("right", size.width())))
        if widths:
            w.resizeDocks([d for d, _ in widths], [n for _, n in widths], Horizontal)
        if self._docked(docks["bottom"]):
            heights.append((docks["bottom"], self.target("bottom", size.height())))
        if heights:
            w.resizeDocks([d for d, _ in heights], [n for _, n in heights], Vertical)
        code, console = docks["code"], docks["console"]
        if self._docked(code) and self._docked(console) and w.dockWidgetArea(console) == w.dockWidgetArea(code):
            column = size.height() - (heights[0][1] if heights else 0) - 120
            low = self.target("console", column)
            w.resizeDocks([code, console], [max(column - low, 100), low], Vertical)

    def remember(self) -> None:
        """The user dragged a dock's edge: its size is its share from now on."""
        w, docks = self.w, self._docks()
        width, height = max(w.width(), 1), max(w.height(), 1)
        if self._docked(docks["code"]):
            self.shares["code"] = docks["code"].width() / width
        right = self._right_dock()
        if right is not None:
            self.shares["right"] = right.width() / width
        if self._docked(docks["bottom"]):
            self.shares["bottom"] = docks["bottom"].height() / height
        code, console = docks["code"], docks["console"]
        if self._docked(code) and self._docked(console):
            self.shares["console"] = console.height() / max(code.height() + console.height(), 1)
        for name, (_share, lo, hi) in DEFAULT_SHARES.items():   # a share beyond the limits says nothing
            length = height if name in ("bottom", "console") else width
            self.shares[name] = min(max(self.shares[name], lo / length), hi / length)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if obj is self.w:
            if kind == QtCore.QEvent.Type.Resize or kind == QtCore.QEvent.Type.Show:
                self.schedule()
            elif kind == QtCore.QEvent.Type.MouseButtonPress:
                # on a dock separator the window shows a split cursor (QMainWindow drags those itself)
                shape = self.w.cursor().shape()
                self._dragging = shape in (QtCore.Qt.CursorShape.SplitHCursor, QtCore.Qt.CursorShape.SplitVCursor)
            elif kind == QtCore.QEvent.Type.MouseButtonRelease and self._dragging:
                self._dragging = False
                QtCore.QTimer.singleShot(0, self.remember)
        return False

    # -- toolbars -----------------------------------------------------------------------------------
    def _wrap_toolbars(self, width: int) -> None:
        w = self.w
        first, second = w.transport, w.view_bar
        if w.toolBarArea(first) != w.toolBarArea(second) or not first.isVisible() or not second.isVisible():
            return
        scrubber = w.scrubber
        need = first.sizeHint().width() - scrubber.sizeHint().width() + SCRUBBER_MIN + second.sizeHint().width() + 16
        two_rows = need > width
        if two_rows != w.toolBarBreak(second):
            if two_rows:
                w.insertToolBarBreak(second)
            else:
                w.removeToolBarBreak(second)
        # one row: the scrubber takes the room the view toolbar leaves (a toolbar keeps its size hint)
        # (its size hint, not its minimum: a minimum would keep the window from shrinking)
        scrubber.set_hint_width(SCRUBBER_MIN if two_rows else max(SCRUBBER_MIN, min(SCRUBBER_MIN + width - need - 40,
                                                                                     SCRUBBER_MAX)))

    # -- default, saved and restored layouts --------------------------------------------------------
    def reset(self) -> None:
        """The default arrangement: code over console on the left, controls (with the inspector a tab
        away) on the right, the plots below, every dock shown and docked, the default shares."""
        w, d = self.w, self._docks()
        for dock in d.values():
            dock.setFloating(False)
        w.addDockWidget(Area.LeftDockWidgetArea, d["code"])
        w.splitDockWidget(d["code"], d["console"], Vertical)
        w.addDockWidget(Area.RightDockWidgetArea, d["inspector"])
        w.tabifyDockWidget(d["inspector"], d["controls"])
        w.addDockWidget(Area.BottomDockWidgetArea, d["bottom"])
        w.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, w.transport)
        w.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, w.view_bar)
        for dock in d.values():
            dock.show()
        (d["inspector"] if w.document.is_script else d["controls"]).raise_()
        self.shares = {name: share for name, (share, _lo, _hi) in DEFAULT_SHARES.items()}
        self._applied = QtCore.QSize()
        self.apply(force=True)
        QtCore.QTimer.singleShot(0, lambda: self.apply(force=True))   # once the new arrangement is laid out

    def save(self, settings: QtCore.QSettings) -> None:
        settings.setValue("geometry", self.w.saveGeometry())
        settings.setValue("windowState", self.w.saveState(LAYOUT_VERSION))
        settings.setValue("layout/shares", json.dumps(self.shares))

    def restore(self, settings: QtCore.QSettings) -> None:
        """The saved geometry, arrangement and shares, each only when it fits this screen and version."""
        w = self.w
        geometry = settings.value("geometry")
        if geometry and w.restoreGeometry(geometry) and not self._fits_screen(w.frameGeometry()):
            self.place_default()
        state = settings.value("windowState")
        if state and not w.restoreState(state, LAYOUT_VERSION):
            pass                                   # an older layout: the default arrangement stays
        try:
            shares = json.loads(settings.value("layout/shares") or "{}")
        except (TypeError, ValueError):
            shares = {}
        for name, value in shares.items() if isinstance(shares, dict) else ():
            if name in self.shares and isinstance(value, (int, float)) and 0.02 < value < 0.7:
                self.shares[name] = float(value)

    def place_default(self) -> None:
        screen = self.w.screen() or QtWidgets.QApplication.primaryScreen()
        self.w.setGeometry(default_geometry(screen.availableGeometry()))

    def _fits_screen(self, rect: QtCore.QRect) -> bool:
        screen = self.w.screen() or QtWidgets.QApplication.primaryScreen()
        available = screen.availableVirtualGeometry() if screen is not None else rect
        return (rect.width() <= available.width() + 8 and rect.height() <= available.height() + 8
                and available.intersects(rect))

    def validate(self) -> bool:
        """After the first show: a restored arrangement whose docks are floating off-screen, or too
        narrow for their content, is replaced by the default one. True when it was kept."""
        w, broken = self.w, False
        screen = w.screen() or QtWidgets.QApplication.primaryScreen()
        available = screen.availableVirtualGeometry()
        for dock in self._docks().values():
            if dock.isFloating() and dock.isVisible():
                broken |= not available.contains(dock.frameGeometry().center())
        for name in ("code", "controls", "inspector"):
            dock = self._docks()[name]
            if self._docked(dock) and not dock.visibleRegion().isEmpty():
                broken |= dock.width() < dock.minimumWidth()
        if broken:
            self.reset()
        return not broken
