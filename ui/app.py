"""Application entry point (the ``gradviz`` console script and ``main.py``).

``python main.py [SCENARIO.toml | SCRIPT.py]``: with no argument the app opens on the classic tutorial
scenario; a bad file named on the command line opens the tutorial and shows the file's error.
"""
from __future__ import annotations

import sys
from pathlib import Path


def make_window(path: str | None = None):
    """Build the main window with ``path`` (or the tutorial) open; errors are shown, never raised."""
    from PySide6 import QtCore

    from .main_window import MainWindow

    window = MainWindow()
    window.open_default()
    if path:
        message = window.load(path) if Path(path).exists() else f"{path}: no such file"
        if message:
            QtCore.QTimer.singleShot(0, lambda: window.show_error(message))
    return window


def main(argv: list[str] | None = None) -> int:
    from PySide6 import QtWidgets

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName("GradViz")
    app.setOrganizationName("GradViz")
    window = make_window(argv[0] if argv else None)
    window.show()
    return app.exec()
