"""A status-bar message ("Saved …") while playing: the iteration and phase labels stay hidden under
it and come back once it is gone. Each new position showed them again at once, over the message."""
from __future__ import annotations

from PySide6 import QtCore, QtGui


def test_a_message_while_playing_is_not_drawn_over(qtbot, make_window, tmp_path):
    window = make_window()
    bar = window.statusBar()
    labels = window.position_widgets
    # Other messages hide the labels too, and twice in CI one did before the first check: the
    # tutorial's trace replayed in a worker under load ("Replaying iteration 0…"), or an action's
    # status tip, shown while the cursor (where an earlier test left it) is over the toolbar.
    QtGui.QCursor.setPos(window.frameGeometry().bottomRight() + QtCore.QPoint(400, 400))
    qtbot.waitUntil(lambda: not window.traces.busy, timeout=10000)
    bar.clearMessage()
    window.player.seek(1)
    assert all(w.isVisible() for w in labels), bar.currentMessage()
    bar.showMessage("Saved somewhere", 60_000)
    assert not any(w.isVisible() for w in labels)          # the status bar hides its labels
    window.player.seek(2)
    window.player.seek(3)                                   # playing on
    assert not any(w.isVisible() for w in labels), "a position shows its labels over the message"
    assert "event 3/" in window.iteration_label.text()
    bar.clearMessage()
    assert all(w.isVisible() for w in labels)

    for w in labels:                                        # hidden for a pending run (_show_pending) ...
        w.setVisible(False)
    bar.showMessage("Saved again", 60_000)
    window.player.seek(4)                                   # ... back after the message, not over it
    assert not any(w.isVisible() for w in labels)
    bar.clearMessage()
    assert all(w.isVisible() for w in labels)
