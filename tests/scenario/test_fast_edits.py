"""Edits check what they change, copies share the data, Save writes the text (issue 12).

A control edit (``edits.editable_copy`` + the change + ``check_scenario(new, before)``) neither
re-validates the data nor serialises anything; long numeric arrays are read without tomllib and
written without tomlkit, with exactly their results; a 2 MB file is edited, saved with its comments
and loaded back equal.
"""
import copy
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from gradviz.scenario import (
    LIMITS,
    OPTIMIZER_DEFAULTS,
    ScenarioError,
    bundled_path,
    checks,
    load,
    loads,
    saver,
    toml_source,
)
from gradviz.scenario.edits import (
    add_comparison,
    check_scenario,
    editable_copy,
    set_loop_value,
    set_optimizer_kind,
    set_scheduler_kind,
)
from gradviz.scenario.schema import OptimizerSpec, SchedulerSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from limit_files import commented_moons as big_text  # noqa: E402


@pytest.fixture(scope="module")
def big():
    """The most points a file may hold, and as many bytes (within 100)."""
    text = big_text(LIMITS["max_points"], LIMITS["max_file_bytes"])
    assert LIMITS["max_file_bytes"] - 100 < len(text.encode()) <= LIMITS["max_file_bytes"]
    return text


@pytest.fixture
def tutorial():
    return load(bundled_path("01_tutorial_wx_b"))


def edited(scenario, change):
    new = editable_copy(scenario)
    change(new)
    return new


# --- the edit check --------------------------------------------------------------------------

def _nesterov(s):
    s.optimizer.hyper.update(nesterov=True, momentum=0.0)


def _duplicate(s):
    add_comparison(s)
    add_comparison(s)
    s.comparisons[-1].name = s.comparisons[-2].name


def _onecycle(s):
    set_optimizer_kind(s.optimizer, "adagrad")
    s.loop.scheduler = SchedulerSpec("onecycle", dict(s.loop.scheduler.hyper if s.loop.scheduler else {},
                                                      max_lr=0.1, total_steps=None, pct_start=0.3,
                                                      anneal_strategy="cos", div_factor=25.0,
                                                      final_div_factor=1e4, three_phase=False))


INVALID = {       # an edit the Controls can make -> refused, with the message a full check gives
    "momentum": lambda s: s.optimizer.hyper.update(momentum=-0.5),
    "lr": lambda s: s.optimizer.hyper.update(lr=0.0),
    "nesterov": _nesterov,
    "batch_size": lambda s: set_loop_value(s.loop, "batch_size", 10 ** 6),
    "accumulation_steps": lambda s: set_loop_value(s.loop, "accumulation_steps", 7),
    "steps": lambda s: set_loop_value(s.loop, "steps", LIMITS["max_steps"] + 1),
    "comparison lr": lambda s: (add_comparison(s), s.comparisons[-1].optimizer.hyper.update(lr=-1.0)),
    "name": _duplicate,
    "onecycle": _onecycle,
    "gamma": lambda s: (set_scheduler_kind(s.loop, "step", 0.1), s.loop.scheduler.hyper.update(gamma=0)),
}


@pytest.mark.parametrize("bundled", ["01_tutorial_wx_b", "07_mlp_two_moons"])
@pytest.mark.parametrize("edit", sorted(INVALID))
def test_an_invalid_edit_is_refused_with_the_full_checks_message(bundled, edit):
    before = load(bundled_path(bundled))
    new = edited(before, INVALID[edit])
    full = check_scenario(new)                       # every rule, the data too (the old check)
    assert full is not None and "\n" not in full
    assert check_scenario(new, before) == full


def test_valid_edits_are_accepted(tutorial):
    for change in (lambda s: s.optimizer.hyper.update(lr=0.5), lambda s: add_comparison(s),
                   lambda s: set_optimizer_kind(s.optimizer, "adam"),
                   lambda s: set_scheduler_kind(s.loop, "cosine", 0.1),
                   lambda s: set_loop_value(s.loop, "precision", "float64")):
        assert check_scenario(edited(tutorial, change), tutorial) is None


def test_the_edit_check_reads_neither_the_data_nor_a_serialised_text(big, monkeypatch):
    before = loads(big)
    new = edited(before, lambda s: s.optimizer.hyper.update(lr=0.2))

    def boom(*args, **kwargs):
        raise AssertionError("an edit must not do this")
    for module, name in ((checks, "inline_data"), (checks, "_plain_array"), (saver, "dumps"),
                         (saver, "render"), (tomlkit, "dumps"), (toml_source, "checked")):
        monkeypatch.setattr(module, name, boom)
    assert check_scenario(new, before) is None
    new.optimizer.hyper["momentum"] = -1.0
    assert check_scenario(new, before) == "momentum: expected a finite number >= 0, found -1.0 (a float)"


def test_changed_data_is_checked_in_full(tutorial):
    new = editable_copy(tutorial)
    new.data.x = [[1.0, 2.0]] * len(tutorial.data.x)            # replaced (two features for one), not shared
    assert check_scenario(new, tutorial) == check_scenario(new) is not None
    new = editable_copy(tutorial)
    new.data = copy.deepcopy(tutorial.data)                      # equal but not the same arrays: full check
    assert check_scenario(new, tutorial) is None


# --- the copy an edit changes ----------------------------------------------------------------

def test_an_editable_copy_shares_the_data_and_an_edit_never_changes_the_original(big):
    original = loads(big)
    snapshot = copy.deepcopy(original)
    new = editable_copy(original)
    assert new.data.x is original.data.x and new.data.y is original.data.y
    assert new.source_text is original.source_text
    assert new.optimizer is not original.optimizer and new.loop is not original.loop
    assert new.comparisons is not original.comparisons and new.comparisons[0] is not original.comparisons[0]
    new.optimizer.hyper["lr"] = 0.5
    set_optimizer_kind(new.comparisons[0].optimizer, "rmsprop")
    set_loop_value(new.loop, "steps", 7)
    set_scheduler_kind(new.loop, "step", 0.5)
    add_comparison(new)
    del new.comparisons[0]
    new.title = "edited"
    assert original == snapshot and original.source_text == snapshot.source_text


def test_an_expression_models_initial_values_are_shared_too():
    s = load(bundled_path("01_tutorial_wx_b"))
    s.model.parameters["w"].value = [1.0, 2.0, 3.0]
    new = editable_copy(s)
    assert new.model.parameters["w"].value is s.model.parameters["w"].value
    assert new.model.parameters is not s.model.parameters


# --- a 2 MB scenario: edited, saved, loaded back ---------------------------------------------

def test_a_2mb_scenario_is_edited_saved_with_its_comments_and_loads_back_equal(big, tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(big, encoding="utf-8")
    before = load(path)
    assert len(saver.dumps(before).encode()) > LIMITS["max_file_bytes"]   # its canonical text would not fit
    new = edited(before, lambda s: s.optimizer.hyper.update(lr=0.2))
    assert check_scenario(new, before) is None
    new.path = path
    saver.save(new, path)
    text = path.read_text(encoding="utf-8")
    assert load(path) == new and load(path).optimizer.hyper["lr"] == 0.2
    for comment in ("# a scenario near the size limit", "# heavy ball", "# two features", "# labels"):
        assert comment in text
    data = big[big.index("x = ["):]
    assert data in text                                   # the data's text is written back verbatim
    assert len(text) - len(big) == len("lr = 0.2") - len("lr = 0.1")


def test_a_scenario_whose_data_changed_is_saved_exactly(tmp_path):
    before = loads(big_text(20_000))
    new = editable_copy(before)
    new.data.y = [1.0 - v for v in before.data.y]          # an edit of the data replaces the array
    path = saver.save(new, tmp_path / "flipped.toml")
    assert load(path) == new and "# heavy ball" in path.read_text(encoding="utf-8")


def test_a_scenario_whose_text_would_not_fit_is_refused_not_written(big, tmp_path):
    new = editable_copy(loads(big))
    new.data.y = [1.0 - v for v in new.data.y]             # written 1.0, 0.0, ...: over the limit
    with pytest.raises(ScenarioError, match="at most 2000000 bytes"):
        saver.save(new, tmp_path / "flipped.toml")
    assert not (tmp_path / "flipped.toml").exists()


def test_small_files_keep_their_comments_through_edits_and_saves(tutorial, tmp_path):
    source = tutorial.source_text
    comments = [line for line in source.splitlines() if line.lstrip().startswith("#")]
    new = edited(tutorial, lambda s: (s.optimizer.hyper.update(lr=0.02), add_comparison(s)))
    path = saver.save(new, tmp_path / "t.toml")
    text = path.read_text(encoding="utf-8")
    assert load(path) == new and all(line in text for line in comments)


# --- long arrays: read without tomllib, written without tomlkit, the same results -------------

PLAIN = st.one_of(st.integers(-10 ** 20, 10 ** 20).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
                  st.sampled_from(["0", "-0", "+1", "1e5", "1E-3", "-0.0", "2.5e+3", "+0.5"]))
ODD = st.sampled_from(["01", "1_0", "0x1f", "inf", "nan", "1.", ".5", "true", '"a"', "1e", "--1", "[]"])
PLAIN_SPACE = st.sampled_from(["", " ", "\n", "  ", "\t", "\r\n"])
ODD_SPACE = st.sampled_from(["\r", " # c\n", "\u00a0", "\f"])


@st.composite
def arrays(draw):
    """Array text: plain numbers in 1 or 2 dimensions (rectangular or not), sometimes with something
    tomllib refuses or that the fast reader leaves to tomllib."""
    odd = draw(st.integers(0, 3)) == 0
    number = st.one_of(PLAIN, ODD) if odd else PLAIN
    space = st.one_of(PLAIN_SPACE, ODD_SPACE) if odd else PLAIN_SPACE

    def flat(width=None):
        values = draw(st.lists(number, min_size=0 if width is None else width,
                               max_size=6 if width is None else width))
        body = "".join(v + draw(space) + "," + draw(space) for v in values)
        return "[" + draw(space) + (body if draw(st.booleans()) else body.rstrip(", \n")) + "]"
    if draw(st.booleans()):
        return flat()
    width = draw(st.one_of(st.none(), st.integers(1, 4)))     # None: rows of any length
    rows = [flat(width) for _ in range(draw(st.integers(0, 5)))]
    return "[" + draw(space) + ("," + draw(space)).join(rows) + draw(st.sampled_from(["", ",", ", "])) + "]"


def tomllib_value(span: str):
    try:
        return tomllib.loads("v = " + span)["v"]
    except (tomllib.TOMLDecodeError, ValueError):
        return "refused"


def same(a, b) -> bool:
    """Equal with the same types (1 is not 1.0, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return repr(a) == repr(b)


@settings(max_examples=400, deadline=None)
@given(arrays())
def test_a_numeric_array_read_without_tomllib_is_what_tomllib_reads(span):
    value = toml_source.read_array(span)
    if value is not None:                    # None: left to tomllib
        assert same(value, tomllib_value(span))



@pytest.mark.parametrize("kind", ["float", "int", "rows"])
def test_an_array_longer_than_a_conversion_chunk_reads_as_tomllib_reads_it(kind):
    """Numbers are converted in chunks of CONVERT_CHUNK (the GIL offered between them): nothing
    is lost or repeated at the chunk edges."""
    n = 3 * toml_source.CONVERT_CHUNK + 5
    rng = np.random.default_rng(1)
    if kind == "int":
        span = "[" + ", ".join(str(v) for v in rng.integers(-1000, 1000, n)) + "]"
    elif kind == "float":
        span = "[" + ", ".join(map(repr, rng.standard_normal(n).tolist())) + "]"
    else:
        rows = rng.standard_normal((n // 7, 7))
        span = "[\n" + ",\n".join("[" + ", ".join(map(repr, row)) + "]" for row in rows.tolist()) + "\n]"
    value = toml_source.read_array(span)
    assert value is not None and same(value, tomllib_value(span))

CORRUPTIONS = {    # a change to a file near the limit -> the same error (or scenario) with or without the fast path
    "none": lambda t: t,
    "ragged row": lambda t: t.replace("x = [\n[", "x = [\n[1.0, ", 1),
    "a boolean": lambda t: t.replace("x = [\n[", "x = [\n[true, ", 1),
    "nan": lambda t: t.replace("x = [\n[", "x = [\n[nan, ", 1),
    "a string": lambda t: t.replace("x = [\n[", 'x = [\n["a", ', 1),
    "underscore": lambda t: t.replace("y = [", "y = [1_0, ", 1),
    "bad syntax": lambda t: t.replace("],\n", "]\n", 1),
    "too many targets": lambda t: t.replace("y = [", "y = [0, ", 1),
    "one target per row": lambda t: t.replace("y = [", "y = [[0], ", 1),
    "in a string": lambda t: t.replace("seed = 1\n", 'seed = 1\ndescription = """\nz = [' + "1, " * 2000 + '2]\n"""\n'),
    "CRLF": lambda t: t.replace("\n", "\r\n"),
    "a lone CR": lambda t: t.replace("],\n", "],\r", 1),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_file_near_the_limit_fails_or_loads_as_without_the_fast_reader(name, monkeypatch):
    text = CORRUPTIONS[name](big_text(3000))

    def result():
        try:
            return loads(text, name="f.toml")
        except ScenarioError as error:
            return str(error)
    fast = result()
    monkeypatch.setattr(toml_source, "FAST_ARRAY_CHARS", 10 ** 12)
    assert fast == result()


@pytest.mark.parametrize("points", [300, 3000])
def test_long_arrays_are_written_as_tomlkit_writes_them(points, monkeypatch):
    s = loads(big_text(points))
    s.data.y = [float(v) if i % 3 else int(v) for i, v in enumerate(s.data.y)]    # ints and floats
    s.model.layers[0] = 1
    flat = copy.deepcopy(s)
    flat.data.x = [row[0] * 1e-7 for row in s.data.x]                             # one feature: a flat array
    flat.data.input_names = ["x"]
    fast = [saver.dumps(s), saver.dumps(flat)]
    monkeypatch.setattr(saver, "FAST_ARRAY_NUMBERS", 10 ** 12)
    assert fast == [saver.dumps(s), saver.dumps(flat)]
    assert loads(fast[1]) == flat


def test_an_optimizer_spec_in_a_comparison_still_round_trips(big):
    s = loads(big)
    new = editable_copy(s)
    new.comparisons[0].optimizer = OptimizerSpec("adagrad", dict(OPTIMIZER_DEFAULTS["adagrad"], lr=0.05))
    assert check_scenario(new, s) is None
    assert loads(saver.render(new)) == new


def test_long_comment_blocks_and_comment_lines_in_strings_are_kept(tmp_path):
    notes = "".join(f"# note {i}: why this data\n" for i in range(30))
    text = big_text(2_000).replace("[loop]\n", notes + "[loop]\n").replace(
        "seed = 1\n", 'seed = 1\ndescription = """\n' + notes + 'end"""\n')
    before = loads(text)
    new = edited(before, lambda s: (s.optimizer.hyper.update(lr=0.05), s.loop.__setattr__("steps", 9)))
    saved = load(saver.save(new, tmp_path / "notes.toml"))
    assert saved == new and saved.description == before.description
    assert notes + "[loop]\n" in saved.source_text
    new = edited(saved, lambda s: s.__setattr__("description", "short"))
    again = load(saver.save(new, tmp_path / "notes.toml"))
    assert again == new and notes + "[loop]\n" in again.source_text and "# note 3" not in again.description


def test_the_documents_editable_copy_shares_the_data_and_an_edit_leaves_the_original(qapp):
    from ui.document import Document  # the app's document (Qt), as the Controls use it

    document = Document()
    try:
        document.set_scenario(loads(big_text(2_000)))
        document.finish_now()
        original = document.scenario
        snapshot = copy.deepcopy(original)
        new = document.editable_copy()
        assert new.data.x is original.data.x and new.data.y is original.data.y
        new.optimizer.hyper["lr"] = 0.3
        add_comparison(new)
        assert check_scenario(new, original) is None
        document.edit(new)
        document.finish_now()
        assert original == snapshot and document.scenario is new and document.modified
        assert document.scenario.data.x is original.data.x
    finally:
        document.close()
