"""The first-launch welcome over the graph, and the Help menu: keyboard shortcuts read from the
window's own actions, the scenario file reference (a packaged copy of docs/scenarios.md) and About."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt

from tests.ui.conftest import finish, screenshot

ROOT = Path(__file__).resolve().parents[2]
Key = Qt.Key


def menu_entry(menu: QtWidgets.QMenu, text: str) -> QtGui.QAction:
    return next(a for a in menu.actions() if a.text().replace("&", "").startswith(text))


# -- the welcome ------------------------------------------------------------------------------------

@pytest.mark.first_run
def test_the_welcome_shows_on_the_first_launch_and_never_again(qtbot, make_window):
    from ui.dialogs import settings
    from ui.welcome import SEEN_KEY

    window = make_window()
    overlay = window.welcome
    assert overlay is not None and overlay.isVisible()
    graph = QtCore.QRect(window.graph.mapTo(window, QtCore.QPoint(0, 0)), window.graph.size())
    assert overlay.anchor is window.graph and overlay.geometry() == graph        # over the graph
    card = overlay.card.geometry()
    assert overlay.rect().contains(card) and abs(card.center().x() - overlay.rect().center().x()) <= 2
    text = overlay.body.text()
    for words in ("Space", "→", "Lesson", "Next", "Help"):
        assert words in text, words
    screenshot(window, "welcome_first_launch")
    qtbot.mouseClick(overlay.button, Qt.MouseButton.LeftButton)
    assert not overlay.isVisible() and settings().value(SEEN_KEY) in (True, "true")

    window.close()
    second = make_window()                                          # the next launch: no welcome
    assert second.welcome is None
    assert not [w for w in second.findChildren(QtWidgets.QWidget, "welcomeOverlay") if w.isVisible()]


@pytest.mark.first_run
def test_in_a_small_window_the_welcome_covers_the_window_and_its_card_fits(qtbot, make_window):
    window = make_window()
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.size() == QtCore.QSize(800, 600), timeout=2000)
    qtbot.wait(50)
    overlay = window.welcome
    assert overlay.width() == window.width()                     # the graph is too small for the card
    card = overlay.card
    assert overlay.rect().contains(card.geometry())
    assert card.height() >= card.layout().heightForWidth(card.width())     # nothing cut off
    screenshot(window, "welcome_800x600")
    overlay.dismiss()


@pytest.mark.first_run
def test_the_welcome_goes_on_esc_on_a_click_or_when_the_user_plays(qtbot, make_window):
    from ui.dialogs import settings
    from ui.welcome import SEEN_KEY, show_welcome

    window = make_window()
    overlay = window.welcome
    overlay.setFocus()
    qtbot.keyClick(overlay, Key.Key_Escape)
    assert not overlay.isVisible()

    settings().remove(SEEN_KEY)
    again = show_welcome(window.graph, settings())
    qtbot.mouseClick(again, Qt.MouseButton.LeftButton, pos=again.rect().topLeft() + QtGui.QVector2D(5, 5).toPoint())
    assert not again.isVisible()

    settings().remove(SEEN_KEY)
    third = show_welcome(window.graph, settings(), dismiss_on=[window.act_play])
    window.act_play.trigger()                                      # Space: the user has started
    assert not third.isVisible() and window.player.playing
    window.player.pause()
    assert settings().value(SEEN_KEY) in (True, "true")


def test_the_ui_tests_count_the_welcome_as_seen(make_window):
    window = make_window()
    assert window.welcome is None


# -- Help ▸ Keyboard shortcuts ---------------------------------------------------------------------------

def test_the_shortcuts_dialog_lists_every_shortcut_of_the_window(qtbot, make_window):
    window = make_window()
    help_menu = window.help.menu
    assert [a.text().replace("&", "") for a in window.menuBar().actions()][-1] == "Help"
    menu_entry(help_menu, "Keyboard shortcuts").trigger()
    dialog = window.help.dialog
    assert dialog is not None and dialog.isVisible() and dialog.windowTitle() == "Keyboard shortcuts"
    table = dialog.table
    rows = [tuple(table.item(r, c).text() for c in range(3)) for r in range(table.rowCount())]
    native = QtGui.QKeySequence.SequenceFormat.NativeText
    # every action of the window that has a shortcut is listed, with all its keys
    for action in window.findChildren(QtGui.QAction):
        keys = [k.toString(native) for k in action.shortcuts() if not k.isEmpty()]
        if keys and action.text().replace("&", ""):
            name = action.text().replace("&", "").rstrip("…")
            assert any(r[1] == name and r[2] == ", ".join(keys) for r in rows), (name, keys)
    by_name = {r[1]: r for r in rows}
    assert by_name["Play"][2] == "Space" and by_name["Play"][0] == "Play"
    assert by_name["Next iteration"][2].startswith("PgDown")
    assert by_name["Next tour stop"][0] == "Lesson" and "Right" in by_name["Next tour stop"][2]
    assert by_name["Open"][0] == "File" and by_name["Keyboard shortcuts"][2] == "F1"
    assert by_name["Find a node in the graph"][2] == QtGui.QKeySequence("Ctrl+F").toString(native)
    # no two actions claim the same key
    keys = [k for r in rows for k in r[2].split(", ")]
    assert len(keys) == len(set(keys)), sorted(keys)
    screenshot(dialog, "help_shortcuts")
    dialog.close()


def test_f1_opens_the_shortcuts(qtbot, make_window):
    window = make_window()
    qtbot.keyClick(window.graph, Key.Key_F1)
    assert window.help.dialog is not None and window.help.dialog.windowTitle() == "Keyboard shortcuts"
    window.help.dialog.close()


# -- Help ▸ Scenario file reference, About ----------------------------------------------------------------

def test_the_packaged_reference_is_docs_scenarios_md():
    """A plain (non-editable) install has no docs/ folder: ui/docs/scenarios.md ships as package
    data and must stay the same text."""
    import tomllib
    copy = ROOT / "ui" / "docs" / "scenarios.md"
    assert copy.read_text(encoding="utf-8") == (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8"), \
        "copy docs/scenarios.md to ui/docs/scenarios.md"
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "docs/scenarios.md" in [str(p.relative_to(ROOT / "ui")) for pattern in data["ui"]
                                   for p in (ROOT / "ui").glob(pattern)]


def test_the_reference_dialog_shows_the_scenario_file_format(qtbot, make_window):
    window = make_window()
    menu_entry(window.help.menu, "Scenario file reference").trigger()
    dialog = window.help.dialog
    text = dialog.browser.toPlainText()
    assert dialog.windowTitle() == "Scenario file reference"
    assert text.startswith("Scenario files") and "[[tour]]" in text and "[[comparison]]" in text
    assert "#" not in text.splitlines()[0]                      # rendered Markdown, not its source
    screenshot(dialog, "help_reference")
    dialog.close()


def test_about_names_the_version_from_the_package_metadata(qtbot, make_window):
    from importlib import metadata
    window = make_window()
    menu_entry(window.help.menu, "About GradViz").trigger()
    dialog = window.help.dialog
    text = dialog.label.text()
    assert f"GradViz {metadata.version('gradviz')}" in text and "autograd" in text
    screenshot(dialog, "help_about")
    dialog.close()
    finish(window)
    assert window.help.dialog is None
