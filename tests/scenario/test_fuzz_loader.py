"""Fuzzing the loader: whatever the input, ``loads`` returns a Scenario or raises ScenarioError,
and rejects it in well under 2 s (a correctness requirement: a bad file must never hang the app).
"""
import copy
import time
import tomllib

import pytest
import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradviz.scenario import LIMITS, OPTIMIZER_DEFAULTS, SCALER_DEFAULTS, Scenario, ScenarioError, bundled, load, loads
from gradviz.scenario.datasets import DATASETS

TIME_LIMIT = 2.0
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# generating nested documents costs more than loading them: fewer, smaller examples
NESTED = settings(FUZZ, max_examples=120)

KEYS = sorted({
    "scenario", "model", "data", "loss", "optimizer", "loop", "comparison",
    "title", "description", "seed", "expression", "objective", "layers", "activation", "parameters",
    "init", "value", "shape", "std", "low", "high", "x", "y", "kind", "n", "noise", "inputs",
    "slope", "intercept", "x_min", "x_max", "factor", "turns", "centers", "reduction", "name",
    "steps", "batch_size", "shuffle", "accumulation_steps", "divide_loss", "zero_grad",
    "set_to_none", "precision", "loss_scaling", "scaler", "w", "b",
    *[k for defaults in OPTIMIZER_DEFAULTS.values() for k in defaults], *SCALER_DEFAULTS,
})
WORDS = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "mse", "l1", "bce_with_logits",
         "cross_entropy", "mean", "sum", "tanh", "relu", "sigmoid", "float16", "float32", "float64",
         "before_backward", "after_step", "never", "full", "normal", "uniform", "zeros", "ones",
         "w * x + b", "tanh(x1*w1 + x2*w2 + b)", "(1 - x)**2 + 100*(y - x**2)**2", *DATASETS]


def check(text: str):
    """loads(text) must return a Scenario or raise ScenarioError, within the time limit."""
    start = time.perf_counter()
    try:
        result = loads(text, name="fuzz.toml")
    except ScenarioError as error:
        result = error
        assert str(error).startswith("fuzz.toml") and "\n" not in str(error)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"{elapsed:.2f} s for {text[:200]!r}"
    assert isinstance(result, (Scenario, ScenarioError))
    return result


# --- strategies ---------------------------------------------------------------------------------

keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12).filter(bool))
scalars = st.one_of(
    st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(), st.booleans(),
    st.sampled_from(WORDS), st.text(max_size=30),
    st.integers(-3, 300), st.floats(-10, 10), st.datetimes(), st.dates(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(keys, children, max_size=6)),
    max_leaves=12,
)
documents = st.dictionaries(
    st.sampled_from(["scenario", "model", "data", "loss", "optimizer", "loop", "comparison"]) | keys,
    st.one_of(st.dictionaries(keys, values, max_size=6),
              st.lists(st.dictionaries(keys, values, max_size=4), max_size=3), values),
    max_size=7,
)
toml_lines = st.lists(st.one_of(
    st.builds(lambda k: f"[{k}]", st.sampled_from(KEYS + ["model.parameters", "loop.scaler"])),
    st.builds(lambda k: f"[[{k}]]", st.sampled_from(["comparison", "data", "model"])),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS),
              st.one_of(st.sampled_from(['"' + w + '"' for w in WORDS]),
                        st.sampled_from(["1", "0", "-1", "0.1", "1e400", "nan", "inf", "true",
                                         "[1, 2]", "[[1], [2, 3]]", "[]", "{}", "{ lr = 1 }",
                                         "[0.0, 1.0, 0.0, 1.0]", "\"\"\"x\ny\"\"\"", "'''"]),
                        st.text(max_size=10))),
    st.text(max_size=20),
), max_size=40).map("\n".join)


def dump(doc: dict) -> str:
    try:
        return tomlkit.dumps(doc)
    except Exception:          # noqa: BLE001 -- tomlkit cannot write every Python structure
        assume(False)


# --- random inputs ------------------------------------------------------------------------------

@FUZZ
@given(st.text(max_size=3000))
def test_random_text(text):
    check(text)


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    start = time.perf_counter()
    try:
        load(data)
    except ScenarioError:
        pass
    assert time.perf_counter() - start < TIME_LIMIT


@FUZZ
@given(toml_lines)
def test_random_toml_like_lines(text):
    check(text)


@NESTED
@given(documents)
def test_random_toml_documents(doc):
    check(dump(doc))


# --- mutations of the bundled files ---------------------------------------------------------------

BUNDLED = {p.stem: p.read_text(encoding="utf-8") for p in bundled()}


def paths_of(node, prefix=()):
    """Every key path into nested dicts and lists."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out.extend(paths_of(value, prefix + (key,)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(prefix + (i,))
            out.extend(paths_of(value, prefix + (i,)))
    return out


def parent_of(doc, path):
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@NESTED
@given(st.sampled_from(sorted(BUNDLED)), st.data())
def test_mutated_bundled_documents(stem, data):
    doc = tomllib.loads(BUNDLED[stem])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = paths_of(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = parent_of(doc, path)
        action = data.draw(st.sampled_from(["delete", "replace", "insert", "retype"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(values)
        elif action == "retype":
            old = parent[path[-1]]
            parent[path[-1]] = data.draw(scalars.filter(lambda v, old=old: type(v) is not type(old)))
        else:
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            if isinstance(target, dict):
                target[data.draw(keys)] = data.draw(values)
    check(dump(doc))


@FUZZ
@given(st.sampled_from(sorted(BUNDLED)), st.data())
def test_mutated_bundled_text(stem, data):
    text = BUNDLED[stem]
    action = data.draw(st.sampled_from([
        "truncate", "delete_line", "duplicate_line", "splice", "replace_char"]))
    lines = text.splitlines(keepends=True)
    if action == "truncate":
        text = text[:data.draw(st.integers(0, len(text)))]
    elif action == "delete_line":
        del lines[data.draw(st.integers(0, len(lines) - 1))]
        text = "".join(lines)
    elif action == "duplicate_line":
        i = data.draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[:i + 1] + lines[i:])
    elif action == "splice":
        i = data.draw(st.integers(0, len(text)))
        text = text[:i] + data.draw(st.text(max_size=20)) + text[i:]
    else:
        i = data.draw(st.integers(0, len(text) - 1))
        text = text[:i] + data.draw(st.characters()) + text[i + 1:]
    check(text)


def test_every_bundled_file_survives_deleting_each_line():
    for text in BUNDLED.values():
        lines = text.splitlines(keepends=True)
        for i in range(len(lines)):
            check("".join(lines[:i] + lines[i + 1:]))


# --- expressions ----------------------------------------------------------------------------------

TUTORIAL = tomllib.loads(BUNDLED["01_tutorial_wx_b"])
INJECTIONS = [
    "__import__('os').system('rm -rf /')", "x.__class__", "().__class__", "w.__class__.__mro__",
    "__builtins__", "_w * x", "open('/etc/passwd').read()", "eval('w')", "exec('import os')",
    "globals()", "w.real", "(lambda: w)()", "[c for c in ().__class__.__bases__]", "w if x else b",
    "w; b", "w\nimport os", "f'{w}'", "b'w'", "w[0]", "w(x)", "tanh(w)(x)", "x @ w.T",
    "import os", "not w", "w and b", "w == b", "w := 1", "*w", "w, b", "w ** ** b",
    "9" * 50, "(" * 80 + "w" + ")" * 80, "-" * 100 + "w", "w" + "+w" * 600, "w" * 3000,
]


@pytest.mark.parametrize("expression", INJECTIONS)
def test_expression_injection_is_rejected_naming_the_key(expression):
    doc = copy.deepcopy(TUTORIAL)
    doc["model"]["expression"] = expression
    result = check(tomlkit.dumps(doc))
    assert isinstance(result, ScenarioError) and result.key == "model.expression", result


@FUZZ
@given(st.text(max_size=200))
def test_random_expressions_fail_only_at_the_expression(expression):
    doc = copy.deepcopy(TUTORIAL)
    doc["model"]["expression"] = expression
    result = check(tomlkit.dumps(doc))
    if isinstance(result, ScenarioError):
        assert result.key == "model.expression", result


# --- sizes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "a = " + "[" * 100_000 + "]" * 100_000,
    "a = " + "{ b = " * 20_000 + "1" + " }" * 20_000,
    "a = " + "9" * 100_000,
    "[" + "a." * 50_000 + "a]",
    "x = [" + "1, " * 300_000 + "]",
    "\n" * 1_900_000,
    '[scenario]\ntitle = "' + "t" * 1_000_000 + '"',
    "".join(f"[t{i}]\n" for i in range(200_000)),
    "[scenario]\n" + "".join(f"k{i} = 1\n" for i in range(150_000)),
    '[[comparison]]\nname = "x"\n' * 80_000,
    "x = {" + ", ".join(f"k{i} = 1" for i in range(150_000)) + "}",
])
def test_pathological_inputs_are_rejected_quickly(text):
    assert isinstance(check(text), ScenarioError)


def test_a_document_at_the_size_limit_is_handled_within_the_time_limit():
    points = ", ".join(f"{i % 97 / 7:.4f}" for i in range(LIMITS["max_points"]))
    doc = BUNDLED["01_tutorial_wx_b"].replace("x = [2.0]", f"x = [{points}]").replace(
        "y = [4.0]", f"y = [{points}]")
    assert len(doc.encode()) < LIMITS["max_file_bytes"]
    best = min(_timed(doc) for _ in range(2))
    assert best < TIME_LIMIT
    rejected = doc.replace("[optimizer]", "[optimizer]\nlrr = 1")
    assert min(_timed(rejected) for _ in range(2)) < TIME_LIMIT
    with pytest.raises(ScenarioError, match="did you mean 'lr'"):
        loads(rejected)


def _timed(text: str) -> float:
    start = time.perf_counter()
    try:
        loads(text)
    except ScenarioError:
        pass
    return time.perf_counter() - start
