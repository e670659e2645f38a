"""The command line obeys the loader's limits and never lets a scenario drive the terminal."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gradviz.scenario import ScenarioError, loads
from gradviz.scenario.schema import LIMITS


def gradviz(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gradviz", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_steps_over_the_file_limit_is_refused_in_one_line():
    done = gradviz("run", "01_tutorial_wx_b", "--steps", str(LIMITS["max_steps"] + 1))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"gradviz: error: --steps {LIMITS['max_steps'] + 1}: expected at most "
                                   f"{LIMITS['max_steps']} steps (the limit a scenario file has)")


def test_steps_times_elements_over_the_recorded_limit_is_refused(tmp_path):
    wide = tmp_path / "wide.toml"          # 2-256-256-1: 66,817 elements; 10 steps are fine
    wide.write_text('[scenario]\ntitle = "wide"\n\n[model]\nlayers = [2, 256, 256, 1]\n\n'
                    '[data]\nkind = "moons"\nn = 64\n\n[loss]\nkind = "bce_with_logits"\n\n'
                    '[optimizer]\nkind = "sgd"\nlr = 0.1\n\n[loop]\nsteps = 10\n')
    done = gradviz("run", str(wide), "--steps", "1000")
    assert done.returncode == 2
    assert "steps x parameter elements" in done.stderr and "1000 x 66817" in done.stderr
    assert "use at most 748 steps" in done.stderr


@pytest.mark.parametrize("title, found", [("two\\nlines", "a line break"),
                                          ("red \\u001b[31m text", "the control character '\\x1b'")])
def test_a_title_is_one_line_of_text(title, found):
    with pytest.raises(ScenarioError) as info:
        loads(f'[scenario]\ntitle = "{title}"\n', name="t.toml")
    assert str(info.value) == f"t.toml:2: [scenario.title] expected one line of text, found {found}"


def test_escape_sequences_never_reach_the_terminal(tmp_path):
    lesson = tmp_path / "esc.toml"
    lesson.write_text('[scenario]\ntitle = "plain"\n\n[model]\nexpression = "w * x"\nparameters = { w = 1.0 }\n\n'
                      '[data]\nx = [1.0]\ny = [2.0]\n\n[optimizer]\nkind = "sgd"\nlr = 0.1\n\n'
                      '[loop]\nsteps = 2\n\n[[comparison]]\nname = "bell \\u0007 and \\u001b]0;pwned\\u0007"\n'
                      '[comparison.optimizer]\nkind = "sgd"\nlr = 0.2\n')
    done = gradviz("run", str(lesson), "--variant", "1")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b" in done.stdout


def test_an_array_longer_than_any_valid_one_is_refused_before_parsing():
    n = 150_000
    text = ('[scenario]\ntitle = "x"\n\n[model]\nexpression = "w * x"\nparameters = { w = 1.0 }\n\n'
            f'[data]\nx = [{", ".join(["0"] * n)}]\ny = [1.0]\n')
    with pytest.raises(ScenarioError) as info:
        loads(text, name="long.toml")
    assert str(info.value) == ("long.toml:9: [data.x] expected at most 100000 values in one array, "
                               f"found about {n} values")


def test_a_long_array_inside_the_limit_still_loads():
    n = 2_000
    text = ('[scenario]\ntitle = "x"\n\n[model]\nexpression = "w * x + b"\nparameters = { w = 1.0, b = 0.0 }\n\n'
            f'[data]\nx = [{", ".join(["1.0"] * n)}]\ny = [{", ".join(["2.0"] * n)}]\n')
    assert len(loads(text, name="ok.toml").data.x) == n
