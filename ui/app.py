"""Application entry point (the ``gradviz`` console script and ``main.py``).

``python main.py [SCENARIO.toml | SCRIPT.py]``: with no argument the app opens on the classic tutorial
scenario; a bad file named on the command line opens the tutorial and shows the file's error.

The colours follow the system's light or dark scheme (View ▸ Theme, or GRADVIZ_THEME=light|dark,
overrides it). High-dpi screens need nothing here: Qt 6 scales by the screen's ratio by itself,
the graph and plots are drawn as vectors and the icons are drawn at the screen's pixel ratio.
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

_frozen = False


def _freeze_startup_objects() -> None:
    """Move every object made so far (about 80,000: the modules of Qt, pyqtgraph, numpy and GradViz,
    and the window itself) out of the cyclic garbage collector's sight, once per process: they live
    as long as the process, and a full collection walking them all took 130-150 ms on the UI thread
    (``UiThreadGC``); with them frozen it walks only a scenario's objects (2-14 ms with the two-moons
    MLP open). Objects made later, every scenario's, are tenured the same way once they survive a
    full collection (``run_thread.UiThreadGC``)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _preload_script_modules() -> None:
    """Import what runs a PyTorch script (its recorder, ``torch`` namespace and worker) while the window
    is built, not when the first script is opened: compiling them took 23 ms of that open's turn
    where no ``.pyc`` is written (2-5 ms with one), with the window up (issue 12: limit_modules.py's
    open stall, 41-57 ms)."""
    import gradviz.training.script  # noqa: F401
    import gradviz.training.worker  # noqa: F401


_blas_capped = False


def make_window(path: str | None = None):
    """Build the main window with ``path`` (or the tutorial) open; errors are shown, never raised. A
    large TOML file is still loading in a worker on return (``window.files``: ``wait()`` ends it)."""
    from PySide6 import QtCore

    from .blas_threads import leave_a_core
    from .main_window import MainWindow

    global _blas_capped
    if not _blas_capped:                   # numpy's BLAS on one core fewer: the UI thread keeps one
        _blas_capped = True
        leave_a_core()
    window = MainWindow()
    _preload_script_modules()
    _freeze_startup_objects()
    window.open_default()
    if path:
        message = window.load(path) if Path(path).exists() else f"{path}: no such file"
        if message:
            QtCore.QTimer.singleShot(0, lambda: window.show_error(message))
    return window


def main(argv: list[str] | None = None) -> int:
    from PySide6 import QtWidgets

    from . import theme

    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName("GradViz")
    app.setOrganizationName("GradViz")
    theme.apply(app)                       # after the names: the saved View ▸ Theme choice is read
    window = make_window(argv[0] if argv else None)
    window.show()
    return app.exec()
