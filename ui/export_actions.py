"""File ▸ Export: the graph as PNG or SVG, the iteration as an animated GIF, the scenario as a
PyTorch script. Each asks for a file name (in the home folder, named after the scenario and the
iteration) and says in the status bar what it wrote, or shows why it could not.

``ExportActions(window)`` makes the four actions (``actions``, in menu order); the window puts
them in its Export menu. It reads the window's graph, Player, Document and current variant.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets


class ExportActions(QtCore.QObject):
    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.w = window
        self.act_png = self._action("Graph as &PNG…", lambda: self.export_graph("png"))
        self.act_svg = self._action("Graph as &SVG…", lambda: self.export_graph("svg"))
        self.act_gif = self._action("Iteration as animated &GIF…", self.export_gif)
        self.act_torch = self._action("Scenario as PyTorch &script…", self.export_torch_script)
        self.actions = [self.act_png, self.act_svg, self.act_gif, self.act_torch]

    def _action(self, text: str, slot) -> QtGui.QAction:
        action = QtGui.QAction(text, self.w)
        action.triggered.connect(slot)
        self.w.addAction(action)
        return action

    def _stem(self) -> str:
        path = self.w.document.path
        return path.stem if path else "scenario"

    def _export_name(self, suffix: str) -> str:
        return str(Path.home() / f"{self._stem()}_iter{self.w.iteration}.{suffix}")

    def _ask_save_path(self, title: str, default: str, filt: str) -> str | None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.w, title, default, filt)
        return path or None

    def _wrote(self, path: str) -> None:
        self.w.statusBar().showMessage(f"Wrote {path}", 4000)

    def export_graph(self, kind: str) -> None:
        path = self._ask_save_path(f"Export graph as {kind.upper()}", self._export_name(kind),
                                   f"{kind.upper()} images (*.{kind})")
        if not path:
            return
        graph = self.w.graph
        try:
            (graph.export_png if kind == "png" else graph.export_svg)(path)
        except OSError as exc:
            self.w.show_error(f"Could not write {path}: {exc}")
            return
        self._wrote(path)

    def export_gif(self) -> None:
        w = self.w
        if w.replay is None:
            return
        w.player.pause()                      # the export moves the cursor itself, frame by frame
        path = self._ask_save_path("Export iteration as animated GIF", self._export_name("gif"), "GIF (*.gif)")
        if not path:
            return
        from .graph.export import export_gif
        dialog = QtWidgets.QProgressDialog("Rendering frames…", "Cancel", 0, w.player.count, w)
        dialog.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(200)
        try:
            written = export_gif(w.graph, w.player, path, progress=dialog)
        except OSError as exc:
            w.show_error(f"Could not write {path}: {exc}")
            return
        finally:
            dialog.close()
        if written:
            self._wrote(path)

    def export_torch_script(self) -> None:
        from gradviz.codegen import export_torch
        default = str(Path(self._export_name("py")).with_name(self._stem() + "_torch.py"))
        path = self._ask_save_path("Export as PyTorch script", default, "Python (*.py)")
        if not path:
            return
        try:
            Path(path).write_text(export_torch(self.w.document.scenario, self.w.variant).source)
        except OSError as exc:
            self.w.show_error(f"Could not write {path}: {exc}")
            return
        self._wrote(path)
