"""Guided tours and lesson run names: the [[tour]] tables and [scenario] run of a TOML file, a
script's "# tour:" comments, their one-line errors, the saver's round trip, and every bundled
lesson's tour landing where its text says (gradviz.view.tour.resolve on the real replay)."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from gradviz.scenario import ScenarioError, bundled, dumps, load, loads, save
from gradviz.scenario.bundled import bundled_scripts
from gradviz.scenario.saver import render
from gradviz.scenario.schema import TourStop
from gradviz.scenario.script_source import header, tour
from gradviz.training.script import ScriptRun, run_script
from gradviz.training.session import Session
from gradviz.view.replay import Replay
from gradviz.view.tour import lesson_tour, resolve, stop_variant

BASE = """\
[scenario]
title = "tour test"
seed = 0

[model]
expression = "w * x + b"

[model.parameters]
w = 1.0
b = 0.0

[data]
x = [2.0]
y = [4.0]

[optimizer]
kind = "sgd"
lr = 0.01

[loop]
steps = 5
zero_grad = "never"

[[comparison]]
name = "correct"
loop = { zero_grad = "before_backward" }
"""

TOUR = """
[[tour]]
iteration = 1
event = "accumulate"
node = "w"
plot = "Gradients"
text = \"\"\"
backward() adds: w.grad = −8 + (−7.2) = −15.2.\"\"\"

[[tour]]
iteration = 0
run = "correct"
phase = "backward"
text = "The correct run."
"""


def with_tour(stops: str = TOUR, meta: str = "") -> str:
    return BASE.replace('seed = 0\n', 'seed = 0\n' + meta, 1) + stops


# -- the loader ---------------------------------------------------------------------------------

def test_a_tour_and_a_run_name_load():
    s = loads(with_tour(meta='run = "forgot zero_grad (bug)"\n'))
    assert s.run_name == "forgot zero_grad (bug)"
    assert [v.name for v in s.variants()] == ["forgot zero_grad (bug)", "correct"]
    assert s.tour == [TourStop(iteration=1, text="backward() adds: w.grad = −8 + (−7.2) = −15.2.",
                               event="accumulate", node="w", plot="Gradients"),
                      TourStop(iteration=0, text="The correct run.", phase="backward", run="correct")]


@pytest.mark.parametrize("stop, key, expected", [
    ('iteration = 5\ntext = "x"', "tour[0].iteration", "an iteration from 0 to 4"),
    ('iteration = -1\ntext = "x"', "tour[0].iteration", "an integer from 0"),
    ('iteration = 1', "tour[0].text", "a string for 'text'"),
    ('text = "x"', "tour[0].iteration", "an integer for 'iteration'"),
    ('iteration = 1\ntext = ""', "tour[0].text", "a non-empty string"),
    ('iteration = 1\ntext = "x"\nphase = "backwards"', "tour[0].phase", "one of 'zero_grad'"),
    ('iteration = 1\ntext = "x"\nevent = "grad"', "tour[0].event", "one of 'forward'"),
    ('iteration = 1\ntext = "x"\nplot = "loss"', "tour[0].plot", "one of 'Loss'"),
    ('iteration = 1\ntext = "x"\nnode = "q"', "tour[0].node", "a parameter or input name (w, b, x, y)"),
    ('iteration = 1\ntext = "x"\nrun = "nope"', "tour[0].run", "one of the runs"),
    ('iteration = 1\ntext = "x"\nmicro_batch = 1', "tour[0].micro_batch", "a micro-batch from 0 to 0"),
    ('iteration = 1\ntext = "x"\ncolour = "red"', "tour[0].colour", "one of iteration, phase"),
    ('iteration = "1"\ntext = "x"', "tour[0].iteration", "an integer"),
])
def test_a_bad_stop_is_one_line_naming_file_key_and_line(stop, key, expected):
    text = BASE + "\n[[tour]]\n" + stop + "\n"
    with pytest.raises(ScenarioError) as info:
        loads(text, "lesson.toml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("lesson.toml:")
    assert info.value.key == key and expected in info.value.expected, message
    line = int(message.split(":")[1])
    assert text.splitlines()[line - 1].startswith(("[[tour]]", key.rsplit(".", 1)[-1]))


def test_a_single_tour_table_asks_for_double_brackets():
    with pytest.raises(ScenarioError, match=r"\[tour\] expected an array of tables: write \[\[tour\]\]"):
        loads(BASE + '\n[tour]\niteration = 1\ntext = "x"\n', "lesson.toml")


def test_the_run_name_is_checked_and_differs_from_the_comparisons():
    with pytest.raises(ScenarioError, match=r"\[comparison\[0\]\.name\] expected a name different from "
                                            r"the main run's"):
        loads(with_tour("", meta='run = "correct"\n'))
    with pytest.raises(ScenarioError, match=r"\[scenario\.run\] expected one line of text"):
        loads(with_tour("", meta='run = "two\\nlines"\n'))
    with pytest.raises(ScenarioError, match=r"\[scenario\.rnu\] .*did you mean 'run'"):
        loads(with_tour("", meta='rnu = "x"\n'))


def test_op_labels_and_layer_parameters_are_node_names():
    stops = '\n[[tour]]\niteration = 0\nnode = "MulBackward0"\ntext = "x"\n'
    assert loads(BASE + stops).tour[0].node == "MulBackward0"
    mlp = load(Path(bundled()[0]).with_name("07_mlp_two_moons.toml"))
    assert {s.node for s in mlp.tour} >= {"4.weight", "0.weight"}


# -- the saver ----------------------------------------------------------------------------------

def test_the_tour_and_the_run_name_round_trip_through_dumps_and_save(tmp_path):
    s = loads(with_tour(meta='run = "forgot"\n'))
    assert loads(dumps(s)) == s
    path = save(s, tmp_path / "lesson.toml")
    assert load(path) == s and "[[tour]]" in path.read_text()


def test_editing_a_tour_keeps_the_rest_of_the_document():
    text = with_tour(meta='run = "forgot"   # named for the lesson\n')
    s = loads(text)
    edited = copy.deepcopy(s)
    edited.tour = edited.tour[:1] + [TourStop(iteration=3, text="later", event="step")]
    edited.run_name = "forgot zero_grad"
    out = render(edited)
    assert loads(out) == edited
    assert "# named for the lesson" in out and 'run = "forgot zero_grad"' in out
    assert out.count("[[tour]]") == 2 and 'event = "step"' in out
    unchanged = render(s)
    assert unchanged == text                         # nothing changed: the same text


def test_an_edit_of_steps_below_a_stop_is_not_refused_by_validate():
    from gradviz.scenario import validate
    s = loads(with_tour())
    s.loop.steps = 1                                 # the Controls may shorten the run
    validate(s)                                      # the tour does not block the edit


# -- scripts ------------------------------------------------------------------------------------

SCRIPT = """\
# A lesson
#
# Its description.
import torch
w = torch.tensor(1.0, requires_grad=True)

# tour: iteration=0 phase=backward node=w plot="Parameter space"
#   The first backward:
#   w.grad = -8.
#
#   A second paragraph.
# tour: iteration=1 event=step
#   The second step.
"""


def test_a_script_carries_its_tour_in_comments():
    stops = tour(SCRIPT, "lesson.py")
    assert stops == [TourStop(iteration=0, text="The first backward: w.grad = -8.\nA second paragraph.",
                              phase="backward", node="w", plot="Parameter space"),
                     TourStop(iteration=1, text="The second step.", event="step")]
    assert header(SCRIPT) == ("A lesson", "Its description.")


@pytest.mark.parametrize("comment, key, expected", [
    ("# tour: iteration=x\n#   t\n", "tour[0].iteration", "an integer"),
    ("# tour: iteration=0 colour=red\n#   t\n", "tour[0].colour", "one of iteration"),
    ("# tour: iteration=0\n", "tour[0].text", "a non-empty string"),
    ("# tour: phase=forward\n#   t\n", "tour[0].iteration", "an integer for 'iteration'"),
    ("# tour: iteration=0 plot=Los\n#   t\n", "tour[0].plot", "one of 'Loss'"),
    ("# tour: iteration=0 node=a-b\n#   t\n", "tour[0].node", "a parameter or input name"),
    ("# tour: iteration=0 , \n#   t\n", "tour[0]", "key=value pairs"),
])
def test_a_bad_tour_comment_is_one_line_naming_the_script_line(comment, key, expected):
    with pytest.raises(ScenarioError) as info:
        tour("import torch\n" + comment, "dir/lesson.py")
    assert str(info.value).startswith("lesson.py:2:") and "\n" not in str(info.value)
    assert info.value.key == key and expected in info.value.expected


# -- every bundled lesson -------------------------------------------------------------------------

NUMBER = re.compile(r"−?-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.stem)
def test_every_bundled_scenario_has_a_tour_that_lands_in_its_replay(path):
    s = load(path)
    assert 3 <= len(s.tour) <= 8, len(s.tour)
    sessions = {}
    for stop in s.tour:
        variant = stop_variant(s, stop)
        assert stop.run is None or s.variants()[variant].name == stop.run
        if variant not in sessions:
            sessions[variant] = Session(s, variant)
            sessions[variant].run()
        replay = Replay(sessions[variant].trace_iteration(stop.iteration))
        place = resolve(replay, stop)
        assert 0 <= place.frame < len(replay)
        frame = replay.frame(place.frame)
        if stop.event is not None:
            assert frame.event_kind == stop.event, (stop, frame.description)
        if stop.phase is not None:
            assert frame.phase == stop.phase, (stop, frame.description)
        if stop.node is not None:
            assert replay.node_name(place.node) == stop.node


@pytest.mark.parametrize("path", bundled_scripts(), ids=lambda p: p.stem)
def test_every_bundled_script_has_a_tour_that_lands_in_its_replay(path):
    source = path.read_text(encoding="utf-8")
    stops = tour(source, path.name)
    assert 3 <= len(stops) <= 8
    assert "tour:" not in header(source, path.name)[1]
    run = ScriptRun(run_script(source, str(path), trace_iterations=max(s.iteration for s in stops) + 1))
    for stop in stops:
        replay = Replay(run.trace_iteration(stop.iteration))
        place = resolve(replay, stop)
        frame = replay.frame(place.frame)
        if stop.event is not None:
            assert frame.event_kind == stop.event, (stop, frame.description)
        if stop.node is not None:
            assert replay.node_name(place.node) == stop.node


def test_the_forgot_zero_grad_tour_tells_the_true_numbers():
    """The issue's example: iteration 0 backward w.grad = −8, iteration 1 starts with the stale −8,
    iteration 1's backward −8 + −7.2 = −15.2, and the Loss plot where the loss oscillates."""
    s = load(Path(bundled()[0]).with_name("02_forgot_zero_grad.toml"))
    assert s.run_name == "forgot zero_grad() (bug)"
    session = Session(s, 0)
    session.run()
    shown = []
    for stop in s.tour[:3]:
        replay = Replay(session.trace_iteration(stop.iteration))
        frame = replay.frame(resolve(replay, stop).frame)
        shown.append((stop.iteration, frame.nodes[replay.param_nodes["w"]].grad_badge))
    assert [(k, float(g)) for k, g in shown] == [(0, -8.0), (1, -8.0), (1, pytest.approx(-15.2))]
    assert "−8 + (−7.2) = −15.2" in s.tour[2].text
    assert s.tour[-1].plot == "Loss"


def test_lesson_tour_reads_a_toml_tour_or_a_script_comment_tour():
    s = loads(with_tour())
    assert lesson_tour(s) == s.tour and lesson_tour(None) == []
    script = copy.deepcopy(s)
    script.script, script.tour, script.path = SCRIPT, [], Path("lesson.py")
    assert [stop.iteration for stop in lesson_tour(script)] == [0, 1]


def test_the_exported_script_names_the_lesson_run():
    from gradviz.codegen import export_torch
    s = load(Path(bundled()[0]).with_name("09_fp16_underflow.toml"))
    main, scaled = export_torch(s, 0).source, export_torch(s, 1).source
    assert "no loss scaling: gradients underflow" in main
    assert "loss scaling on" in scaled
    compile(main, "main.py", "exec")


def test_saving_an_edit_leaves_out_the_stops_it_no_longer_fits(tmp_path):
    """The Controls may remove a comparison or shorten the run (validate lets them); the saved file
    keeps the stops that still fit, so that it loads again."""
    s = loads(with_tour())
    s.comparisons = []                                # the stop in "correct" has no run any more
    path = save(s, tmp_path / "edited.toml")
    again = load(path)
    assert [stop.iteration for stop in again.tour] == [1]
    s.loop.steps = 1                                  # and now iteration 1 is past the end
    assert load(save(s, tmp_path / "short.toml")).tour == []
