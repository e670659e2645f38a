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
from .panel import PlotPanel, Selection
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


class Dashboards(QtWidgets.QWidget):
    """The six panels with a shared variant/series selection, in tabs or in a grid."""

    def __init__(self, document, view_state, parent=None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self.selection = Selection(document, view_state, self)
        pick = view_state.set_iteration
        self.loss = LossPlot(document, self.selection, pick)
        self.params = ParamsPlot(document, self.selection, pick)
        self.grads = GradsPlot(document, self.selection, pick)
        self.space = ParamSpacePlot(document, self.selection, pick)
        self.state = StatePlot(document, self.selection, pick)
        self.schedule = SchedulePlot(document, self.selection, pick)
        self.data = DataView(document, self.selection, pick)      # the data and the model's fit
        self.panels: list[PlotPanel] = [self.loss, self.params, self.grads, self.space, self.state,
                                        self.schedule, self.data]

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
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.grid)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        self.layout_mode = ""
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

    def show_pending(self, text: str) -> None:
        """Clear every panel and show ``text`` (e.g. "Running MLP on two moons… 40%") centred over them,
        until the new run's first steps arrive (``runProgress`` with steps done) or it finishes or
        fails. Calling it again while it shows only changes the text."""
        self.pending.setText(text)
        if self.pending.isVisible():
            return
        for panel in self.panels:
            panel.clear_data()
        veil = QtGui.QColor(T.PLOT_BACKGROUND)        # the theme of the moment (light or dark)
        self.pending.setStyleSheet(f"QLabel {{ background: rgba({veil.red()}, {veil.green()}, {veil.blue()}, 215); "
                                   f"color: {T.PLOT_FOREGROUND}; font-size: 11pt; }}")
        self.pending.setGeometry(self.stack.rect())
        self.pending.show()
        self.pending.raise_()

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
        """``"tabs"`` (one plot at a time) or ``"grid"`` (all six visible)."""
        if mode == self.layout_mode:
            return
        self.layout_mode = mode
        current = self.tabs.currentIndex()
        self.tabs.clear()
        for p in self.panels:
            self.grid_layout.removeWidget(p)
        if mode == "grid":
            spots = [(0, 0, 1, 1), (0, 1, 1, 1), (0, 2, 1, 1), (1, 0, 1, 1), (1, 1, 1, 1), (1, 2, 1, 1),
                     (0, 3, 2, 1)]
            order = [self.loss, self.params, self.grads, self.space, self.state, self.schedule, self.data]
            for p, (r, c, rs, cs) in zip(order, spots):
                self.grid_layout.addWidget(p, r, c, rs, cs)
                p.show()
            self.stack.setCurrentWidget(self.grid)
        else:
            for p in self.panels:
                self.tabs.addTab(p, p.title)
            self.tabs.setCurrentIndex(max(current, 0))
            self.stack.setCurrentWidget(self.tabs)
        for toggle in (self.grid_button, self.grid_action):
            toggle.blockSignals(True)
            toggle.setChecked(mode == "grid")
            toggle.blockSignals(False)

    def current_panel(self) -> PlotPanel:
        if self.layout_mode == "tabs":
            return self.tabs.currentWidget() or self.loss
        return self.loss

    def _fill_variants(self) -> None:
        if self.document.scenario is None:
            return
        if self.selection.sync():
            self.picker.fill()

    def set_iteration(self, k: int) -> None:
        """Move every panel's cursor to optimizer step ``k``."""
        for p in self.panels:
            p.set_iteration(k)

    def refresh(self) -> None:
        for p in self.panels:
            p.refresh()

    def finish_pending(self) -> None:
        """Complete every panel's deferred work now (a hidden tab's refresh, small plots still to be
        made or filled over the next turns of the event loop): for tests and exports."""
        for p in self.panels:
            p.finish_pending()
