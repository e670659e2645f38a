"""Regenerate the README's pictures from the app itself, offscreen:

    python docs/make_media.py            # writes docs/media/main_window.png and docs/media/iteration.gif

The screenshot is the main window on the bundled tutorial (``w*x+b``, SGD) in the middle of
``loss.backward()``; the GIF is one iteration of the graph (zero_grad, forward, loss, backward,
step), event by event, as File ▸ Export ▸ Iteration as GIF writes it. Run it again whenever the UI
changes. Settings go to a temporary folder, so the user's saved window layout plays no part.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "media"
WINDOW_SIZE = (1400, 860)
GIF_WIDTH = 720


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the pictures")
    parser.add_argument("--scenario", default="01_tutorial_wx_b", help="a bundled scenario name")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(HERE.parent))            # run from a checkout without installing

    from PySide6 import QtCore, QtWidgets
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                             tempfile.mkdtemp(prefix="gradviz-media-"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])

    from gradviz.scenario import bundled_path
    from ui.app import make_window
    from ui.graph.export import export_gif

    window = make_window(str(bundled_path(args.scenario)))
    window.resize(*WINDOW_SIZE)
    window.show()
    window.document.finish_now()
    app.processEvents()

    backward = [pos for pos, phase, _mb in window.replay.phase_starts() if phase == "backward"]
    step = [pos for pos, phase, _mb in window.replay.phase_starts() if phase == "step"]
    middle = (backward[0] + step[0]) // 2 if backward and step else window.player.count // 2
    window.player.seek(middle)
    for _ in range(3):
        app.processEvents()
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "main_window.png"
    if not window.grab().save(str(png)):
        print(f"{png}: could not write the screenshot", file=sys.stderr)
        return 1
    gif = args.out / "iteration.gif"
    if not export_gif(window.graph, window.player, gif, width=GIF_WIDTH):
        print(f"{gif}: could not write the animation", file=sys.stderr)
        return 1
    window.document.modified = False
    window.close()
    print(f"wrote {png} and {gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
