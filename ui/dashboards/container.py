"""The dashboards widget: the six panels in tabs or in a grid, under one bar that picks the parameter
series they show.

``Dashboards(document, view_state)``: every panel shows every run and draws the ViewState's variant
(the current run, chosen in the toolbar) thicker; every cursor follows its iteration
(``set_iteration(k)``), and clicking a plotted point
chooses that iteration. The ``grid_action`` is the View menu's "Dashboards in a grid", kept in step
with the bar's Grid button.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as T
from .data_view import DataView
from .panel import PlotPanel, Selection, slices
from .param_space import ParamSpacePlot
from .schedule import SchedulePlot
from .series_plots import GradsPlot, ParamsPlot, StatePlot
from .time_series import LossPlot


class StayOpenMenu(QtWidgets.QMenu):
    """A menu whose checkable entries toggle without closing it (several series in one visit)."""

    def mouseReleaseEvent(self, event):
        action = self.activeAction()
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event):
        action = self.activeAction()
        if (action is not None and action.isCheckable() and action.isEnabled()
                and event.key() in (QtCore.Qt.Key.Key_Space, QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter)):
            action.trigger()
            return
        super().keyPressEvent(event)


SECTIONS = (("value", "Scalar parameters"), ("norm", "Tensor norms"), ("element", "Tensor elements"))


class SeriesPicker(QtWidgets.QToolButton):
    """A drop-down menu of checkable parameter series: scalars and tensor norms in the menu, each
    tensor's elements in a submenu of its own; it stays open while entries are ticked.

    A tensor's submenu gets its entries when it first opens (a 2-32-32-1 MLP has over a thousand
    elements: making them all at every run took longer than a frame); ``actions_`` makes them all."""

    def __init__(self, selection: Selection, parent=None):
        super().__init__(parent)
        self.selection = selection
        self.setText("Series ▾")
        self.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.setToolTip("Which parameters, tensor elements or norms the Parameters, Gradients and "
                        "Optimizer state plots draw")
        self.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_ = StayOpenMenu(self)
        self.setMenu(self.menu_)
        self._actions: dict[str, QtGui.QAction] = {}      # label -> its entry, once made
        self._grouped: list[str] = []                     # every series' label, in menu order
        self._unfilled: dict[StayOpenMenu, list] = {}      # a tensor's submenu -> its series, until it opens
        selection.changed.connect(self.fill)
        self.fill()

    @property
    def actions_(self) -> list[QtGui.QAction]:
        """Every entry, in menu order (the submenus not opened yet are filled first)."""
        for sub in list(self._unfilled):
            self._fill_sub(sub)
        return [self._actions[label] for label in self._grouped if label in self._actions]

    def fill(self) -> None:
        chosen = set(self.selection.labels)
        series = self.selection.series
        grouped = [s.label for kind, _heading in SECTIONS for s in series if s.kind == kind]
        if grouped == self._grouped and self._grouped:
            for label, action in self._actions.items():   # same series: only the ticks (the menu may be open)
                action.blockSignals(True)
                action.setChecked(label in chosen)
                action.blockSignals(False)
            return
        self.menu_.clear()
        self._actions = {}
        self._unfilled = {}
        self._grouped = grouped
        for kind, heading in SECTIONS:
            group = [s for s in series if s.kind == kind]
            if not group:
                continue
            self.menu_.addSection(heading)
            if kind != "element":
                for s in group:
                    self._add(self.menu_, s, chosen)
                continue
            for param in dict.fromkeys(s.param for s in group):       # one submenu per tensor
                sub = StayOpenMenu(f"{param} elements", self.menu_)
                self.menu_.addMenu(sub)
                self._unfilled[sub] = [s for s in group if s.param == param]
                sub.aboutToShow.connect(lambda sub=sub: self._fill_sub(sub))
        if not grouped:
            empty = self.menu_.addAction("No parameters yet")
            empty.setEnabled(False)

    def _fill_sub(self, sub: StayOpenMenu) -> None:
        group = self._unfilled.pop(sub, None)
        if group is None:
            return
        chosen = set(self.selection.labels)
        for s in group:
            self._add(sub, s, chosen)

    def _add(self, menu: QtWidgets.QMenu, series, chosen: set) -> None:
        action = QtGui.QAction(series.label, menu)
        action.setCheckable(True)
        action.setChecked(series.label in chosen)
        action.toggled.connect(self._on_toggled)
        menu.addAction(action)
        self._actions[series.label] = action

    def checked_labels(self) -> list[str]:
        """The ticked series in menu order (a submenu not opened yet: as the selection has them)."""
        chosen = set(self.selection.labels)
        return [label for label in self._grouped
                if (self._actions[label].isChecked() if label in self._actions else label in chosen)]

    def _on_toggled(self, _on: bool) -> None:
        self.selection.set_labels(self.checked_labels())


PANELS = (("loss", LossPlot), ("params", ParamsPlot), ("grads", GradsPlot), ("space", ParamSpacePlot),
          ("state", StatePlot), ("schedule", SchedulePlot), ("data", DataView))      # tab order
GRID_SPOTS = {"loss": (0, 0, 1, 1), "params": (0, 1, 1, 1), "grads": (0, 2, 1, 1), "space": (1, 0, 1, 1),
              "state": (1, 1, 1, 1), "schedule": (1, 2, 1, 1), "data": (0, 3, 2, 1)}   # (row, col, rows, cols)


class PanelPlaceholder(QtWidgets.QWidget):
    """A panel's place (a tab, a grid cell) until the panel is made or shown there: its title, faint.
    Being shown asks for the panel (``Dashboards._want``)."""

    def __init__(self, name: str, title: str, shown, parent=None):
        super().__init__(parent)
        self.name, self.title, self._shown = name, title, shown
        self.setMinimumSize(260, 180)           # as a panel: the grid does not move when it comes

    def paintEvent(self, _event) -> None:
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(T.PLOT_BACKGROUND))
        painter.setPen(QtGui.QColor(T.TEXT_FAINT))
        painter.drawText(self.rect(), int(QtCore.Qt.AlignmentFlag.AlignCenter), self.title)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._shown(self.name)


class Dashboards(QtWidgets.QWidget):
    """The six panels with a shared variant/series selection, in tabs or in a grid.

    Never long on the UI thread: a panel is made when it is first shown (the window opens with the
    first tab's only; ``loss``, ``params``… make theirs when asked for), a placeholder holding its
    place until then; showing the grid puts placeholders in every cell and swaps in one panel per
    turn of the event loop (``panel.slices``), each refreshing in a turn of its own.
    ``finish_pending()`` makes and shows all of it at once."""

    def __init__(self, document, view_state, parent=None, player=None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self.player = player                                     # the Data view maps a selected node to its layer
        self.selection = Selection(document, view_state, self)
        self._made: dict[str, PlotPanel] = {}                    # name -> panel, once made
        self._holders = {name: PanelPlaceholder(name, cls.title, self._want) for name, cls in PANELS}
        self._revealing: list[str] = []                          # grid cells still showing placeholders
        self.destroyed.connect(lambda *_a, key=self._reveal_key: slices().discard(key))
        self.panels_made = 0                                     # (tests)

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        self.picker = SeriesPicker(self.selection)
        bar.addWidget(self.picker)
        bar.addStretch(1)
        self.grid_button = QtWidgets.QToolButton()
        self.grid_button.setText("Grid")
        self.grid_button.setCheckable(True)
        self.grid_button.setToolTip("Show every plot at once (grid) or one per tab")
        self.grid_button.toggled.connect(lambda on: self.set_layout_mode("grid" if on else "tabs"))
        bar.addWidget(self.grid_button)
        self.grid_action = QtGui.QAction("Dashboards in a &grid", self)
        self.grid_action.setCheckable(True)
        self.grid_action.toggled.connect(lambda on: self.set_layout_mode("grid" if on else "tabs"))

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.grid = QtWidgets.QWidget()
        self.grid_layout = QtWidgets.QGridLayout(self.grid)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(4)
        # equal cells whatever their contents: a panel swapped in for its placeholder (or refreshed)
        # moves no other, so only it is laid out and painted again
        for column in range(4):
            self.grid_layout.setColumnStretch(column, 1)
        for row in range(2):
            self.grid_layout.setRowStretch(row, 1)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.grid)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        self.layout_mode = ""
        self._make(PANELS[0][0])                 # the first tab, shown with the window
        self.set_layout_mode("tabs")

        # "computing…" over the (cleared) plots while another scenario's first steps are computed
        self.pending = QtWidgets.QLabel(self.stack)
        self.pending.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.pending.setWordWrap(True)
        self.pending.hide()
        self.stack.installEventFilter(self)

        document.runStarted.connect(self._fill_variants)
        document.runFinished.connect(self._fill_variants)
        # bound methods, not lambdas: Qt drops them when this widget goes (the Document stays)
        document.runProgress.connect(self._on_run_progress)
        document.runFinished.connect(self.clear_pending)
        document.failed.connect(self._on_failed)
        view_state.iterationChanged.connect(self.set_iteration)
        self.set_iteration(view_state.iteration)
        if document.scenario is not None:          # made after a run: catch up with it
            self._fill_variants()
            if document.sessions:
                self.refresh()

    # -- the panels, made when first wanted ------------------------------------------------------
    def panel(self, name: str) -> PlotPanel:
        """The panel ``name`` (``"loss"``, ``"space"``…), made now if it was not yet, in its place."""
        made = self._made.get(name)
        if made is None:
            made = self._make(name)
            self._place(name)
        return made

    loss = property(lambda self: self.panel("loss"))
    params = property(lambda self: self.panel("params"))
    grads = property(lambda self: self.panel("grads"))
    space = property(lambda self: self.panel("space"))
    state = property(lambda self: self.panel("state"))
    schedule = property(lambda self: self.panel("schedule"))
    data = property(lambda self: self.panel("data"))

    @property
    def panels(self) -> list[PlotPanel]:
        """Every panel, in tab order (the ones not made yet are made now)."""
        return [self.panel(name) for name, _cls in PANELS]

    def made_panels(self) -> list[PlotPanel]:
        """The panels made so far, in tab order."""
        return [self._made[name] for name, _cls in PANELS if name in self._made]

    def _make(self, name: str) -> PlotPanel:
        """Make panel ``name`` (hidden; ``_place`` puts it where its placeholder is) and catch it up."""
        cls = dict(PANELS)[name]
        panel = cls(self.document, self.selection, self.view_state.set_iteration)
        if name == "data":
            panel.player = self.player
        panel.setParent(self)                # hidden until placed
        if self.layout_mode == "grid":
            panel.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self._made[name] = panel
        self.panels_made += 1
        panel.set_iteration(self.view_state.iteration)
        if self.document.scenario is not None and self.document.sessions and not self.pending_shown():
            panel.refresh()                  # hidden: noted, done when shown (``PlotPanel.showEvent``)
        return panel

    def _place(self, name: str) -> None:
        """Panel ``name`` instead of its placeholder (a tab, or a grid cell already revealed)."""
        panel, holder = self._made[name], self._holders[name]
        if self.layout_mode == "tabs":
            index = self.tabs.indexOf(holder)
            if index < 0:
                return
            current = self.tabs.currentIndex()
            self.tabs.blockSignals(True)
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, panel, panel.title)
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(False)
            holder.hide()
        elif name not in self._revealing and self.grid_layout.indexOf(holder) >= 0:
            self.grid_layout.replaceWidget(holder, panel)
            holder.hide()
            panel.show()

    def _want(self, name: str) -> None:
        """A placeholder was shown: its panel comes in a turn of its own (made there if need be)."""
        if name not in self._revealing:
            self._revealing.append(name)
        slices().add(self._reveal_key, self._reveal_next)

    @property
    def _reveal_key(self) -> tuple:
        return ("dashboards", id(self))

    def _reveal_next(self, _deadline: float = 0.0, force: bool = False) -> bool:
        """One placeholder still shown (any, with ``force``) gives way to its panel: made in this turn
        if need be, else shown; True while more wait. Nothing else runs in the turn (``Slices.end_turn``):
        the panel's first layout and paint come after it."""
        if not force and not slices().alone(self._reveal_key):
            return True                          # a turn of its own
        while self._revealing:
            name = self._revealing[0]
            if not (force or self._holders[name].isVisible()):
                self._revealing.pop(0)           # its tab was left, or the dock hidden: again when shown
                continue
            if name not in self._made:
                self._make(name)                 # made in one turn, shown in the next
                if not force:
                    slices().end_turn()
                    break
            self._revealing.pop(0)
            self._place(name)
            slices().end_turn()
            break
        return bool(self._revealing)

    def show_pending(self, text: str) -> None:
        """Clear every panel and show ``text`` (e.g. "Running MLP on two moons… 40%") centred over them,
        until the new run's first steps arrive (``runProgress`` with steps done) or it finishes or
        fails. Calling it again while it shows only changes the text."""
        self.pending.setText(text)
        if self.pending.isVisible():
            return
        for panel in self.made_panels():
            panel.clear_data()
        veil = QtGui.QColor(T.PLOT_BACKGROUND)        # the theme of the moment (light or dark)
        self.pending.setStyleSheet(f"QLabel {{ background: rgba({veil.red()}, {veil.green()}, {veil.blue()}, 215); "
                                   f"color: {T.PLOT_FOREGROUND}; font-size: 11pt; }}")
        self.pending.setGeometry(self.stack.rect())
        self.pending.show()
        self.pending.raise_()

    def pending_shown(self) -> bool:
        pending = getattr(self, "pending", None)
        return pending is not None and pending.isVisible()

    def _on_run_progress(self, done: int, _total: int) -> None:
        if done > 0:
            self.clear_pending()

    def _on_failed(self, _message: str) -> None:
        self.clear_pending()

    def clear_pending(self) -> None:
        """Remove the "computing…" text (the panels show the new run)."""
        if self.pending.isVisible():
            self.pending.hide()
            self.refresh()

    def eventFilter(self, watched, event):
        if watched is self.stack and event.type() == QtCore.QEvent.Type.Resize:
            self.pending.setGeometry(self.stack.rect())
        return super().eventFilter(watched, event)

    def set_layout_mode(self, mode: str) -> None:
        """``"tabs"`` (one plot at a time) or ``"grid"`` (all six visible).

        The grid starts with every cell's placeholder and swaps in the panels one per turn (painting
        seven panels, and refreshing those that changed while hidden, took 300 ms in one turn)."""
        if mode == self.layout_mode:
            return
        self.layout_mode = mode
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        self.tabs.clear()
        self.tabs.blockSignals(False)
        for name, _cls in PANELS:
            for widget in (self._holders[name], self._made.get(name)):
                if widget is not None:
                    self.grid_layout.removeWidget(widget)
        self._revealing = []
        slices().discard(self._reveal_key)
        for widget in list(self._holders.values()) + list(self._made.values()):
            policy = QtWidgets.QSizePolicy.Policy.Ignored if mode == "grid" else QtWidgets.QSizePolicy.Policy.Preferred
            widget.setSizePolicy(policy, policy)
        if mode == "grid":
            for name, _cls in PANELS:
                panel = self._made.get(name)
                if panel is not None:
                    panel.hide()
                    panel.setParent(self.grid)
                self.grid_layout.addWidget(self._holders[name], *GRID_SPOTS[name])
                self._holders[name].show()
                self._revealing.append(name)
            self.stack.setCurrentWidget(self.grid)
        else:
            self.tabs.blockSignals(True)
            for name, cls in PANELS:
                self.tabs.addTab(self._made.get(name) or self._holders[name], cls.title)
            self.tabs.blockSignals(False)
            self.tabs.setCurrentIndex(max(current, 0))
            self.stack.setCurrentWidget(self.tabs)
        for toggle in (self.grid_button, self.grid_action):
            toggle.blockSignals(True)
            toggle.setChecked(mode == "grid")
            toggle.blockSignals(False)

    def current_panel(self) -> PlotPanel:
        if self.layout_mode == "tabs":
            widget = self.tabs.currentWidget()
            if isinstance(widget, PanelPlaceholder):
                return self.panel(widget.name)
            return widget or self.loss
        return self.loss

    def _fill_variants(self) -> None:
        if self.document.scenario is None:
            return
        if self.selection.sync():
            self.picker.fill()

    def set_iteration(self, k: int) -> None:
        """Move every panel's cursor to optimizer step ``k``."""
        for p in self.made_panels():
            p.set_iteration(k)

    def refresh(self) -> None:
        for p in self.made_panels():
            p.refresh()

    def finish_pending(self) -> None:
        """Complete every panel's deferred work now (panels not made or shown yet, a hidden tab's
        refresh, small plots still to be made or filled over the next turns of the event loop): for
        tests and exports."""
        slices().discard(self._reveal_key)
        while self._revealing:
            self._reveal_next(force=True)
        for p in self.panels:
            p.finish_pending()
