"""``python -m gradviz``: run, validate, export-torch, list; one-line errors and exit codes."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradviz import cli
from gradviz.cli import main
from gradviz.codegen import export_torch
from gradviz.scenario import ScenarioError, bundled, bundled_path, load
from gradviz.scenario.script_source import header
from gradviz.script_checks import bundled_scripts
from gradviz.training.session import Session

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = "01_tutorial_wx_b"

GOOD = """
[scenario]
title = "fit a line"
description = "First sentence. Second sentence."
[model]
expression = "w * x + b"
parameters = { w = 1.0, b = 0.0 }
[data]
x = [1.0, 2.0, 3.0]
y = [2.0, 4.0, 6.0]
[optimizer]
kind = "sgd"
lr = 0.05
[loop]
steps = 20
"""
DIVERGES = GOOD.replace("lr = 0.05", "lr = 10.0").replace("steps = 20", "steps = 500")
BAD_KEY = GOOD.replace("lr = 0.05", "lrr = 0.05")


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gradviz: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def files(tmp_path):
    def write(name, text):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


# -- list ------------------------------------------------------------------------------------------

def test_list_shows_every_bundled_scenario_then_every_script(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    paths, scripts = bundled(), bundled_scripts()
    assert len(out) == len(paths) + len(scripts) and len(paths) >= 1 and len(scripts) >= 6
    for line, path in zip(out, paths):
        scenario = load(path)
        assert line.startswith(path.stem) and scenario.title in line
    for line, path in zip(out[len(paths):], scripts):
        assert line.startswith(path.stem) and header(path.read_text())[0] in line


def test_python_dash_m_gradviz_list():
    out = subprocess.run([sys.executable, "-m", "gradviz", "list"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(TUTORIAL) and out.stderr == ""


def test_python_dash_m_gradviz_runs_a_bundled_scenario_by_name_from_any_folder(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gradviz", "run", TUTORIAL, "--steps", "3"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.startswith(load(bundled_path(TUTORIAL)).title) and "steps: 3" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_scenario_name_is_one_line_naming_the_bundled_ones(tmp_path):
    out = subprocess.run([sys.executable, "-m", "gradviz", "run", "01_tutorial"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    line = one_error_line(out.stderr)
    assert "'01_tutorial' is neither a file nor a bundled scenario" in line
    assert all(path.stem in line for path in bundled())


# -- run -------------------------------------------------------------------------------------------

def test_run_bundled_writes_csv_like_history(tmp_path, capsys):
    out = tmp_path / "h.csv"
    assert main(["run", TUTORIAL, "--steps", "7", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "final loss" in text and "w = " in text and "b = " in text and f"wrote {out}" in text
    rows = list(csv.reader(out.read_text().splitlines()))
    history = Session(load(bundled_path(TUTORIAL))).run(7)
    columns = history.columns()
    assert rows[0] == list(columns) and len(rows) == 8
    np.testing.assert_allclose(np.array(rows[1:], dtype=float), np.column_stack(list(columns.values())))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary files left


def test_run_file_writes_json_and_reports_divergence(files, tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["run", str(files("diverges.toml", DIVERGES)), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["diverged_at"] is not None and "diverged at step" in document["message"]
    assert f"diverged at step {document['diverged_at']}" in text
    assert document["steps"] == document["diverged_at"] + 1 < 500


def test_scenario_names_resolve_to_files_first_then_bundled(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.load_scenario(TUTORIAL).title == load(bundled_path(TUTORIAL)).title
    assert cli.load_scenario(TUTORIAL + ".toml").title == load(bundled_path(TUTORIAL)).title
    files(TUTORIAL + ".toml", GOOD)                  # a local file of that name wins
    assert cli.load_scenario(TUTORIAL + ".toml").title == "fit a line"
    assert cli.load_scenario(str(tmp_path / (TUTORIAL + ".toml"))).title == "fit a line"


def test_run_zero_steps_writes_a_header_only_file(tmp_path, capsys):
    """Bug fix: ``run --steps 0 --out F`` failed with "cannot reshape array of size 0"."""
    for name in ("h.csv", "h.json"):
        assert main(["run", TUTORIAL, "--steps", "0", "--out", str(tmp_path / name)]) == 0
        assert "steps: 0" in capsys.readouterr().out
    assert (tmp_path / "h.csv").read_text().splitlines()[0].startswith("step,loss,w,b,")
    assert json.loads((tmp_path / "h.json").read_text())["steps"] == 0


def test_run_prints_one_line_per_parameter(files, capsys):
    path = files("matrix.toml", GOOD.replace('"w * x + b"', '"sum(w) * x + b"')
                 .replace("w = 1.0", "w = [[1.0, 0.0], [0.0, 1.0]]"))
    assert main(["run", str(path), "--steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  w = [[") for line in lines)
    assert not any(line.startswith(" [") for line in lines)      # no continuation row


def test_run_variant(capsys):
    path = next((p for p in bundled() if load(p).comparisons), None)
    if path is None:
        pytest.skip("no bundled scenario with comparisons")
    assert main(["run", path.stem, "--variant", "1", "--steps", "3"]) == 0
    assert f"[{load(path).comparisons[0].name}]" in capsys.readouterr().out


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["run", TUTORIAL, "--steps", "500"]) == 0
    assert "100%" in terminal.getvalue() and "500/500 steps" in terminal.getvalue()
    monkeypatch.undo()
    assert main(["run", TUTORIAL, "--steps", "500"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, message", [
    (["run", "no_such_scenario"], "neither a file nor a bundled scenario"),
    (["run", "missing/file.toml"], "expected a readable scenario file"),
    (["run", TUTORIAL, "--out", "history.txt"], "unknown extension '.txt'"),
    (["run", TUTORIAL, "--out", "no/such/dir/h.csv"], "does not exist"),
    (["run", TUTORIAL, "--steps", "-1"], "expected a number >= 0"),
    (["run", TUTORIAL, "--steps", "many"], "expected a whole number"),
    (["run", TUTORIAL, "--variant", "99"], "variant 99 does not exist"),
    (["run"], "required: SCENARIO"),
    (["export-torch", "no_such_scenario"], "neither a file nor a bundled scenario"),
    (["frobnicate"], "invalid choice"),
    ([], "choose a command"),
])
def test_user_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert message in one_error_line(captured.err)
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_one_line(tmp_path, capsys):
    target = tmp_path / "taken.csv"
    target.mkdir()                       # a directory where the file should go
    assert main(["run", TUTORIAL, "--steps", "2", "--out", str(target)]) == 2
    assert f"cannot write {target}" in one_error_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["taken.csv"]


def test_bad_scenario_file_is_the_loaders_one_line(files, capsys):
    path = files("bad.toml", BAD_KEY)
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert main(["run", str(path)]) == 2
    assert one_error_line(capsys.readouterr().err) == f"gradviz: error: {info.value}"


def test_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke\nwith two lines")
    monkeypatch.setattr(Session, "run", broken)
    assert main(["run", TUTORIAL]) == 2
    assert one_error_line(capsys.readouterr().err) == "gradviz: error: something inside broke with two lines"


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_list", interrupted)
    assert main(["list"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "export-torch" in capsys.readouterr().out


# -- validate --------------------------------------------------------------------------------------

def test_validate_all_ok(files, capsys):
    paths = [str(files("good.toml", GOOD))] + [str(p) for p in bundled()]
    assert main(["validate", *paths]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{p}: ok" for p in paths]


def test_validate_reports_each_file_and_exits_2(files, capsys):
    good, bad = files("good.toml", GOOD), files("bad.toml", BAD_KEY)
    garbage = files("garbage.toml", "")
    garbage.write_bytes(b"\xff\xfe\x00[[[")
    missing = good.with_name("missing.toml")
    assert main(["validate", str(good), str(bad), str(garbage), str(missing)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 4 and captured.err == "" and "Traceback" not in captured.out
    assert lines[0] == f"{good}: ok"
    with pytest.raises(ScenarioError) as info:
        load(bad)
    assert lines[1] == str(info.value)
    assert "[optimizer.lrr]" in lines[1] and "did you mean 'lr'" in lines[1]
    assert lines[2].startswith(str(garbage)) and "UTF-8" in lines[2]
    assert lines[3].startswith(str(missing)) and "readable scenario file" in lines[3]


def test_validate_runs_the_session_checks(files, capsys, monkeypatch):
    """A file the loader accepts but the Session cannot build is still one line and exit 2."""
    path = files("good.toml", GOOD)

    def refuse(self, scenario, variant=0):
        raise ValueError("the model's output has shape (3, 3) but the target (3,)")
    monkeypatch.setattr(Session, "__init__", refuse)
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().out == f"{path}: the model's output has shape (3, 3) but the target (3,)\n"


def test_validate_needs_a_file(capsys):
    assert main(["validate"]) == 2
    assert "required: FILE" in one_error_line(capsys.readouterr().err)


# -- export-torch ----------------------------------------------------------------------------------

def test_export_torch_writes_the_script(tmp_path, capsys):
    out = tmp_path / "script.py"
    assert main(["export-torch", TUTORIAL, "-o", str(out)]) == 0
    source = out.read_text()
    assert source == export_torch(load(bundled_path(TUTORIAL))).source
    compile(source, str(out), "exec")
    assert f"wrote {out}" in capsys.readouterr().err
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)    # not mkstemp's private mode
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_export_torch_to_stdout_and_variant(files, capsys):
    scenario_with_comparisons = next((p for p in bundled() if load(p).comparisons), None)
    if scenario_with_comparisons is None:
        pytest.skip("no bundled scenario with comparisons")
    assert main(["export-torch", str(scenario_with_comparisons), "-o", "-", "--variant", "1"]) == 0
    out = capsys.readouterr().out
    assert out == export_torch(load(scenario_with_comparisons), 1).source


def test_export_torch_replaces_atomically(tmp_path, capsys, monkeypatch):
    out = tmp_path / "script.py"
    out.write_text("old contents\n")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", fail)
    assert main(["export-torch", TUTORIAL, "-o", str(out)]) == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert out.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]

