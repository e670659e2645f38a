"""The graph as a picture: PNG and SVG of the current frame, and an animated GIF of the whole iteration.

Exports draw every label whatever the zoom, and the whole drawing whatever part is on screen.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .. import theme as T
from .items import CACHE, NO_CACHE

GIF_WIDTH = 960
FRAME_MS = 350
MAX_FRAMES = 600


def render_image(view, scale: float, width: int | None = None) -> QtGui.QImage:
    """The whole drawing of ``view`` (a GraphView) at ``scale``, or ``width`` pixels wide."""
    view.show_all_detail(True)
    try:
        rect = view.export_rect()
        w = width or max(1, int(rect.width() * scale))
        h = max(1, round(rect.height() * (w / rect.width())))
        image = QtGui.QImage(w, h, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QtGui.QColor(T.BACKGROUND))
        painter = QtGui.QPainter(image)
        painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        view.scene().render(painter, QtCore.QRectF(0, 0, w, h), rect)
        painter.end()
        return image
    finally:
        view.show_all_detail(False)


def render_frame_image(view, width: int) -> QtGui.QImage:
    """The whole graph at the current frame, ``width`` pixels wide (for GIF export)."""
    rect = view.export_rect()
    return render_image(view, width / rect.width(), width=width)


def export_png(view, path: str, scale: float = 2.0) -> bool:
    return render_image(view, scale).save(str(path), "PNG")


def export_svg(view, path: str) -> bool:
    from PySide6 import QtSvg
    rect = view.export_rect()
    gen = QtSvg.QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QtCore.QSize(int(rect.width()), int(rect.height())))
    gen.setViewBox(QtCore.QRectF(0, 0, rect.width(), rect.height()))
    gen.setTitle("GradViz computation graph")
    painter = QtGui.QPainter()
    if not painter.begin(gen):
        return False
    view.show_all_detail(True)
    # Text items are cached as device pixmaps (fast repaints); drawn through the cache they would
    # land in the SVG as embedded bitmaps.  Uncached, they reach the generator as real <text>.
    scene = view.scene()
    cached = [item for item in scene.items() if item.cacheMode() != NO_CACHE]
    for item in cached:
        item.setCacheMode(NO_CACHE)
    try:
        painter.fillRect(QtCore.QRectF(0, 0, rect.width(), rect.height()), QtGui.QColor(T.BACKGROUND))
        painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        scene.render(painter, QtCore.QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()
        for item in cached:
            item.setCacheMode(CACHE)
        view.show_all_detail(False)
    return True


def qimage_to_pil(image: QtGui.QImage):
    from PIL import Image
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    w, h = image.width(), image.height()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    arr = buf.reshape(h, image.bytesPerLine())[:, :w * 4].reshape(h, w, 4)
    return Image.fromarray(arr.copy(), "RGBA").convert("RGB")


def export_gif(graph, player, path: str | Path, progress=None, width: int = GIF_WIDTH) -> bool:
    """Render every event of the current iteration to ``path``; False when cancelled.

    ``progress`` is a QProgressDialog (or anything with setValue/wasCanceled); events are
    processed between frames so the window stays responsive.
    """
    start = player.position
    count = player.count
    stride = max(1, -(-count // MAX_FRAMES))
    frames = []
    try:
        for i in range(0, count, stride):
            player.seek(i)
            frames.append(qimage_to_pil(render_frame_image(graph, width)))
            if progress is not None:
                progress.setValue(i)
                QtWidgets.QApplication.processEvents()
                if progress.wasCanceled():
                    return False
    finally:
        player.seek(start)
    if not frames:
        return False
    size = frames[0].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    durations = [FRAME_MS] * (len(frames) - 1) + [FRAME_MS * 6]     # linger on the last frame
    tmp = Path(path).with_suffix(".gif.part")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=False)
    tmp.replace(path)
    if progress is not None:
        progress.setValue(count)
    return True
