"""The exported PyTorch script: readable, safe, and the same run as GradViz's under real PyTorch.

PyTorch is the oracle. Every bundled scenario (each variant, in float64, at most 60 steps), a
table of toggles (zero_grad placement, set_to_none, accumulation with and without dividing,
shuffled mini-batches, each optimizer) and random valid scenarios drawn from the hypothesis
strategies (every variant, in float64) are exported, run under torch, and their CSVs compared with
``Session(...).run().columns()`` to 1e-10 relative. All scripts run in one subprocess (one torch
import); one more runs standalone with ``python -I``.
"""
import ast
import copy
import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gradviz.codegen import LINE_KINDS, PHASES, Script, export_torch
from gradviz.scenario import bundled, load, loads
from gradviz.scenario.schema import (
    OPTIMIZER_DEFAULTS,
    DataSpec,
    LoopSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    ParamInit,
    Scenario,
    Variant,
)
from gradviz.training.session import Session

HAS_TORCH = importlib.util.find_spec("torch") is not None     # the scripts import it, not this module
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")

TOL = 1e-10            # relative; absolute near zero: TOL times the column's largest value (at most 1e-8)
MAX_STEPS = 60
MIXED_STEPS = 10       # float16/bfloat16 losses compared over the first steps (see the bundled test)
# Random scenarios: 40 drawn documents give 82 variants and add ~10 s to the suite (one torch process).
GENERATED_EXAMPLES = 40
GENERATED_SEED = 20261206
GENERATED_STEPS = 10


def optimizer(kind="sgd", **hyper):
    return OptimizerSpec(kind, dict(OPTIMIZER_DEFAULTS[kind], **hyper))


def line_scenario(**loop):
    """w*x + b on 24 noisy points of a line, SGD with momentum, float64."""
    return Scenario(
        title="line", seed=3,
        model=ModelSpec("expression", "w * x + b", {"w": ParamInit(value=0.5), "b": ParamInit("normal", std=0.3)}),
        data=DataSpec("linear", n=24, noise=0.2), optimizer=optimizer(lr=0.1, momentum=0.9),
        loop=LoopSpec(**dict(dict(steps=40, precision="float64"), **loop)))


def mlp_scenario(**loop):
    """A 2-5-1 tanh network on xor (BCE with logits), Adam, float64."""
    return Scenario(
        title="mlp", seed=1, model=ModelSpec("layers", layers=[2, 5, 1], activation="tanh"),
        data=DataSpec("xor", n=32, noise=0.3), loss=LossSpec("bce_with_logits"),
        optimizer=optimizer("adam", lr=0.05, amsgrad=True),
        loop=LoopSpec(**dict(dict(steps=30, precision="float64"), **loop)))


def objective_scenario(**loop):
    """Rosenbrock with a vector parameter, RMSprop."""
    return Scenario(
        title="rosenbrock", seed=0,
        model=ModelSpec("objective", "sum((1 - p)**2) + 100 * (q - sum(p**2))**2",
                        {"p": ParamInit("uniform", shape=(2,), low=-1.0, high=0.0), "q": ParamInit(value=1.5)}),
        optimizer=optimizer("rmsprop", lr=0.01, momentum=0.5, centered=True),
        loop=LoopSpec(**dict(dict(steps=50, precision="float64"), **loop)))


def constants_scenario():
    """Functions of plain numbers (torch needs tensors there) whose float32 values are exact."""
    scenario = objective_scenario(steps=20)
    scenario.model.expression = "sqrt(4) * sigmoid(0) * q**2 + abs(-3) * sum(p**2) - mean(2 * 3) * q"
    return scenario


def blobs_scenario(**loop):
    """Three classes (cross entropy, sum reduction), Adagrad, shuffled mini-batches."""
    return Scenario(
        title="blobs", seed=5, model=ModelSpec("layers", layers=[2, 4, 3], activation="relu"),
        data=DataSpec("blobs", n=30, noise=0.5), loss=LossSpec("cross_entropy", "sum"),
        optimizer=optimizer("adagrad", lr=0.1, initial_accumulator_value=0.1, lr_decay=0.01),
        loop=LoopSpec(**dict(dict(steps=30, precision="float64", batch_size=10, shuffle=True), **loop)))


# id -> (scenario, variant, the base it is a toggle of, whether the History must differ from it)
TOGGLES = {
    "line": (line_scenario(), None, False),
    "line-zero_grad-never": (line_scenario(zero_grad="never"), "line", True),
    "line-zero_grad-after_step": (line_scenario(zero_grad="after_step"), "line", False),
    "line-set_to_none-false": (line_scenario(set_to_none=False), "line", False),
    "line-never-set_to_none-false": (line_scenario(zero_grad="never", set_to_none=False), "line", True),
    "line-minibatch": (line_scenario(batch_size=8), "line", True),
    "line-shuffle": (line_scenario(batch_size=8, shuffle=True), "line-minibatch", True),
    "line-accumulate-divide": (line_scenario(batch_size=8, accumulation_steps=4), "line-minibatch", False),
    "line-accumulate-no-divide": (line_scenario(batch_size=8, accumulation_steps=4, divide_loss=False),
                                  "line-minibatch", True),
    "line-accumulate-shuffle-never": (line_scenario(batch_size=12, accumulation_steps=3, shuffle=True,
                                                    zero_grad="never"), "line", True),
    "line-float32": (line_scenario(precision="float32"), None, False),
    "mlp": (mlp_scenario(), None, False),
    "mlp-accumulate-shuffle": (mlp_scenario(batch_size=16, accumulation_steps=2, shuffle=True), "mlp", True),
    "mlp-after_step-no-divide": (mlp_scenario(zero_grad="after_step", accumulation_steps=4,
                                              divide_loss=False), "mlp", True),
    "objective": (objective_scenario(), None, False),
    "objective-accumulate": (objective_scenario(accumulation_steps=2, divide_loss=False), "objective", True),
    "blobs": (blobs_scenario(), None, False),
    "objective-constants": (constants_scenario(), None, False),
    "blobs-never": (blobs_scenario(zero_grad="never", set_to_none=False), "blobs", True),
    "mlp-float16-scaler": (mlp_scenario(precision="float16", loss_scaling=True,
                                        scaler=dict(init_scale=1024.0, growth_interval=5)), None, False),
    "line-float16": (line_scenario(precision="float16"), None, False),
}
COMPARE = {name for name, (s, _, _) in TOGGLES.items() if s.loop.precision == "float64"}


def hostile_names_scenario():
    """Parameter names that are also names the script uses (not "loss" or "step": those clash with
    the History's own columns)."""
    scenario = line_scenario(steps=5)
    scenario.model = ModelSpec("expression", "model * x + print + 0 * torch",
                               {"model": ParamInit(value=0.5), "print": ParamInit(value=0.1),
                                "torch": ParamInit(value=2.0)})
    return scenario


def float64_copy(scenario: Scenario) -> Scenario:
    """The scenario in float64 (float16 and bfloat16 variants stay as they are) with at most MAX_STEPS steps."""
    scenario = copy.deepcopy(scenario)
    for loop in [scenario.loop] + [c.loop for c in scenario.comparisons]:
        if loop.precision not in ("float16", "bfloat16"):
            loop.precision = "float64"
        loop.steps = min(loop.steps, MAX_STEPS)
    return scenario


def bundled_cases():
    cases = []
    for path in bundled():
        scenario = float64_copy(load(path))
        for variant in range(len(scenario.variants())):
            cases.append((f"{path.stem}-{variant}", scenario, variant))
    return cases


def generated_cases():
    """Valid scenario documents from the hypothesis strategies, drawn with a fixed seed in a fresh
    interpreter (the same cases on every run, whatever this process imported first), each variant
    in float64 with at most MAX_STEPS steps."""
    root = Path(__file__).resolve().parents[2]
    drawn = subprocess.run([sys.executable, "-m", "tests.scenario.strategies", str(GENERATED_SEED),
                            str(GENERATED_EXAMPLES)], cwd=root, capture_output=True, text=True, check=True,
                           timeout=300)
    cases = []
    for i, text in enumerate(json.loads(drawn.stdout)):
        scenario = float64_copy(loads(text))
        for loop in [scenario.loop] + [c.loop for c in scenario.comparisons]:
            loop.precision, loop.loss_scaling = "float64", False
            loop.steps = min(loop.steps, GENERATED_STEPS)
        cases += [(f"generated{i}-{variant}", scenario, variant) for variant in range(len(scenario.variants()))]
    return cases


BUNDLED = bundled_cases()
GENERATED = generated_cases()
CASES = {name: (scenario, 0) for name, (scenario, _, _) in TOGGLES.items()}
CASES.update({name: (scenario, variant) for name, scenario, variant in BUNDLED + GENERATED})
CASES["hostile-names"] = (hostile_names_scenario(), 0)

DRIVER = textwrap.dedent("""
    import contextlib, io, runpy, sys, traceback
    paths = sys.argv[1:]
    for script, out in zip(paths[::2], paths[1::2]):
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                runpy.run_path(script, run_name="__main__")
        except BaseException:
            buffer.write("\\nFAILED\\n" + traceback.format_exc())
        with open(out, "w") as f:
            f.write(buffer.getvalue())
""")


def parse_csv(text: str) -> tuple[list[str], np.ndarray]:
    assert "FAILED" not in text, text[text.find("FAILED"):]
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return header, np.array([[float(v) for v in row] for row in rows[1:]], dtype=np.float64).reshape(-1, len(header))


@pytest.fixture(scope="module")
def torch_runs(tmp_path_factory):
    """name -> (header, rows): every case's script run under PyTorch, all in one subprocess."""
    if not HAS_TORCH:
        pytest.skip("PyTorch is not installed")
    folder = tmp_path_factory.mktemp("torch_scripts")
    args = []
    for i, (scenario, variant) in enumerate(CASES.values()):
        script = folder / f"case{i}.py"
        script.write_text(export_torch(scenario, variant).source)
        args += [str(script), str(folder / f"case{i}.csv")]
    env = dict(os.environ, OMP_NUM_THREADS="1")     # tiny tensors: threads only add waiting
    subprocess.run([sys.executable, "-c", DRIVER, *args], check=True, env=env, timeout=600)
    return {name: (folder / f"case{i}.csv").read_text() for i, name in enumerate(CASES)}


def assert_same_history(header, rows, history):
    columns = history.columns()
    assert set(header) == set(columns), set(header) ^ set(columns)
    assert rows.shape[0] == history.steps, "the script and GradViz stopped at different steps"
    def group(name: str) -> str:
        return name.split(".")[0] if name.startswith(("grad.", "state.")) else name

    # An element near zero is a cancellation of terms of its group's size (a gradient of 1e-12 among
    # gradients of 1): its last-ulp differences (BLAS summation order) are relative to that size.
    scale: dict[str, float] = {}
    for name, values in columns.items():
        values = np.abs(np.asarray(values, dtype=np.float64))
        finite = values[np.isfinite(values)]
        if finite.size:
            scale[group(name)] = max(scale.get(group(name), 0.0), float(finite.max()))
    for name, expected in columns.items():
        expected = np.asarray(expected, dtype=np.float64)
        atol = min(1e-8, TOL * scale[group(name)]) if group(name) in scale else 0.0
        np.testing.assert_allclose(rows[:, header.index(name)], expected, rtol=TOL, atol=atol,
                                   equal_nan=True, err_msg=name)


# -- parity under PyTorch --------------------------------------------------------------------------

@needs_torch
@pytest.mark.parametrize("name", [name for name, _, _ in BUNDLED])
def test_bundled_scenarios_match_pytorch(name, torch_runs):
    scenario, variant = CASES[name]
    header, rows = parse_csv(torch_runs[name])
    history = Session(scenario, variant).run()
    if scenario.variants()[variant].loop.precision in ("float16", "bfloat16"):
        assert set(header) == set(history.columns()) and len(rows) > 0
        # ops round as torch's CPU kernels do (float32 opmath, one rounding), so the losses agree to
        # the float32 digits the script prints; matmul's accumulation order may still differ by a
        # float16 ulp in one gradient element (step 3 of lesson 12), which a large learning rate
        # grows over the run: the first MIXED_STEPS steps are compared
        np.testing.assert_allclose(rows[:MIXED_STEPS, header.index("loss")], history.loss[:MIXED_STEPS], rtol=1e-5)
        return
    assert_same_history(header, rows, history)


@needs_torch
@pytest.mark.parametrize("name", [name for name, _, _ in GENERATED])
def test_generated_scenarios_match_pytorch(name, torch_runs):
    """Every generated script runs under PyTorch; runs that stay bounded match to 1e-10 relative.

    A run that diverges (its loss grows 100-fold or overflows: random inputs up to 1e6, learning
    rates up to 1, maximize) amplifies the last-ulp differences that stay CPU-dependent (BLAS
    summation order, MKL's sqrt; see docs/numerics.md) beyond any fixed tolerance, and may stop at a
    different step: it is run, not compared (9 of the 82 generated variants).
    """
    scenario, variant = CASES[name]
    header, rows = parse_csv(torch_runs[name])
    history = Session(scenario, variant).run()
    values = np.concatenate([np.asarray(c, dtype=np.float64).ravel() for c in history.columns().values()])
    loss = np.abs(np.asarray(history.loss, dtype=np.float64))
    if not np.all(np.isfinite(values)) or len(rows) != history.steps or loss.max() > 100 * loss[0]:
        pytest.skip("diverging run: ulp differences grow without bound")
    assert_same_history(header, rows, history)


def test_generated_scenarios_cover_every_model_kind_and_optimizer():
    scenarios = {id(s): s for _, s, _ in GENERATED}.values()
    assert {s.model.kind for s in scenarios} == {"expression", "objective", "layers"}
    assert {v.optimizer.kind for s in scenarios for v in s.variants()} >= {"sgd", "adam", "rmsprop", "adagrad"}


@needs_torch
@pytest.mark.parametrize("name", sorted(COMPARE))
def test_toggles_change_the_history_as_pytorch_does(name, torch_runs):
    scenario, base, must_differ = TOGGLES[name]
    history = Session(scenario).run()
    assert_same_history(*parse_csv(torch_runs[name]), history)
    if base is not None:
        base_history = Session(TOGGLES[base][0]).run()
        differs = not np.allclose(history.loss, base_history.loss, rtol=1e-12, atol=0)
        assert differs == must_differ


@needs_torch
@pytest.mark.parametrize("name", sorted(set(TOGGLES) - COMPARE))
def test_float32_and_float16_scripts_run_under_pytorch(name, torch_runs):
    scenario = TOGGLES[name][0]
    header, rows = parse_csv(torch_runs[name])
    history = Session(scenario).run()
    assert set(header) == set(history.columns())
    assert 0 < len(rows) <= scenario.loop.steps
    if scenario.loop.precision == "float32":   # same ops, float32 rounding
        np.testing.assert_allclose(rows[:, header.index("loss")], history.loss, rtol=1e-4, atol=1e-6)


def test_the_toggle_table_covers_every_toggle():
    loops = [s.loop for s, _, _ in TOGGLES.values()]
    assert {loop.zero_grad for loop in loops} == {"before_backward", "after_step", "never"}
    assert {loop.set_to_none for loop in loops} == {True, False}
    assert {(loop.accumulation_steps > 1, loop.divide_loss) for loop in loops} >= {(True, True), (True, False)}
    assert {loop.shuffle for loop in loops} == {True, False}
    assert {loop.precision for loop in loops} == {"float64", "float32", "float16"}
    assert {s.optimizer.kind for s, _, _ in TOGGLES.values()} >= {"sgd", "adam", "rmsprop", "adagrad"}


@needs_torch
def test_standalone_script_runs_with_only_torch_and_numpy(tmp_path):
    """``python -I script.py`` (no PYTHONPATH, no current directory on the path) from elsewhere."""
    scenario = TOGGLES["line-accumulate-shuffle-never"][0]
    path = tmp_path / "script.py"
    path.write_text(export_torch(scenario).source)
    out = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert out.returncode == 0, out.stderr
    assert_same_history(*parse_csv(out.stdout), Session(scenario).run())


# -- the script's text -----------------------------------------------------------------------------

def scripts():
    return [pytest.param(s, v, id=name) for name, (s, v) in CASES.items()]


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    return modules


@pytest.mark.parametrize("scenario, variant", scripts())
def test_script_is_safe_python_importing_only_torch_numpy_math(scenario, variant):
    source = export_torch(scenario, variant).source
    compile(source, "<export>", "exec")
    assert imported_modules(source) <= {"torch", "numpy", "math"}
    for word in ("eval(", "exec(", "pickle", "__import__", "compile(", "open(", "gradviz."):
        assert word not in source


@pytest.mark.parametrize("scenario, variant", scripts())
def test_phase_lines_point_at_the_phase(scenario, variant):
    script = export_torch(scenario, variant)
    lines = script.source.splitlines()
    loop = scenario.variants()[variant].loop
    expected = {"zero_grad": "optimizer.zero_grad(", "zero_grad_after": "optimizer.zero_grad(",
                "backward": ".backward()", "loss": "loss = ",
                "step": "scaler.step(optimizer)" if loop.loss_scaling and loop.precision == "float16"
                else "optimizer.step()",
                "forward": "loss = " if scenario.model.kind == "objective" else "pred = "}
    placements = {"before_backward": {"zero_grad"}, "after_step": {"zero_grad_after"}, "never": set()}
    assert set(script.lines) == {"forward", "loss", "backward", "step"} | placements[loop.zero_grad]
    assert set(script.lines) <= set(PHASES)
    for phase, number in script.lines.items():
        assert expected[phase] in lines[number - 1], (phase, lines[number - 1])
    order = [script.lines[p] for p in PHASES if p in script.lines]
    assert order == sorted(order)                 # the loop's order: zero_grad, forward, ..., step
    # the loop part, with its own map
    loop_lines = script.loop_source().splitlines()
    assert loop_lines[0] == "for step in range(STEPS):"
    assert all(line.startswith("    ") or not line for line in loop_lines[1:])
    for phase, number in script.loop_lines.items():
        assert loop_lines[number - 1] == lines[script.lines[phase] - 1]
    calls = [node for node in ast.walk(ast.parse(script.source))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "zero_grad"]
    assert len(calls) == (loop.zero_grad != "never")
    if loop.zero_grad == "never":
        assert "gradients keep accumulating" in script.loop_source()


def test_tutorial_loop_reads_like_pytorch():
    script = export_torch(line_scenario(zero_grad="before_backward"))
    assert script.loop_source().splitlines()[:6] == [
        "for step in range(STEPS):",
        "    optimizer.zero_grad()",
        "    pred = w * x + b",
        "    loss = loss_fn(pred, y)",
        "    loss.backward()",
        "    row = record(step, [loss.item()])  # loss, parameters and grads before the step",
    ]
    assert "optimizer = torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9)" in script.source
    assert "DTYPE = torch.float64" in script.source


def test_toggles_are_written_out_and_explained():
    accumulate = export_torch(line_scenario(batch_size=8, accumulation_steps=4, divide_loss=False,
                                            zero_grad="after_step", set_to_none=False)).loop_source()
    assert "for micro in range(ACCUMULATION_STEPS):" in accumulate
    assert "idx[micro * MICRO_BATCH:(micro + 1) * MICRO_BATCH]" in accumulate
    assert "is 4x too large" in accumulate and "loss / ACCUMULATION_STEPS" not in accumulate
    assert accumulate.rstrip().endswith("optimizer.zero_grad(set_to_none=False)  "
                                        "# zero the grads in place (they stay tensors, not None)")
    divide = export_torch(line_scenario(batch_size=8, accumulation_steps=4)).loop_source()
    assert "loss = loss / ACCUMULATION_STEPS" in divide
    amp = export_torch(mlp_scenario(precision="float16", loss_scaling=True,
                                    scaler=dict(init_scale=1024.0, growth_interval=5)))
    assert 'with torch.autocast("cpu", dtype=torch.float16):' in amp.source
    assert 'scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=5)' in amp.source
    assert "scaler.scale(loss).backward()" in amp.source
    assert "DTYPE = torch.float32" in amp.source
    mlp = export_torch(mlp_scenario()).source
    assert "torch.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)" in mlp
    assert "torch.nn.Linear(2, 5),\n    torch.nn.Tanh(),\n    torch.nn.Linear(5, 1),\n).to(DTYPE)" in mlp
    assert "with torch.no_grad():\n    model[0].weight.copy_(torch.tensor(" in mlp
    blobs = export_torch(blobs_scenario()).source
    assert 'torch.nn.CrossEntropyLoss(reduction="sum")' in blobs
    assert "batches = batch_order(30, BATCH_SIZE, shuffle=True, seed=5)" in blobs


def test_functions_of_numbers_get_tensors():
    loop = export_torch(constants_scenario()).loop_source()
    assert ("loss = torch.sqrt(torch.tensor(4.0)) * torch.sigmoid(torch.tensor(0.0)) * q**2 + "
            "torch.abs(torch.tensor(-3.0)) * torch.sum(p**2) - torch.mean(torch.tensor(6.0)) * q") in loop


def test_comparison_variant_is_exported():
    scenario = line_scenario()
    scenario.comparisons.append(Variant("adam", optimizer("adam", lr=0.2, betas=[0.8, 0.99]),
                                        LoopSpec(steps=7, precision="float64", zero_grad="never")))
    script = export_torch(scenario, 1)
    assert "torch.optim.Adam(list(params.values()), lr=0.2, betas=(0.8, 0.99))" in script.source
    assert "STEPS = 7" in script.source and "zero_grad" not in script.lines
    assert script.variant == "adam"
    with pytest.raises(ValueError, match="variant 2 does not exist"):
        export_torch(scenario, 2)


def test_embedded_numbers_round_trip_exactly():
    scenario = mlp_scenario()
    source = export_torch(scenario).source
    session = Session(scenario)
    # Only the literals inside torch.tensor(...), in source order: repr must round-trip.
    calls = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "tensor"]
    values = [np.array(ast.literal_eval(c.args[0])) for c in sorted(calls, key=lambda c: c.lineno)]
    x, y = values[0], values[1]
    np.testing.assert_array_equal(x, session.data.inputs["x"])
    np.testing.assert_array_equal(y, session.data.target)
    initial = [session.history.params[n][0] for n in session.param_names]
    for got, expected in zip(values[2:], initial):
        np.testing.assert_array_equal(got, expected)


def test_hostile_text_and_names_stay_comments_and_identifiers():
    scenario = line_scenario()
    scenario.title = 'T"""; import os; os.system("echo pwned") \u2028x = 1'   # one line: the loader's rule
    scenario.description = "line one\r\nimport shutil\x0b\x00 eval(1)\n\\"
    scenario.model = ModelSpec("expression", "loss_fn * x + print",
                               {"loss_fn": ParamInit(value=0.5), "print": ParamInit(value=0.1)})
    source = export_torch(scenario).source
    tree = ast.parse(source)
    assert imported_modules(source) <= {"torch", "numpy", "math"}
    assert not any(isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "system"
                   for node in ast.walk(tree))
    assert "\x00" not in source and "\u2028" not in source and "\x0b" not in source
    assert "params = {\"loss_fn\": loss_fn_, \"print\": print_}" in source
    assert "pred = loss_fn_ * x + print_" in source


def test_a_parameter_named_like_a_history_column_is_refused():
    """A parameter ``loss`` would overwrite the loss column of the History (and of the script's
    CSV): the exporter refuses it as the loader and the Session do."""
    scenario = line_scenario()
    scenario.model = ModelSpec("expression", "loss * x", {"loss": ParamInit(value=0.5)})
    with pytest.raises(ValueError, match=r"\[model.parameters.loss\] .*History column"):
        export_torch(scenario)


@needs_torch
def test_hostile_names_still_run_and_keep_their_column_names(torch_runs):
    scenario = CASES["hostile-names"][0]
    assert "params = {\"model\": model_, \"print\": print_, \"torch\": torch_}" in export_torch(scenario).source
    assert_same_history(*parse_csv(torch_runs["hostile-names"]), Session(scenario).run())


def test_script_dataclass_loop_map():
    script = Script("a\nfor step in range(STEPS):\n    x\n    y\nz\n", {"forward": 3, "step": 4}, 2, 4)
    assert script.loop_source() == "for step in range(STEPS):\n    x\n    y\n"
    assert script.loop_lines == {"forward": 2, "step": 3}


@pytest.mark.parametrize("scenario, variant", scripts())
def test_listing_is_the_source_line_by_line_tagged(scenario, variant):
    script = export_torch(scenario, variant)
    listing = script.listing
    assert "\n".join(line.text for line in listing) + "\n" == script.source
    assert {line.kind for line in listing} <= set(LINE_KINDS)
    assert {phase for line in listing for phase in line.phases} == set(script.lines)
    for phase, number in script.lines.items():
        assert phase in listing[number - 1].phases
    loop = [number for number, line in enumerate(listing, 1) if line.kind in ("loop", "bookkeeping")]
    assert loop == list(range(script.loop_start, script.loop_end + 1))
    v = scenario.variants()[variant]
    scaler = v.loop.precision == "float16" and v.loop.loss_scaling
    setup = [line.code.split(" = ", 1)[0] for line in listing if line.kind == "setup"]
    assert setup == ([] if scenario.model.kind == "objective" else ["loss_fn"]) + ["optimizer"] + (
        ["scaler"] if scaler else []) + (["scheduler"] if v.loop.scheduler else [])
    bookkeeping = [line.code.strip() for line in listing if line.kind == "bookkeeping"]
    assert bookkeeping[-1] == "break" and any(code.startswith("row = record(") for code in bookkeeping)
    assert any(code.startswith("if not log(") for code in bookkeeping)
    assert all(not line.aside for line in listing if line.kind != "bookkeeping")
    assert not any(line.phases for line in listing if line.kind == "bookkeeping")
