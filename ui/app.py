"""Application entry point (the ``gradviz`` console script and ``main.py``)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    win = QtWidgets.QMainWindow()
    win.setWindowTitle("GradViz")
    win.setCentralWidget(QtWidgets.QLabel("GradViz — the app is being built."))
    win.resize(900, 600)
    win.show()
    return app.exec()
