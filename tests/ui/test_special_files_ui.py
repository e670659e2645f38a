"""File ▸ Open of a named pipe or a directory gives the one-line error and leaves the scenario on
screen (opening a FIFO used to block the window forever)."""
from __future__ import annotations

import os

import pytest

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


@fifo_only
@pytest.mark.parametrize("name", ["lesson.toml", "train.py"])
def test_opening_a_fifo_says_so_and_keeps_the_scenario(qtbot, make_window, tmp_path, name):
    window = make_window()
    title = window.document.scenario.title
    fifo = tmp_path / name
    os.mkfifo(fifo)
    message = window.load(fifo)            # would block in open() without the check
    assert message is not None and "named pipe (FIFO)" in message and "\n" not in message
    assert window.document.scenario.title == title


def test_opening_a_directory_says_so(qtbot, make_window, tmp_path):
    window = make_window()
    folder = tmp_path / "lesson.toml"
    folder.mkdir()
    message = window.load(folder)
    assert message is not None and "a directory" in message
