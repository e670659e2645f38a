"""What the user is looking at: one variant, one iteration of its run, and the selected node.

A thin QObject model, like the Player: views take it in their constructor, read ``variant``,
``iteration`` and ``selected_node`` and connect to the change signals; whatever lets the user choose
(a combo box, the iteration box, a click on a plot or on a node) calls a setter. Each signal fires
once per real change, after every value it affects is set (a variant switch that clamps the
iteration has both in place before ``variantChanged``).

It follows the Document it is built with (and, being built before the views that take it, it has
done so before their own ``scenarioChanged`` slots run): an edited scenario keeps the variant if it
still exists (else the last one); another scenario opened starts again at iteration 0 of the main
run; either way the selected node is forgotten, since node ids belong to the old run. While the
Document is running, an iteration is remembered as asked and fitted to the run when it finishes.
"""
from __future__ import annotations

from PySide6 import QtCore


class ViewState(QtCore.QObject):
    variantChanged = QtCore.Signal(int)
    iterationChanged = QtCore.Signal(int)
    selectedNodeChanged = QtCore.Signal(object)      # a node id, or None

    def __init__(self, document, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.document = document
        self._variant = 0
        self._iteration = 0
        self._node: int | None = None
        self._start_over = False
        document.opened.connect(self._on_opened)
        document.scenarioChanged.connect(self._on_scenario_changed)
        document.runFinished.connect(self._on_run_finished)

    # -- state ----------------------------------------------------------------------------------
    @property
    def variant(self) -> int:
        """0 = the main run, i = ``comparisons[i - 1]``."""
        return self._variant

    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def selected_node(self) -> int | None:
        return self._node

    @property
    def variant_count(self) -> int:
        scenario = self.document.scenario
        return len(scenario.variants()) if scenario is not None else 0

    @property
    def steps(self) -> int:
        """Optimizer steps the current variant's History holds so far (0 without one)."""
        return self._steps_of(self._variant)

    def _steps_of(self, variant: int) -> int:
        histories = self.document.histories
        history = histories[variant] if variant < len(histories) else None
        return int(history.steps) if history is not None else 0

    # -- choosing ---------------------------------------------------------------------------------
    @QtCore.Slot(int)
    def set_variant(self, i: int) -> None:
        """Show variant ``i`` (clamped to the scenario's variants) at the current iteration, or its
        last one when its run is shorter."""
        n = self.variant_count
        if n:
            variant = max(0, min(int(i), n - 1))
            self._update(variant, self._fitted(self._iteration, variant), self._node)

    @QtCore.Slot(int)
    def set_iteration(self, k: int) -> None:
        """Show optimizer step ``k``, clamped to the current run; nothing happens when the run has no
        steps to show yet (a failed run)."""
        k = max(0, int(k))
        if not self.document.running and self.steps == 0:
            return
        self._update(self._variant, self._fitted(k, self._variant), self._node)

    def select_node(self, node_id: int | None) -> None:
        self._update(self._variant, self._iteration, node_id)

    # -- following the document ---------------------------------------------------------------
    def _on_opened(self) -> None:
        self._start_over = True

    def _on_scenario_changed(self) -> None:
        start_over, self._start_over = self._start_over, False
        if start_over:
            self._update(0, 0, None)
        else:
            self._update(max(0, min(self._variant, self.variant_count - 1)), self._iteration, None)

    def _on_run_finished(self) -> None:
        self._update(self._variant, self._fitted(self._iteration, self._variant), self._node)

    def _fitted(self, k: int, variant: int) -> int:
        """``k`` within ``variant``'s finished run; as asked while a run is still going."""
        steps = 0 if self.document.running else self._steps_of(variant)
        return min(k, steps - 1) if steps else k

    def _update(self, variant: int, iteration: int, node: int | None) -> None:
        changed = (variant != self._variant, iteration != self._iteration, node != self._node)
        self._variant, self._iteration, self._node = variant, iteration, node
        # the current values, not the arguments: a slot may already have chosen again
        if changed[0]:
            self.variantChanged.emit(self._variant)
        if changed[1]:
            self.iterationChanged.emit(self._iteration)
        if changed[2]:
            self.selectedNodeChanged.emit(self._node)
