"""The Help menu: the keyboard shortcuts, the scenario file reference, About GradViz.

``HelpMenu(window)`` adds the menu to the window's menu bar once every other action exists. Each
entry opens a non-modal dialog (kept in ``dialog`` while it shows):

- **Keyboard shortcuts** lists every shortcut the window has, read from its actions (menus, the
  player's keys, the Lesson's Next/Back) and its QShortcuts, grouped by menu: never a
  hand-written list that could drift from the keys that work;
- **Scenario file reference** shows ``docs/scenarios.md``, shipped with the package as
  ``ui/docs/scenarios.md`` (a test keeps the copy equal to the original) so that a plain install has it;
- **About GradViz** says what GradViz is, with its version from the package metadata.
"""
from __future__ import annotations

import sys
from importlib import metadata, resources
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

REFERENCE = "docs/scenarios.md"               # inside the ui package (package data)
_CHECKOUT_DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"
# Shortcuts that are not actions: what they do, by their standard key.
_SHORTCUT_NAMES = {QtGui.QKeySequence.StandardKey.Find: "Find a node in the graph"}


def reference_text() -> str:
    """The scenario file reference (Markdown): the packaged copy, else the checkout's docs/."""
    try:
        return (resources.files("ui") / REFERENCE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return _CHECKOUT_DOC.read_text(encoding="utf-8")


def version() -> str:
    try:
        return metadata.version("gradviz")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def _menu_paths(bar: QtWidgets.QMenuBar) -> dict:
    """Each action in the menus -> its menu's title path ("File ▸ Export")."""
    paths: dict = {}

    def walk(menu: QtWidgets.QMenu, prefix: str) -> None:
        title = f"{prefix} ▸ {_plain(menu.title())}" if prefix else _plain(menu.title())
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), title)
            elif not action.isSeparator():
                paths.setdefault(action, title)
    for action in bar.actions():
        if action.menu() is not None:
            walk(action.menu(), "")
    return paths


def shortcut_rows(window: QtWidgets.QMainWindow) -> list[tuple[str, str, str]]:
    """(group, what, keys) for every shortcut of ``window``: its actions, then its QShortcuts."""
    paths = _menu_paths(window.menuBar())
    rows, seen = [], set()
    native = QtGui.QKeySequence.SequenceFormat.NativeText
    for action in window.findChildren(QtGui.QAction):
        keys = [k for k in action.shortcuts() if not k.isEmpty()]
        if not keys or id(action) in seen or not _plain(action.text()):
            continue
        seen.add(id(action))
        group = paths.get(action) or _owner(action)
        rows.append((group, _plain(action.text()), ", ".join(k.toString(native) for k in keys)))
    for shortcut in window.findChildren(QtGui.QShortcut):
        key = shortcut.key()
        if key.isEmpty():
            continue
        name = shortcut.whatsThis() or next((text for standard, text in _SHORTCUT_NAMES.items()
                                             if key in QtGui.QKeySequence.keyBindings(standard)), "")
        if name:
            rows.append(("Graph", name, key.toString(native)))
    order = [_plain(a.menu().title()) for a in window.menuBar().actions() if a.menu() is not None]
    rows.sort(key=lambda r: (order.index(r[0].split(" ▸ ")[0]) if r[0].split(" ▸ ")[0] in order
                             else len(order), r[0]))
    return rows


def _owner(action: QtGui.QAction) -> str:
    """The group of an action in no menu: the panel it belongs to ("Lesson"), else "Window"."""
    parent = action.parent()
    while parent is not None:
        name = parent.objectName()
        if name == "lessonPanel":
            return "Lesson"
        if isinstance(parent, QtWidgets.QMainWindow):
            break
        parent = parent.parent()
    return "Window"


class ShortcutsDialog(QtWidgets.QDialog):
    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.rows = shortcut_rows(window)
        for group, what, keys in self.rows:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for column, text in enumerate((group, what, keys)):
                self.table.setItem(row, column, QtWidgets.QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        note = QtWidgets.QLabel("The player's keys work wherever the focus is, except while typing "
                                "in the code editor or a number field.")
        note.setWordWrap(True)
        _dialog_layout(self, [note, self.table])
        self.resize(560, 520)


class ReferenceDialog(QtWidgets.QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("referenceDialog")
        self.setWindowTitle("Scenario file reference")
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(reference_text())
        _dialog_layout(self, [self.browser])
        self.resize(820, 640)


class AboutDialog(QtWidgets.QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About GradViz")
        try:
            summary = metadata.metadata("gradviz")["Summary"] or ""
        except metadata.PackageNotFoundError:
            summary = ""
        import numpy
        import PySide6
        self.label = QtWidgets.QLabel(
            f"<h2>GradViz {version()}</h2>"
            f"<p>{summary}</p>"
            "<p>GradViz runs a small PyTorch-compatible autograd core written with numpy, records "
            "every event of a training iteration (forward, backward, accumulation into "
            "<code>.grad</code>, <code>zero_grad()</code>, the optimizer's step) and animates it "
            "node by node, with the numbers of each step. Lessons are TOML scenarios or PyTorch "
            "scripts.</p>"
            f"<p style='color: gray;'>Python {sys.version.split()[0]} · numpy {numpy.__version__} · "
            f"PySide6 {PySide6.__version__}</p>")
        self.label.setWordWrap(True)
        self.label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        _dialog_layout(self, [self.label])
        self.resize(480, 300)


def _dialog_layout(dialog: QtWidgets.QDialog, widgets) -> None:
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QtWidgets.QVBoxLayout(dialog)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addWidget(buttons)


class HelpMenu(QtCore.QObject):
    """The window's Help menu (see the module docstring)."""

    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.window = window
        self.dialog: QtWidgets.QDialog | None = None
        self.menu = window.menuBar().addMenu("&Help")
        self.act_shortcuts = self.menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        self.act_shortcuts.setShortcut(QtGui.QKeySequence("F1"))
        self.act_reference = self.menu.addAction("&Scenario file reference", self.show_reference)
        self.menu.addSeparator()
        self.act_about = self.menu.addAction("&About GradViz", self.show_about)
        window.addAction(self.act_shortcuts)        # F1 wherever focus is in the window

    def _open(self, dialog: QtWidgets.QDialog) -> QtWidgets.QDialog:
        if self.dialog is not None:
            self.dialog.close()
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: self._forget(dialog))
        self.dialog = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def _forget(self, dialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def show_shortcuts(self) -> QtWidgets.QDialog:
        return self._open(ShortcutsDialog(self.window))

    def show_reference(self) -> QtWidgets.QDialog:
        return self._open(ReferenceDialog(self.window))

    def show_about(self) -> QtWidgets.QDialog:
        return self._open(AboutDialog(self.window))
