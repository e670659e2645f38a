"""Anything that is not a regular file is refused before it is read: a named pipe would block
``open()`` forever, a directory has no text (issue: robustness, files)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gradviz.scenario import load
from gradviz.scenario.reader import ScenarioError
from gradviz.scenario.script_source import ScriptSourceError, read_script

fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


@fifo_only
def test_a_fifo_is_refused_by_the_loader_without_blocking(tmp_path):
    fifo = tmp_path / "lesson.toml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError) as info:
        load(fifo)                      # opening it would block: the test would hang, not fail
    assert str(info.value) == f"{fifo}: expected a regular scenario file, found a named pipe (FIFO)"


@fifo_only
def test_a_fifo_is_refused_by_the_script_reader(tmp_path):
    fifo = tmp_path / "train.py"
    os.mkfifo(fifo)
    with pytest.raises(ScriptSourceError, match="train.py: expected a regular script file, found a named pipe"):
        read_script(fifo)


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "lesson.toml"
    folder.mkdir()
    with pytest.raises(ScenarioError, match="found a directory"):
        load(folder)


@fifo_only
@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_command_line_refuses_a_fifo_in_one_line(tmp_path, command):
    fifo = tmp_path / "lesson.toml"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "gradviz", command, str(fifo)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    said = done.stdout + done.stderr          # validate reports on stdout, run on stderr
    lines = [line for line in said.splitlines() if "named pipe" in line]
    assert len(lines) == 1 and "Traceback" not in said
