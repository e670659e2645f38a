"""Saving: canonical text that loads back equal, atomic writes, and the user's comments kept."""
import copy
import difflib
import os
import stat

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradviz.scenario import (
    OPTIMIZER_DEFAULTS,
    OptimizerSpec,
    ScenarioError,
    Variant,
    bundled_path,
    dumps,
    load,
    loads,
    save,
)
from gradviz.scenario.saver import render

from .strategies import scenario_docs
from .test_loader import BASE, CLASSES, LAYERS, OBJECTIVE, text_of, variant

COMMENTED = """# A lesson on momentum.
[scenario]
title = "bowl"   # shown in the window title
seed = 3

# the model: a narrow bowl
[model]
objective = "0.5*(x**2 + 50*y**2)"

[model.parameters]
y = 1.0          # start high on the steep wall
x = -4.0

[loop]
steps = 50       # enough to see the zigzag

[optimizer]      # tables in an unusual order on purpose
lr = 0.035
kind = "sgd"

[[comparison]]
name = "momentum"  # the point of the lesson
optimizer = { momentum = 0.8 }
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines())
            if line.startswith(("- ", "+ "))]


# --- dumps ------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", [BASE, OBJECTIVE, LAYERS, CLASSES], ids=["expression", "objective",
                                                                           "layers", "classes"])
def test_dumps_round_trips(doc):
    s = loads(text_of(doc))
    assert loads(dumps(s)) == s


def test_dumps_is_short_and_readable():
    text = dumps(loads(text_of(BASE)))
    for present in ('title = "t"', "seed = 0", 'expression = "w * x + b"', 'kind = "mse"',
                    'kind = "sgd"', "lr = 0.1", "steps = 10"):
        assert present in text
    for absent in ("momentum", "shuffle", "zero_grad", "precision", "reduction", "inputs", "scaler"):
        assert absent not in text
    assert text.startswith("# GradViz scenario")


def test_dumps_writes_only_what_a_comparison_changes():
    doc = variant(BASE, optimizer={"kind": "sgd", "lr": 0.1, "momentum": 0.5}, loop={"steps": 10, "batch_size": 4})
    doc["comparison"] = [{"name": "adam", "optimizer": {"kind": "adam", "lr": 0.01}},
                         {"name": "full", "loop": {"batch_size": "full", "shuffle": True}}]
    s = loads(text_of(doc))
    text = dumps(s)
    assert loads(text) == s
    comparisons = tomlkit.parse(text)["comparison"]
    assert comparisons[0]["optimizer"] == {"kind": "adam", "lr": 0.01}
    assert "loop" not in comparisons[0]
    assert comparisons[1]["loop"] == {"batch_size": "full", "shuffle": True}
    assert comparisons[1]["optimizer"] == {"kind": "sgd", "lr": 0.1}


def test_dumps_accepts_numpy_values_and_tuples_from_a_ui():
    np = pytest.importorskip("numpy")
    s = loads(text_of(BASE))
    s.optimizer.hyper["lr"] = np.float32(0.5)
    s.model.parameters["w"].value = np.float64(2.0)
    s.loop.steps = np.int64(7)
    again = loads(dumps(s))
    assert again.optimizer.hyper["lr"] == 0.5 and again.model.parameters["w"].value == 2.0
    assert again.loop.steps == 7


def test_multiline_description_is_kept_exactly():
    for description in ["two\nlines", 'quotes """ and \\ backslash\n', "\nleading newline",
                        "tab\tand \x01 control", "ends with a quote\"\nx\""]:
        s = loads(text_of(variant(BASE, scenario__description=description)))
        assert loads(dumps(s)).description == description


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_docs())
def test_generated_scenarios_round_trip(doc):
    s = loads(tomlkit.dumps(doc))
    assert loads(dumps(s)) == s
    assert loads(render(s)) == s              # no edits: the source text itself


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_docs(), st.data())
def test_edits_of_generated_scenarios_are_saved_exactly(doc, data):
    s = loads(tomlkit.dumps(doc))
    edited = copy.deepcopy(s)
    edited.source_text = s.source_text
    edit = data.draw(st.sampled_from(["lr", "steps", "kind", "drop", "add", "title"]))
    if edit == "lr":
        edited.optimizer.hyper["lr"] = data.draw(st.floats(1e-5, 1.0))
    elif edit == "steps":
        edited.loop.steps = data.draw(st.integers(1, 1000))
    elif edit == "kind":
        kind = data.draw(st.sampled_from(["adam", "rmsprop", "adagrad", "adamw"]))
        edited.optimizer = OptimizerSpec(kind, dict(OPTIMIZER_DEFAULTS[kind], lr=0.01))
    elif edit == "drop" and edited.comparisons:
        edited.comparisons.pop(data.draw(st.integers(0, len(edited.comparisons) - 1)))
    elif edit == "add":
        spec = OptimizerSpec("adam", dict(OPTIMIZER_DEFAULTS["adam"], lr=0.003))
        edited.comparisons.append(Variant("added", spec, copy.deepcopy(edited.loop)))
    elif edit == "title":
        edited.title = data.draw(st.text(st.characters(exclude_categories=("Cc",)), min_size=1,
                                          max_size=20).filter(str.strip))
    assert loads(render(edited)) == edited


# --- editing a user's file keeps their comments -------------------------------------------------

def test_unchanged_scenario_is_written_back_verbatim(tmp_path):
    s = loads(COMMENTED)
    assert render(s) == COMMENTED
    path = save(s, tmp_path / "bowl.toml")
    assert path.read_text(encoding="utf-8") == COMMENTED


def test_changing_a_value_touches_one_line():
    s = loads(COMMENTED)
    s.model.parameters["y"].value = 0.5
    s.seed = 4
    text = render(s)
    assert changed_lines(COMMENTED, text) == [
        "- seed = 3", "+ seed = 4",
        "- y = 1.0          # start high on the steep wall", "+ y = 0.5          # start high on the steep wall"]
    assert loads(text) == s


def test_inherited_values_stay_with_the_comparison_when_the_main_run_changes():
    s = loads(COMMENTED)
    s.optimizer.hyper["lr"] = 0.02                     # the comparison keeps lr = 0.035
    s.loop.steps = 80                                  # ... and steps = 50
    text = render(s)
    again = loads(text)
    assert again == s and again.comparisons[0].optimizer.hyper["lr"] == 0.035
    assert "# the point of the lesson" in text and "# enough to see the zigzag" in text


def test_adding_and_removing_comparisons_keeps_comments():
    s = loads(COMMENTED)
    spec = OptimizerSpec("adam", dict(OPTIMIZER_DEFAULTS["adam"], lr=0.1))
    s.comparisons.append(Variant("adam", spec, copy.deepcopy(s.loop)))
    text = render(s)
    assert loads(text) == s
    assert text.startswith(COMMENTED.rstrip("\n"))    # everything before is untouched
    s.comparisons = s.comparisons[1:]
    text = render(s)
    assert loads(text) == s
    assert "# A lesson on momentum." in text and "# start high on the steep wall" in text
    assert "momentum = 0.8" not in text


def test_changing_the_model_kind_rewrites_the_model_table():
    s = loads(text_of(BASE))
    layers = loads(text_of(variant(BASE, model={"layers": [1, 4, 1]})))
    layers.source_text = s.source_text
    assert loads(render(layers)) == layers
    objective = loads(text_of(OBJECTIVE))
    objective.source_text = s.source_text
    assert loads(render(objective)) == objective


def test_key_order_and_unusual_layout_survive_an_edit():
    s = loads(COMMENTED)
    s.model.parameters["x"].value = -3.0
    text = render(s)
    assert text.index("y = 1.0") < text.index("x = -3.0") < text.index("[loop]") < text.index("[optimizer]")


def test_editing_a_bundled_scenario(tmp_path):
    s = load(bundled_path("04_rosenbrock_race"))
    original = s.source_text
    s.comparisons[3].optimizer.hyper["lr"] = 0.03
    path = save(s, tmp_path / "race.toml")
    assert load(path) == s
    assert len(changed_lines(original, path.read_text(encoding="utf-8"))) == 2


# --- atomic saving ------------------------------------------------------------------------------

def test_save_writes_atomically_and_updates_the_scenario(tmp_path):
    s = loads(text_of(BASE))
    target = tmp_path / "lesson.toml"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, 0o640)
    assert save(s, target) == target
    assert load(target) == s and s.path == target
    assert s.source_text == target.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["lesson.toml"]      # no temporary file left


def test_invalid_scenario_is_not_written(tmp_path):
    target = tmp_path / "lesson.toml"
    target.write_text("precious", encoding="utf-8")
    s = loads(text_of(BASE))
    s.optimizer.hyper["lr"] = -1.0
    with pytest.raises(ScenarioError, match=r"\[optimizer.lr\]"):
        save(s, target)
    assert target.read_text(encoding="utf-8") == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["lesson.toml"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "lesson.toml"
    target.write_text("precious", encoding="utf-8")

    def fail(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ScenarioError, match="No space left"):
        save(loads(text_of(BASE)), target)
    assert target.read_text(encoding="utf-8") == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["lesson.toml"]


def test_save_into_a_missing_directory_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="writable"):
        save(loads(text_of(BASE)), tmp_path / "missing" / "lesson.toml")
