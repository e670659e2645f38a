"""Finding a node by name: which nodes a query matches, and the find field over the graph's corner.

A query matches a node's names, case-insensitively: a parameter's or input's name (``w``,
``0.weight``), an op's grad_fn name (``MulBackward0``), its op (``mul``) and its symbol (``×``).
Only the best kind of match counts: exact names, else names starting with the query, else names
containing it -- so ``w`` finds the parameter ``w``, not every ``…Backward0``.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as T

Qt = QtCore.Qt


def node_names(replay, node_id: int) -> list[str]:
    """The names a query is matched against, lower case."""
    info = replay.nodes[node_id]
    names = [replay.node_name(node_id), info.label]
    if info.inputs:
        names += [info.op, replay.symbol(node_id)]
    return [n.lower() for n in names if n]


def find_matches(replay, text: str) -> list[int]:
    """The node ids ``text`` matches, in trace order (see the module docstring)."""
    query = text.strip().lower()
    if replay is None or not query:
        return []
    tiers: tuple[list, list, list] = ([], [], [])
    for nid in replay.nodes:
        names = node_names(replay, nid)
        if query in names:
            tiers[0].append(nid)
        elif any(n.startswith(query) for n in names):
            tiers[1].append(nid)
        elif any(query in n for n in names):
            tiers[2].append(nid)
    return next((tier for tier in tiers if tier), [])


class _Field(QtWidgets.QLineEdit):
    escaped = QtCore.Signal()
    previous = QtCore.Signal()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and shift:
            self.previous.emit()
            return
        super().keyPressEvent(event)


class SearchBox(QtWidgets.QFrame):
    """The find field: typing goes to the first match, Enter to the next (Shift+Enter the previous),
    Escape gives the keyboard back to the graph.  ``find(text, step)`` is the graph's: it moves to
    the match and returns (index, count)."""

    WIDTH = 200

    def __init__(self, parent: QtWidgets.QWidget, find, leave):
        super().__init__(parent)
        self.setObjectName("graphSearch")
        self._find, self._leave = find, leave
        self.field = _Field(self)
        self.field.setPlaceholderText("Find node (Ctrl+F)")
        self.field.setClearButtonEnabled(True)
        self.field.setToolTip("Find a node by name: a parameter (w), an input (x), an op (MulBackward0, mul, ×).\n"
                              "Enter: next match · Shift+Enter: previous · Esc: back to the graph")
        self.count = QtWidgets.QLabel(self)
        self.count.setMinimumWidth(34)
        self.count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.setSpacing(4)
        layout.addWidget(self.field, 1)
        layout.addWidget(self.count)
        self.count.hide()
        self.field.textEdited.connect(lambda text: self._go(text, 0))
        self.field.returnPressed.connect(lambda: self._go(self.field.text(), 1))
        self.field.previous.connect(lambda: self._go(self.field.text(), -1))
        self.field.escaped.connect(self._leave)
        self.restyle()
        self.setFixedWidth(self.WIDTH)
        self.adjustSize()

    def restyle(self) -> None:
        self.setStyleSheet(f"#graphSearch {{ background: {T.PANEL}; border: 1px solid {T.PANEL_BORDER};"
                           f" border-radius: 8px; }}")
        self.count.setStyleSheet(f"color: {T.TEXT_MUTED}")

    def focus(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def _go(self, text: str, step: int) -> None:
        index, total = self._find(text, step)
        self.show_result(text, index, total)

    def show_result(self, text: str, index: int, total: int) -> None:
        self.count.setVisible(bool(text.strip()))
        if not text.strip():
            self.count.setText("")
        elif total == 0:
            self.count.setText("none")
        else:
            self.count.setText(f"{index + 1}/{total}")
        colour = T.ERROR if text.strip() and total == 0 else T.TEXT_MUTED
        self.count.setStyleSheet(f"color: {colour}")
