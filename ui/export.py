"""Animated GIF of one iteration, frame by frame, for slides."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6 import QtGui, QtWidgets

GIF_WIDTH = 960
FRAME_MS = 350
MAX_FRAMES = 600


def qimage_to_pil(image: QtGui.QImage) -> Image.Image:
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
            frames.append(qimage_to_pil(graph.render_frame_image(width)))
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
