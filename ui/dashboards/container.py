"""The dashboards widget: the six panels in tabs or in a grid, under one bar that picks the variant
and the parameter series they show.

``Dashboards(document, view_state)``: the bar's variant box shows and chooses the ViewState's
variant, every cursor follows its iteration (``set_iteration(k)``), and clicking a plotted point
chooses that iteration. The ``grid_action`` is the View menu's "Dashboards in a grid", kept in step
with the bar's Grid button.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from ..theme import variant_swatch
from .panel import PlotPanel, Selection
from .param_space import ParamSpacePlot
from .schedule import SchedulePlot
from .time_series import GradsPlot, LossPlot, ParamsPlot, StatePlot


class SeriesPicker(QtWidgets.QToolButton):
    """A drop-down list of checkable parameter series (scalars, norms, tensor elements)."""

    def __init__(self, selection: Selection, parent=None):
        super().__init__(parent)
        self.selection = selection
        self.setText("Series ▾")
        self.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.setToolTip("Which parameters, tensor elements or norms the Parameters, Gradients and "
                        "Optimizer state plots draw")
        self.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.list = QtWidgets.QListWidget()
        self.list.setMinimumSize(220, 260)
        menu = QtWidgets.QMenu(self)
        action = QtWidgets.QWidgetAction(menu)
        action.setDefaultWidget(self.list)
        menu.addAction(action)
        self.setMenu(menu)
        self.list.itemChanged.connect(self._on_item_changed)
        selection.changed.connect(self.fill)

    def fill(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        chosen = set(self.selection.labels)
        for s in self.selection.series:
            item = QtWidgets.QListWidgetItem(s.label)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if s.label in chosen else QtCore.Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def _on_item_changed(self, _item) -> None:
        labels = [self.list.item(i).text() for i in range(self.list.count())
                  if self.list.item(i).checkState() == QtCore.Qt.CheckState.Checked]
        self.selection.set_labels(labels)


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
        self.panels: list[PlotPanel] = [self.loss, self.params, self.grads, self.space, self.state,
                                        self.schedule]

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        bar.addWidget(QtWidgets.QLabel("Variant"))
        self.variant_box = QtWidgets.QComboBox()
        self.variant_box.setToolTip("The run the Parameters, Gradients and Optimizer state plots show")
        self.variant_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.variant_box.activated.connect(view_state.set_variant)
        bar.addWidget(self.variant_box)
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

        document.runStarted.connect(self._fill_variants)
        document.runFinished.connect(self._fill_variants)
        view_state.variantChanged.connect(self.variant_box.setCurrentIndex)
        view_state.iterationChanged.connect(self.set_iteration)
        self.set_iteration(view_state.iteration)
        if document.scenario is not None:          # made after a run: catch up with it
            self._fill_variants()
            if document.sessions:
                self.refresh()

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
            spots = [(0, 0, 1, 1), (0, 1, 1, 1), (0, 2, 1, 1), (1, 0, 1, 1), (1, 1, 1, 1), (1, 2, 1, 1)]
            order = [self.loss, self.params, self.grads, self.space, self.state, self.schedule]
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
        self.variant_box.clear()
        for i, v in enumerate(self.document.scenario.variants()):
            self.variant_box.addItem(variant_swatch(i), v.name)
        self.variant_box.setCurrentIndex(self.view_state.variant)
        if self.selection.sync():
            self.picker.fill()

    def set_iteration(self, k: int) -> None:
        """Move every panel's cursor to optimizer step ``k``."""
        for p in self.panels:
            p.set_iteration(k)

    def refresh(self) -> None:
        for p in self.panels:
            p.refresh()
