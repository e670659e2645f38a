"""The clean program of a TOML scenario (``codegen.program``): plain PyTorch, lit by phase, and the
same run as the Session's under real torch and under GradViz's script runner.

PyTorch is the oracle: every bundled lesson (each variant, in float64 with at most 60 steps, and
as written) and a table of toggles (zero_grad placement, set_to_none, mini-batches, shuffling,
accumulation with and without dividing, float16 with a GradScaler, clipping before and after
unscaling, schedulers before and after the step) run as programs under torch, all in one
subprocess; their final parameters must be the Session's.
"""
import ast
import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradviz.codegen import LINE_KINDS, PHASES, program
from gradviz.scenario import bundled, load
from gradviz.scenario.schema import (
    SCHEDULER_DEFAULTS,
    DataSpec,
    LoopSpec,
    LossSpec,
    ModelSpec,
    ParamInit,
    Scenario,
    SchedulerSpec,
)
from gradviz.training.session import Session
from tests.scenario.test_codegen import line_scenario, optimizer

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
MAX_STEPS = 60
# Lessons in their own precision run at most this many steps: after several hundred steps Adam's,
# RMSprop's and Adagrad's float32 sqrt can differ from torch's by one ulp (CPU-dependent, see
# docs/numerics.md) and the Rosenbrock valley amplifies that without bound.
AS_WRITTEN_STEPS = 300
# Mixed precision runs at most this many steps: the core's float16 matmul can round one element of a
# gradient one float16 ulp (1e-3 relative) away from torch's kernel (seen at step 3 of lesson 12), and
# a large learning rate amplifies that: after 10 steps the parameters agree to about 3e-5.
MIXED_STEPS = 10


def scheduler(kind, placement="after_step", **hyper):
    return SchedulerSpec(kind, dict(SCHEDULER_DEFAULTS[kind], **hyper), placement)


line = line_scenario          # w*x + b on 24 noisy points, SGD with momentum, float64 (test_codegen's)


def mlp(**loop):
    """A 2-5-1 tanh network on xor (BCE with logits), Adam, float64."""
    return Scenario(
        title="mlp", seed=1, model=ModelSpec("layers", layers=[2, 5, 1], activation="tanh"),
        data=DataSpec("xor", n=32, noise=0.3), loss=LossSpec("bce_with_logits"),
        optimizer=optimizer("adam", lr=0.05), loop=LoopSpec(**dict(dict(steps=30, precision="float64"), **loop)))


def objective(**loop):
    """Rosenbrock with a vector parameter, RMSprop."""
    return Scenario(
        title="rosenbrock", seed=0,
        model=ModelSpec("objective", "sum((1 - p)**2) + 100 * (q - sum(p**2))**2",
                        {"p": ParamInit("uniform", shape=(2,), low=-1.0, high=0.0), "q": ParamInit(value=1.5)}),
        optimizer=optimizer("rmsprop", lr=0.01, momentum=0.5),
        loop=LoopSpec(**dict(dict(steps=50, precision="float64"), **loop)))


def blobs(**loop):
    """Three classes (cross entropy, sum reduction), SGD with momentum, shuffled mini-batches."""
    return Scenario(
        title="blobs", seed=5, model=ModelSpec("layers", layers=[2, 4, 3], activation="relu"),
        data=DataSpec("blobs", n=30, noise=0.5), loss=LossSpec("cross_entropy", "sum"),
        optimizer=optimizer("sgd", lr=0.01, momentum=0.9, weight_decay=1e-4),
        loop=LoopSpec(**dict(dict(steps=30, precision="float64", batch_size=10, shuffle=True), **loop)))


FLOAT16 = dict(precision="float16", loss_scaling=True, scaler=dict(init_scale=2.0 ** 20, growth_interval=5))
TOGGLES = {
    "line": line(),
    "line-zero_grad-never": line(zero_grad="never"),
    "line-zero_grad-after_step-in-place": line(zero_grad="after_step", set_to_none=False),
    "line-minibatch": line(batch_size=10),                       # 2 batches per epoch, 4 left out
    "line-shuffle": line(batch_size=8, shuffle=True),
    "line-shuffle-full-batch": line(shuffle=True),
    "line-accumulate-divide": line(batch_size=8, accumulation_steps=4),
    "line-accumulate-no-divide": line(batch_size=24, accumulation_steps=3, divide_loss=False),
    "line-accumulate-shuffle": line(batch_size=12, accumulation_steps=3, shuffle=True),
    "mlp": mlp(),
    "mlp-accumulate-shuffle-after_step": mlp(batch_size=16, accumulation_steps=2, shuffle=True,
                                             zero_grad="after_step"),
    "objective": objective(),
    "objective-accumulate": objective(accumulation_steps=2, divide_loss=False),
    "blobs": blobs(),
    "line-clip": line(clip_grad_norm=0.5),
    "mlp-step-lr": mlp(scheduler=scheduler("step", step_size=7, gamma=0.5)),
    "mlp-cosine-before-step": mlp(scheduler=scheduler("cosine", "before_step", T_max=10)),
    "line-onecycle-clip": line(scheduler=scheduler("onecycle", max_lr=0.2), clip_grad_norm=1.0),
    "objective-multistep": objective(scheduler=scheduler("multistep", milestones=[5, 20], gamma=0.3)),
    "mlp-float16-scaler": mlp(**FLOAT16),
    "mlp-float16-clip-unscaled": mlp(**FLOAT16, clip_grad_norm=0.5),
    "mlp-float16-clip-scaled": mlp(**FLOAT16, clip_grad_norm=0.5, unscale_before_clip=False),
    "mlp-bfloat16-linear-lr": mlp(precision="bfloat16", scheduler=scheduler("linear", total_iters=10)),
}


def float64_copy(scenario):
    """The scenario in float64 (float16 and bfloat16 runs stay as they are), at most MAX_STEPS steps."""
    scenario = capped(scenario, MAX_STEPS)
    for loop in [scenario.loop] + [c.loop for c in scenario.comparisons]:
        if loop.precision not in ("float16", "bfloat16"):
            loop.precision = "float64"
    return scenario


def capped(scenario, steps=AS_WRITTEN_STEPS):
    scenario = copy.deepcopy(scenario)
    for loop in [scenario.loop] + [c.loop for c in scenario.comparisons]:
        mixed = loop.precision in ("float16", "bfloat16")
        loop.steps = min(loop.steps, MIXED_STEPS if mixed else steps)
    return scenario


def cases():
    out = {name: (capped(scenario), 0) for name, scenario in TOGGLES.items()}
    for path in bundled():
        as_written = capped(load(path))
        for variant in range(len(as_written.variants())):
            out[f"{path.stem}-{variant}"] = (as_written, variant)
            out[f"{path.stem}-{variant}-float64"] = (float64_copy(as_written), variant)
    return out


CASES = cases()
MIXED = {name for name, (s, v) in CASES.items() if s.variants()[v].loop.precision in ("float16", "bfloat16")}

DRIVER = textwrap.dedent("""
    import contextlib, io, json, runpy, sys, traceback
    import torch
    torch.set_num_threads(1)
    out = {}
    for path in sys.argv[2:]:
        torch.set_default_dtype(torch.float32)
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                namespace = runpy.run_path(path, run_name="__main__")
            params = [p.detach().double().flatten().tolist() for p in namespace["optimizer"].param_groups[0]["params"]]
            out[path] = {"stdout": buffer.getvalue(), "params": params}
        except BaseException:
            out[path] = {"error": traceback.format_exc()}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
""")


@pytest.fixture(scope="module")
def torch_runs(tmp_path_factory):
    """name -> {"stdout", "params"} (or {"error"}): every case's program under torch, one subprocess."""
    if not HAS_TORCH:
        pytest.skip("PyTorch is not installed")
    folder = tmp_path_factory.mktemp("programs")
    paths = {}
    for i, (name, (scenario, variant)) in enumerate(CASES.items()):
        paths[name] = folder / f"case{i}.py"
        paths[name].write_text(program(scenario, variant).source)
    results = folder / "results.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", DRIVER, str(results), *map(str, paths.values())],
                   check=True, env=env, timeout=600)
    data = json.loads(results.read_text())
    return {name: data[str(path)] for name, path in paths.items()}


def session_params(scenario, variant):
    history = Session(scenario, variant).run()
    assert history.diverged_at is None, history.message
    return history, [np.asarray(history.params[n][-1], dtype=np.float64).ravel() for n in history.param_names]


def tolerance(name):
    """float64: the Session's numbers to 1e-10 relative (BLAS may sum in another order). float32 (at
    most AS_WRITTEN_STEPS steps): the core rounds each op as torch's CPU kernels do, so only a
    matmul's summation order can move a last bit: 1e-6 (a few float32 ulps). Mixed precision (at most
    MIXED_STEPS steps): a float16 ulp in one gradient element, grown over 10 steps: 1e-4."""
    scenario, variant = CASES[name]
    precision = scenario.variants()[variant].loop.precision
    return {"float64": 1e-10, "float32": 1e-6, "float16": 1e-4, "bfloat16": 1e-4}[precision]


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_program_under_torch_ends_with_the_sessions_parameters(name, torch_runs):
    run = torch_runs[name]
    assert "error" not in run, run.get("error")
    history, expected = session_params(*CASES[name])
    rtol = tolerance(name)
    for param, got, want in zip(history.param_names, run["params"], expected):
        scale = max(float(np.max(np.abs(want))), 1e-12)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=param)
    printed = run["stdout"].splitlines()
    assert printed[0].startswith(("loss at the last step: ", "loss of the last micro-batch: "))
    if printed[0].startswith("loss at the last step: ") and name not in MIXED:
        assert float(printed[0].rsplit(" ", 1)[1]) == pytest.approx(history.loss[-1], rel=rtol)


def test_the_toggle_table_covers_every_branch():
    loops = [s.loop for s in TOGGLES.values()]
    assert {loop.zero_grad for loop in loops} == {"before_backward", "after_step", "never"}
    assert {loop.set_to_none for loop in loops} == {True, False}
    assert {(loop.accumulation_steps > 1, loop.divide_loss) for loop in loops} >= {(True, True), (True, False)}
    assert {loop.shuffle for loop in loops} == {True, False}
    assert {loop.precision for loop in loops} == {"float64", "float16", "bfloat16"}
    assert {loop.scheduler.placement for loop in loops if loop.scheduler} == {"after_step", "before_step"}
    assert {loop.unscale_before_clip for loop in loops if loop.clip_grad_norm and loop.loss_scaling} == {True, False}
    assert {s.model.kind for s in TOGGLES.values()} == {"expression", "layers", "objective"}


# -- the program's text ---------------------------------------------------------------------------

def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    return modules


def all_programs():
    return [pytest.param(s, v, id=name) for name, (s, v) in CASES.items() if not name.endswith("-float64")]


@pytest.mark.parametrize("scenario, variant", all_programs())
def test_program_is_plain_pytorch(scenario, variant):
    source = program(scenario, variant).source
    compile(source, "<program>", "exec")
    loop = scenario.variants()[variant].loop
    assert imported_modules(source) == ({"torch", "numpy"} if loop.shuffle and scenario.model.kind != "objective"
                                        else {"torch"})
    for word in ("gradviz.", "record(", "HEADER", "csv", "eval(", "exec(", "open(", "DTYPE"):
        assert word not in source, word
    assert not re.search(r"(?<![.\w])log\(", source)         # GradViz's CSV helper (torch.log is fine)
    assert "def " not in source          # no helpers: the loop is all there is


@pytest.mark.parametrize("scenario, variant", all_programs())
def test_phase_lines_point_at_the_phase(scenario, variant):
    script = program(scenario, variant)
    lines = script.source.splitlines()
    loop = scenario.variants()[variant].loop
    scaler = loop.loss_scaling and loop.precision == "float16"
    expected = {"zero_grad": "optimizer.zero_grad(", "zero_grad_after": "optimizer.zero_grad(",
                "backward": ".backward()", "loss": "loss = ",
                "step": "scaler.step(optimizer)" if scaler else "optimizer.step()",
                "forward": "loss = " if scenario.model.kind == "objective" else "pred = "}
    placements = {"before_backward": {"zero_grad"}, "after_step": {"zero_grad_after"}, "never": set()}
    assert set(script.lines) == {"forward", "loss", "backward", "step"} | placements[loop.zero_grad]
    for phase, number in script.lines.items():
        assert expected[phase] in lines[number - 1], (phase, lines[number - 1])
    order = [script.lines[p] for p in PHASES if p in script.lines]
    assert order == sorted(order)
    listing = script.listing
    assert "\n".join(line.text for line in listing) + "\n" == script.source
    assert {line.kind for line in listing} <= set(LINE_KINDS) - {"bookkeeping"}
    loop_lines = script.loop_source().splitlines()
    assert loop_lines[0] == f"for step in range({loop.steps}):"
    assert all(line.startswith("    ") for line in loop_lines[1:])
    setup = [line.code.split(" = ", 1)[0] for line in listing if line.kind == "setup"]
    assert setup == ([] if scenario.model.kind == "objective" else ["loss_fn"]) + ["optimizer"] + (
        ["scaler"] if scaler else []) + (["scheduler"] if loop.scheduler else [])


def test_the_tutorial_program_reads_like_the_tutorial():
    source = program(load(bundled()[0])).source
    assert textwrap.dedent("""
        loss_fn = torch.nn.MSELoss()
        optimizer = torch.optim.SGD([w, b], lr=0.1)

        for step in range(100):
            optimizer.zero_grad()
            pred = w * x + b
            loss = loss_fn(pred, y)
            loss.backward()
            optimizer.step()

        print("loss at the last step:", loss.item())
        print("w =", w)
        print("b =", b)
        """) in source
    assert source.startswith("# ") and "\nimport torch\n" in source


def test_clipping_scaling_and_schedulers_are_written_in_torchs_order():
    clip = program(TOGGLES["mlp-float16-clip-unscaled"]).loop_source()
    assert textwrap.indent(textwrap.dedent("""\
        scaler.scale(loss).backward()  # backward of loss * scale
        scaler.unscale_(optimizer)  # the true gradients, before clipping them
        total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        scaler.step(optimizer)"""), "    ") in clip
    scaled = program(TOGGLES["mlp-float16-clip-scaled"]).loop_source()
    assert "scaler.unscale_(optimizer)\n" not in scaled and "the limit is meaningless" in scaled
    assert "unscale_" not in program(TOGGLES["mlp-float16-scaler"]).source      # scaler.step() does it
    before = program(TOGGLES["mlp-cosine-before-step"])
    assert "scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)" in before.source
    body = before.loop_source().splitlines()
    assert body.index("    optimizer.step()") == body.index(
        "    scheduler.step()  # before optimizer.step(): the mistake torch warns about") + 1
    onecycle = program(TOGGLES["line-onecycle-clip"]).source
    assert "OneCycleLR(optimizer, max_lr=0.2, total_steps=40)" in onecycle
    assert "clip_grad_norm_([w, b], max_norm=1.0)" in onecycle
    assert "MultiStepLR(optimizer, milestones=[5, 20], gamma=0.3)" in program(TOGGLES["objective-multistep"]).source


def test_float32_data_is_written_short_and_exact():
    scenario = load(bundled()[2])                 # generated float32 data
    source = program(scenario).source
    session = Session(scenario)
    calls = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "tensor"]
    x, y = [np.array(ast.literal_eval(c.args[0])) for c in sorted(calls, key=lambda c: c.lineno)[:2]]
    np.testing.assert_array_equal(x.astype(np.float32), session.data.inputs["x"])
    np.testing.assert_array_equal(y.astype(np.float32), session.data.target)
    assert max(len(repr(v)) for v in x.tolist()) <= 16         # 0.37689346, not 0.37689346075057983



def test_short_forms_are_each_values_shortest_and_read_back_exactly():
    """``_short`` (vectorised in chunks) gives, value by value, what ``float(str(np.float32(v)))``
    gives where that reads back to the same float32, and the value itself elsewhere: every
    magnitude float32 has, subnormals, signed zeros, inf and nan, across chunk edges."""
    from gradviz.codegen_program import SHORT_CHUNK, _short
    rng = np.random.default_rng(3)
    n = 2 * SHORT_CHUNK + 17
    values = (rng.standard_normal(n) * 10.0 ** rng.uniform(-45, 38, n)).astype(np.float32)
    values[:9] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, 3.4028235e38, -1e-40, 1 / 3]
    want = values.astype(np.float64)
    for i, v in enumerate(values.tolist()):
        short = float(str(np.float32(v)))
        if np.float32(short) == np.float32(v):
            want[i] = short
    got = _short(values)
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
    np.testing.assert_array_equal(got[~np.isnan(values)].astype(np.float32), values[~np.isnan(values)])
    assert _short(values.reshape(1, n)).shape == (1, n)
    assert _short(np.arange(3)).dtype == np.arange(3).dtype           # other dtypes: unchanged

# -- under GradViz's script runner ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["01_tutorial_wx_b-0", "03_gradient_accumulation-0-float64", "07_mlp_two_moons-0",
                                  "line-shuffle", "mlp-step-lr", "mlp-float16-clip-unscaled"])
def test_program_on_the_script_runner_is_the_session(name):
    from gradviz.training.script import run_script
    scenario, variant = CASES[name]
    result = run_script(program(scenario, variant).source, "program.py")
    assert result.error is None, str(result.error)
    history, expected = session_params(scenario, variant)
    got = [np.asarray(result.history.params[n][-1], dtype=np.float64).ravel() for n in result.history.param_names]
    assert len(got) == len(expected)
    for param, a, b in zip(history.param_names, got, expected):
        np.testing.assert_array_equal(a, b, err_msg=param)      # the same core, the same ops: the same bits
    if scenario.variants()[variant].loop.accumulation_steps == 1:      # else backward() saw loss / n
        np.testing.assert_array_equal(result.history.loss, history.loss)
