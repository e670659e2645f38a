"""Exports from the dashboards: a plot as PNG or SVG, a History as CSV or JSON.

The writers (``export_plot``, ``export_history``) are plain functions; ``DashboardExporter`` adds
the File ▸ Export actions, the file dialog (sensible default names) and the overwrite question, and
reports what it wrote or why it could not (``wrote``, ``failed``) for the window to show.
"""
from __future__ import annotations

import re
from pathlib import Path

import pyqtgraph.exporters as pg_exporters
from PySide6 import QtCore, QtGui, QtWidgets

PNG_MIN_WIDTH = 1600          # exported bitmaps are drawn at least this wide (slides, papers)
FILTERS = {"png": "PNG images (*.png)", "svg": "SVG images (*.svg)", "csv": "CSV tables (*.csv)",
           "json": "JSON (*.json)"}


def slug(text: str) -> str:
    """``SGD(lr=0.01, momentum=0.9)`` -> ``sgd_lr_0.01_momentum_0.9`` (safe in a file name)."""
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_").lower()
    return text[:60] or "run"


def export_plot(panel, path: str | Path) -> Path:
    """Write one dashboard panel (everything it shows, colour bar and legend included)."""
    path = Path(path)
    scene = panel.view.scene()
    kind = path.suffix.lower().lstrip(".")
    if kind == "png":
        exporter = pg_exporters.ImageExporter(scene)
        width = int(exporter.parameters()["width"])
        if width < PNG_MIN_WIDTH:
            exporter.parameters()["width"] = PNG_MIN_WIDTH
        exporter.parameters()["background"] = panel.view.backgroundBrush().color()
    elif kind == "svg":
        return _export_svg(panel, path)
    else:
        raise ValueError(f"plots export as .png or .svg, not {path.suffix or 'no suffix'}")
    exporter.export(str(path))
    if not path.exists():
        raise OSError(f"{path} was not written")
    return path


def _export_svg(panel, path: Path) -> Path:
    """Vector SVG of the panel through Qt's own generator.

    pyqtgraph 0.14's SVGExporter post-processes Qt's SVG and chokes on the ``Z`` (close path) that
    Qt 6.10+ writes for every rectangle ("not enough values to unpack", pyqtgraph issue #3485), so
    the scene is rendered straight into a QSvgGenerator instead. Item caches are switched off while
    rendering so that curves come out as paths, not bitmaps.
    """
    from PySide6 import QtSvg
    view = panel.view
    scene = view.scene()
    size = view.viewport().size()
    cached = [(item, item.cacheMode()) for item in scene.items()
              if item.cacheMode() != QtWidgets.QGraphicsItem.CacheMode.NoCache]
    for item, _mode in cached:
        item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.NoCache)
    generator = QtSvg.QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(size)
    generator.setResolution(view.logicalDpiX())     # else QPicture-cached axes replay at 72 dpi, shifted
    generator.setViewBox(QtCore.QRect(0, 0, size.width(), size.height()))
    generator.setTitle(getattr(panel, "title", "GradViz plot"))
    generator.setDescription("Exported from GradViz")
    painter = QtGui.QPainter(generator)
    try:
        painter.fillRect(QtCore.QRectF(0, 0, size.width(), size.height()), view.backgroundBrush())
        view.render(painter, QtCore.QRectF(0, 0, size.width(), size.height()), view.viewport().rect())
    finally:
        painter.end()
        for item, mode in cached:
            item.setCacheMode(mode)
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"{path} was not written")
    return path


def export_history(history, path: str | Path) -> Path:
    """Write ``history`` as CSV (one row per optimizer step) or JSON (columns + metadata)."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind == "csv":
        history.to_csv(path)
    elif kind == "json":
        history.to_json(path)
    else:
        raise ValueError(f"a History exports as .csv or .json, not {path.suffix or 'no suffix'}")
    return path


def confirm_overwrite(parent, path: str | Path) -> bool:
    """True when ``path`` does not exist yet or the user agrees to replace it."""
    path = Path(path)
    if not path.exists():
        return True
    B = QtWidgets.QMessageBox.StandardButton
    answer = QtWidgets.QMessageBox.question(parent, "Replace file?",
                                            f"{path.name} already exists in {path.parent}. Replace it?",
                                            B.Yes | B.No, B.No)
    return answer == B.Yes


def ask_save_path(parent, title: str, default: str, kind: str) -> str | None:
    """The save dialog (the overwrite question is ours, asked once, after it)."""
    options = QtWidgets.QFileDialog.Option.DontConfirmOverwrite
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, title, default, FILTERS[kind], options=options)
    return path or None


class DashboardExporter(QtCore.QObject):
    """The dashboards' File ▸ Export entries: the current plot as PNG/SVG, the selected variant's
    History as CSV/JSON. ``parent`` is the widget the dialogs belong to."""
    wrote = QtCore.Signal(str)           # "Wrote <path>"
    failed = QtCore.Signal(str)          # what went wrong, for an error box

    def __init__(self, document, dashboards, parent=None):
        super().__init__(parent)
        self.document = document
        self.dashboards = dashboards
        self.ask_path = ask_save_path        # tests replace this
        self.menu_actions: list[QtGui.QAction] = []
        for text, slot in (("Plot as P&NG…", lambda: self.export_plot("png")),
                           ("Plot as S&VG…", lambda: self.export_plot("svg")),
                           ("History as &CSV…", lambda: self.export_history("csv")),
                           ("History as &JSON…", lambda: self.export_history("json"))):
            action = QtGui.QAction(text, self)
            action.triggered.connect(slot)
            self.menu_actions.append(action)

    def _stem(self) -> str:
        path = self.document.path
        return path.stem if path else "scenario"

    def default_plot_path(self, kind: str) -> Path:
        panel = self.dashboards.current_panel()
        return Path.home() / f"{self._stem()}_{slug(panel.title)}.{kind}"

    def default_history_path(self, kind: str) -> Path:
        variants = self.document.scenario.variants()
        i = min(self.dashboards.selection.variant, len(variants) - 1)
        return Path.home() / f"{self._stem()}_{slug(variants[i].name)}_history.{kind}"

    def _target(self, title: str, default: Path, kind: str, path) -> Path | None:
        if path is None:
            path = self.ask_path(self.parent(), title, str(default), kind)
            if not path:
                return None
        path = Path(path)
        if path.suffix.lower() != f".{kind}":
            path = path.with_name(path.name + f".{kind}")
        if not confirm_overwrite(self.parent(), path):
            return None
        return path

    def export_plot(self, kind: str, path: str | Path | None = None) -> Path | None:
        panel = self.dashboards.current_panel()
        target = self._target(f"Export {panel.title} plot as {kind.upper()}", self.default_plot_path(kind), kind, path)
        if target is None:
            return None
        try:
            export_plot(panel, target)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Could not write {target}: {exc}")
            return None
        self.wrote.emit(f"Wrote {target}")
        return target

    def export_history(self, kind: str, path: str | Path | None = None) -> Path | None:
        doc = self.document
        if doc.scenario is None or not doc.sessions:
            return None
        if doc.running:
            doc.finish_now()                 # export the complete run, not a part of it
        histories = doc.histories
        i = min(self.dashboards.selection.variant, len(histories) - 1)
        target = self._target("Export History as " + kind.upper(), self.default_history_path(kind), kind, path)
        if target is None:
            return None
        try:
            export_history(histories[i], target)
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Could not write {target}: {exc}")
            return None
        self.wrote.emit(f"Wrote {target}")
        return target
