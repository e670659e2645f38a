"""The console pane: a script's printed text as it comes, GradViz's own lines on lines of their own."""
from PySide6 import QtCore

from ui.console import Console


class _Doc(QtCore.QObject):
    output = QtCore.Signal(str)
    scriptFailed = QtCore.Signal(str, object)
    last_error = ""


def test_printed_text_and_gradviz_lines_each_keep_their_lines(qtbot):
    doc = _Doc()
    console = Console(doc)
    qtbot.addWidget(console)
    for text in ("▶ lesson.py", "loss 4.0\n", "w = ", "tensor([1.8000])\n", "✓ lesson.py: 100 iterations",
                 "▶ lesson.py", "partial"):
        doc.output.emit(text)
    doc.scriptFailed.emit("lesson.py:3: ZeroDivisionError: division by zero", 3)
    assert console.plain_text().splitlines() == [
        "▶ lesson.py", "loss 4.0", "w = tensor([1.8000])", "✓ lesson.py: 100 iterations",
        "▶ lesson.py", "partial", "lesson.py:3: ZeroDivisionError: division by zero"]
    qtbot.mouseClick(console.clear_button, QtCore.Qt.MouseButton.LeftButton)
    doc.output.emit("again\n")
    assert console.plain_text() == "again\n"
