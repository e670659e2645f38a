"""The window's small dialogs and the trust the user gave to scripts.

``BundledDialog`` lists the lessons that ship with GradViz (TOML scenarios and PyTorch scripts);
``ask_to_run`` asks once before a script GradViz has not run before is run (the answer is kept per
file path and content hash in the settings; the bundled scripts are trusted); ``ask_time_limit``
sets how long a script may run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from gradviz.scenario import ScenarioError, bundled, load
from gradviz.scenario.bundled import bundled_dir

ORG, APP = "GradViz", "GradViz"
TRUST_KEY = "scripts/trusted"
MAX_TRUSTED = 200


def settings() -> QtCore.QSettings:
    # QSettings(ORG, APP) would always use NativeFormat; honouring defaultFormat() lets the tests
    # redirect every setting to a temporary IniFormat path (tests/ui/conftest.py).
    return QtCore.QSettings(QtCore.QSettings.defaultFormat(), QtCore.QSettings.Scope.UserScope, ORG, APP)


def bundled_scripts() -> list[Path]:
    """The bundled PyTorch scripts (``assets/scripts/*.py``), sorted by name."""
    try:
        from gradviz.scenario.bundled import bundled_scripts as listed
    except ImportError:
        return sorted((bundled_dir().parent / "scripts").glob("*.py"))
    return [getattr(entry, "path", entry) for entry in listed()]


def header(path: Path) -> tuple[str, str]:
    """A script's title and lesson: its first comment line, then the comment paragraph below it."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    title = lines[0] if lines and lines[0] else path.stem
    return title, " ".join(text for text in lines[1:] if text).strip()


# -- trust ------------------------------------------------------------------------------------------
def _key(path: Path, source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return f"{Path(path).resolve()}|{digest}"


def is_bundled_script(path: Path) -> bool:
    try:
        return Path(path).resolve().parent == (bundled_dir().parent / "scripts").resolve()
    except OSError:
        return False


def _trusted(settings) -> list[str]:
    value = settings.value(TRUST_KEY) or []
    return [value] if isinstance(value, str) else list(value)


def is_trusted(settings, path: Path, source: str) -> bool:
    return is_bundled_script(path) or _key(path, source) in _trusted(settings)


def trust(settings, path: Path, source: str) -> None:
    """Remember that the user lets GradViz run this file with this content (a new content asks again)."""
    key = _key(path, source)
    kept = [k for k in _trusted(settings) if k != key]
    settings.setValue(TRUST_KEY, [key] + kept[:MAX_TRUSTED - 1])


def ask_to_run(parent, settings, path: Path, source: str) -> bool:
    """True when ``path`` may run: trusted already, or the user says so now (and it is remembered)."""
    if is_trusted(settings, path, source):
        return True
    B = QtWidgets.QMessageBox.StandardButton
    answer = QtWidgets.QMessageBox.question(
        parent, "Run this script?",
        f"{Path(path).name} is a program: GradViz will run it on its own core (in a separate process, with "
        f"a time limit), as Python runs any script, so it can do whatever Python code can.\n\n"
        f"{Path(path).resolve()}\n\nRun it? (GradViz will not ask again for this file unless it changes.)",
        B.Yes | B.No, B.No)
    if answer != B.Yes:
        return False
    trust(settings, path, source)
    return True


def ask_time_limit(parent, current: float) -> float | None:
    value, ok = QtWidgets.QInputDialog.getInt(
        parent, "Time limit", "A script run stops after this many seconds:", int(round(current)), 1, 3600)
    return float(value) if ok else None


# -- the bundled lessons ------------------------------------------------------------------------------
class BundledDialog(QtWidgets.QDialog):
    """Pick one of the bundled scenarios or scripts: titles on the left, what to notice on the right."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Open bundled scenario")
        self.resize(760, 420)
        self.list = QtWidgets.QListWidget()
        self.about = QtWidgets.QTextBrowser()
        self.paths: list[Path] = []
        for path in bundled():
            try:
                scenario = load(path)
            except ScenarioError as exc:       # a broken bundled file should not hide the others
                title, text = path.stem, str(exc)
            else:
                title, text = scenario.title, scenario.description
            self._add(path, title, text)
        for path in bundled_scripts():
            try:
                title, text = header(path)
            except (OSError, UnicodeDecodeError) as exc:
                title, text = path.stem, str(exc)
            self._add(path, f"{title}  (script)", text)
        self.list.currentRowChanged.connect(
            lambda row: self.about.setPlainText(self.list.item(row).data(QtCore.Qt.ItemDataRole.UserRole)
                                                if row >= 0 else ""))
        self.list.itemDoubleClicked.connect(self.accept)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Open
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        split = QtWidgets.QSplitter()
        split.addWidget(self.list)
        split.addWidget(self.about)
        split.setSizes([300, 460])
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(split)
        layout.addWidget(buttons)
        if self.paths:
            self.list.setCurrentRow(0)

    def _add(self, path: Path, title: str, text: str) -> None:
        item = QtWidgets.QListWidgetItem(title)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, text)
        self.list.addItem(item)
        self.paths.append(path)

    def selected_path(self) -> Path | None:
        row = self.list.currentRow()
        return self.paths[row] if 0 <= row < len(self.paths) else None
