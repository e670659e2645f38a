"""Exports from the dashboards: a plot as PNG or SVG, a History as CSV or JSON.

The writers (``export_plot``, ``export_history``) are plain functions; ``DashboardExporter`` adds
the File ▸ Export actions, the file dialog (sensible default names) and the overwrite question, and
reports what it wrote or why it could not (``wrote``, ``failed``) for the window to show.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as T

MAX_EXPORT_MARKERS = 20       # a curve with more points exports as a line without its markers

PNG_SCALE = 2                 # exported bitmaps have twice the logical pixels (slides, papers)
EXPORT_MIN_SIZE = (1000, 560)   # a plot is laid out at least this large (logical px) to be exported
TITLE_HEIGHT = 36
FILTERS = {"png": "PNG images (*.png)", "svg": "SVG images (*.svg)", "csv": "CSV tables (*.csv)",
           "json": "JSON (*.json)"}


def slug(text: str) -> str:
    """``SGD(lr=0.01, momentum=0.9)`` -> ``sgd_lr_0.01_momentum_0.9`` (safe in a file name)."""
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_").lower()
    return text[:60] or "run"


def plot_title(panel) -> str:
    """``Loss — float16: gradient underflow and loss scaling``: the panel and the scenario."""
    scenario = getattr(panel.document, "scenario", None)
    name = getattr(scenario, "title", "") if scenario is not None else ""
    return f"{panel.title} — {name}" if name else panel.title


def export_plot(panel, path: str | Path) -> Path:
    """Write one dashboard panel as a slide-ready picture: a title above everything the panel shows
    (axis names, legend, colour bar), laid out at least ``EXPORT_MIN_SIZE``; PNG at ``PNG_SCALE``
    times the pixels, SVG with every curve and trajectory as one vector path."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise ValueError(f"plots export as .png or .svg, not {path.suffix or 'no suffix'}")
    finish = getattr(panel, "finish_pending", None)
    if finish is not None:
        finish()                       # every small plot made and filled before it is painted
    title = plot_title(panel)
    with _laid_out_for_export(panel) as size:
        full = QtCore.QSize(size.width(), size.height() + TITLE_HEIGHT)
        if kind == "png":
            image = QtGui.QImage(full * PNG_SCALE, QtGui.QImage.Format.Format_ARGB32)
            image.setDevicePixelRatio(PNG_SCALE)
            image.fill(panel.view.backgroundBrush().color())
            painter = QtGui.QPainter(image)
            try:
                _paint(panel, painter, size, title)
            finally:
                painter.end()
            if not image.save(str(path)):
                raise OSError(f"{path} was not written")
        else:
            from PySide6 import QtSvg
            generator = QtSvg.QSvgGenerator()
            generator.setFileName(str(path))
            generator.setSize(full)
            # else QPicture-cached axes replay at 72 dpi, shifted
            generator.setResolution(panel.view.logicalDpiX())
            generator.setViewBox(QtCore.QRect(0, 0, full.width(), full.height()))
            generator.setTitle(title)
            generator.setDescription("Exported from GradViz")
            painter = QtGui.QPainter(generator)
            try:
                painter.fillRect(QtCore.QRectF(0, 0, full.width(), full.height()), panel.view.backgroundBrush())
                _paint(panel, painter, size, title)
            finally:
                painter.end()
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"{path} was not written")
    return path


def _paint(panel, painter: QtGui.QPainter, size: QtCore.QSize, title: str) -> None:
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing)
    font = QtGui.QFont()
    font.setPointSizeF(13)
    font.setBold(True)
    painter.setFont(font)
    painter.setPen(QtGui.QColor(T.PLOT_FOREGROUND))
    painter.drawText(QtCore.QRectF(12, 0, size.width() - 24, TITLE_HEIGHT),
                     int(QtCore.Qt.AlignmentFlag.AlignCenter), title)
    view = panel.view
    view.render(painter, QtCore.QRectF(0, TITLE_HEIGHT, size.width(), size.height()),
                QtCore.QRect(0, 0, size.width(), size.height()))


@contextlib.contextmanager
def _laid_out_for_export(panel):
    """The panel's plot view at export size, with what only the screen needs switched off:
    item caches (curves would come out as bitmaps), per-point markers on long curves (hundreds of
    little images in an SVG), segmented lines (one <path> per curve, not one per segment), hovers."""
    view = panel.view
    old = view.size()
    size = QtCore.QSize(max(old.width(), EXPORT_MIN_SIZE[0]), max(old.height(), EXPORT_MIN_SIZE[1]))
    scene = view.scene()
    restore = []
    for item in scene.items():
        if item.cacheMode() != QtWidgets.QGraphicsItem.CacheMode.NoCache:
            restore.append((item.setCacheMode, item.cacheMode()))
            item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.NoCache)
        if isinstance(item, pg.PlotDataItem) and item.opts.get("symbol") is not None:
            x, _y = item.getData()
            if x is not None and len(x) > MAX_EXPORT_MARKERS:
                restore.append((item.setSymbol, item.opts["symbol"]))
                item.setSymbol(None)
        if isinstance(item, pg.PlotCurveItem) and item.opts.get("segmentedLineMode") != "off":
            restore.append((item.setSegmentedLineMode, item.opts.get("segmentedLineMode")))
            item.setSegmentedLineMode("off")
        if isinstance(item, pg.TextItem) and item.isVisible() and item in getattr(panel, "_hovers", {}).values():
            restore.append((item.setVisible, True))
            item.hide()
    try:
        if size != old:
            view.resize(size)
            view.ci.layout.activate()
        scene.prepareForPaint()
        yield view.viewport().size() if size == old else size
    finally:
        if size != old:
            view.resize(old)
            view.ci.layout.activate()
        for setter, value in reversed(restore):
            setter(value)


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
