"""``python -m gradviz`` with scripts: run passes the script's output through and names file:line
on failure, validate checks without running, list shows the bundled scripts."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradviz.cli import main
from gradviz.scenario.script_source import read_script
from gradviz.script_checks import bundled_scripts, check, find_bundled_script
from gradviz.training.script import run_script

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = "01_tutorial_loop"


def gradviz(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gradviz", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_run_a_bundled_script_passes_its_output_through_and_writes_the_history(tmp_path):
    path = find_bundled_script(TUTORIAL)
    here = run_script(read_script(path), str(path))
    out = gradviz("run", TUTORIAL, "--out", "h.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == here.stdout                                   # unchanged, nothing of ours
    assert f"{TUTORIAL}.py: 100 iterations, final loss" in out.stderr and "wrote h.csv" in out.stderr
    rows = list(csv.reader((tmp_path / "h.csv").read_text().splitlines()))
    columns = here.history.columns()
    assert rows[0] == list(columns) and len(rows) == 101
    np.testing.assert_allclose(np.array(rows[1:], dtype=float), np.column_stack(list(columns.values())))


@pytest.fixture
def script(tmp_path):
    def write(text, name="lesson.py"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


def test_a_failing_script_exits_1_with_its_file_and_line(script, tmp_path):
    path = script("print('start')\nx = 1\ny = x / 0\nprint('never')\n")
    out = gradviz("run", str(path), cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == "start\n"
    assert out.stderr == "gradviz: error: lesson.py:3: ZeroDivisionError: division by zero\n"


def test_the_time_limit_and_memory_cap_are_options(script, capsys):
    path = script("import torch\nx = 0\nwhile True:\n    x += 1\n")
    assert main(["run", str(path), "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradviz: error: lesson.py:") and err.endswith(
        "the script ran longer than the time limit (0.3 s)")
    path = script("import numpy as np\nbig = np.ones(1 << 28)\n", "memory.py")
    assert main(["run", str(path), "--memory", "100"]) == 1
    assert capsys.readouterr().err == "gradviz: error: memory.py:2: the script used more memory than the cap " \
                                      "(100 MB)\n"


@pytest.mark.parametrize("args, message", [
    (["run", "lesson.py", "--steps", "3"], "--steps and --variant apply to TOML scenarios"),
    (["run", "lesson.py", "--timeout", "0"], "expected a number > 0"),
    (["run", "lesson.py", "--out", "h.txt"], "unknown extension '.txt'"),
    (["run", "missing.py"], "missing.py: cannot read the file"),
    (["run", "01_tutorial_wx_b", "--timeout", "5"], "--timeout and --memory apply to scripts"),
])
def test_usage_errors_with_scripts_are_one_line_and_exit_2(args, message, script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    script("print(1)\n")
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradviz: error: ") and message in lines[0]
    assert captured.out == ""


def test_validate_checks_scripts_without_running_them(script, tmp_path, capsys):
    marker = tmp_path / "ran"
    good = script(f"import torch\nopen({str(marker)!r}, 'w').close()\nprint(torch.zeros(2))\n", "good.py")
    conv = script("import torch\nfrom torch import nn\n\nlayer = nn.Conv2d(1, 1, 3)\n", "conv.py")
    missing = script("import torch\nimport no_such_module_anywhere\n", "missing.py")
    syntax = script("x = (\n", "syntax.py")
    names = [str(p) for p in (good, conv, missing, syntax)]
    assert main(["validate", *names]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{good}: ok" and not marker.exists()
    assert lines[1].startswith(f"{conv}:4: torch.nn.Conv2d is not supported by GradViz's core (supported: ")
    assert lines[2] == f"{missing}:2: ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    assert lines[3] == f"{syntax}:1: SyntaxError: '(' was never closed"


@pytest.mark.parametrize("source, line, words", [
    ("import torch.distributed\n", 1, "torch.distributed is not supported by GradViz's core"),
    ("from torch.nn import Linear, Conv2d\n", 1, "torch.nn.Conv2d is not supported"),
    ("import torch\n\n\ny = torch.nn.functional.conv2d\n", 4, "conv2d is not supported"),
    ("import torch.nn as nn\nm = nn.LSTM(1, 1)\n", 2, "torch.nn.LSTM is not supported"),
])
def test_static_checks_find_what_the_core_lacks(source, line, words):
    problem = check(source, "lesson.py")
    assert problem is not None and problem[0] == line and words in problem[1]


def test_static_checks_accept_every_bundled_script_and_torch_settings():
    for path in bundled_scripts():
        assert check(read_script(path), str(path)) is None, path
    assert check("import torch\ntorch.backends.cudnn.benchmark = True\nimport math, random, numpy\n", "a.py") is None


def test_list_names_the_bundled_scripts(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert len(bundled_scripts()) >= 6
    for path in bundled_scripts():
        assert path.stem in out
