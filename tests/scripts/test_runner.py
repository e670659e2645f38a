"""The script runner: a PyTorch script on the core gives torch's output, a History and Traces whose
replay lights the line that did each thing; failures are one line naming the script's line."""
import contextlib
import io
import pickle
import textwrap

import numpy as np
import pytest

import gradviz
from gradviz.training import SessionError
from gradviz.training.script import (
    TRACE_ITERATIONS,
    ScriptAbort,
    ScriptError,
    ScriptRun,
    TraceNotRecorded,
    run_script,
    script_scenario,
    untraced,
)
from gradviz.view.replay import Replay

TUTORIAL = """\
# Fit w*x + b
# One data point, plain SGD: watch w and b move.
import torch
w = torch.tensor([1.0], requires_grad=True); b = torch.tensor([0.0], requires_grad=True)
x = torch.tensor([2.0]); y_true = torch.tensor([4.0])
loss_fn = torch.nn.MSELoss(); optimizer = torch.optim.SGD([w, b], lr=0.1)
for i in range(100):
    y_pred = w * x + b
    loss = loss_fn(y_pred, y_true)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("w = ", w)
print("b = ", b, loss)
"""

MODULE = """\
import torch
from torch import nn
torch.manual_seed(0)
class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)
    def forward(self, x):
        return self.linear(x)
model = LinearRegression()
x = torch.arange(8, dtype=torch.float32).reshape(8, 1) / 4
y = 3 * x + 1
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
trajectory = []
for epoch in range(20):
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    trajectory.append([p.detach().clone() for p in model.parameters()])
    optimizer.step()
print(model.linear.weight, model.linear.bias)
"""

ACCUMULATION = """\
import torch
torch.manual_seed(1)
w = torch.randn(3, 1, requires_grad=True)
xs = [torch.randn(4, 3) for _ in range(6)]
ys = [x.sum(1, keepdim=True) for x in xs]
optimizer = torch.optim.Adam([w], lr=0.05)
accum_iter = 2
grads = []
for epoch in range(2):
    for batch_idx, (x, y) in enumerate(zip(xs, ys)):
        loss = torch.nn.functional.mse_loss(x @ w, y)
        loss = loss / accum_iter
        loss.backward()
        if ((batch_idx + 1) % accum_iter == 0) or (batch_idx + 1 == len(xs)):
            grads.append(w.grad.clone())
            optimizer.step()
            optimizer.zero_grad()
print(w)
"""

SCALER = """\
import torch
torch.manual_seed(0)
x = torch.randn(16, 4)
y = x.sum(dim=1, keepdim=True)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
loss_fn = torch.nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)
scales = []
for step in range(12):
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        loss = loss_fn(model(x), y)
    scales.append(scaler.get_scale())
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
print(f"{loss.item():.5f}", scaler.get_scale())
"""

MANUAL = """\
import torch
x = torch.tensor([1.0, 2.0, 3.0, 4.0])
y = torch.tensor([3.0, 5.0, 7.0, 9.0])
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)
lr = 0.02
for i in range(30):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad = None
    b.grad = None
print(w, b)
"""


def line_of(source: str, text: str) -> int:
    """The 1-based line of ``source`` holding ``text`` (exactly one)."""
    found = [i + 1 for i, line in enumerate(source.splitlines()) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def run_torch(source: str, path: str):
    """Run ``source`` with real PyTorch in this process: (printed text, its module namespace)."""
    pytest.importorskip("torch")
    namespace = {"__name__": "__main__", "__file__": path}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, path, "exec"), namespace)
    return out.getvalue(), namespace


@pytest.fixture(scope="module")
def tutorial():
    return run_script(TUTORIAL, "tutorial.py", trace_iterations=None)         # every iteration traced


def test_tutorial_prints_what_torch_prints(tutorial):
    printed, _ = run_torch(TUTORIAL, "tutorial.py")
    assert tutorial.error is None and tutorial.stdout == printed
    assert "w =  tensor([1.8000], requires_grad=True)" in tutorial.stdout


def test_tutorial_history(tutorial):
    h = tutorial.history
    assert tutorial.iterations == h.steps == 100 and h.param_names == ["w", "b"]
    assert tutorial.title == "Fit w*x + b" and tutorial.description.startswith("One data point")
    # by hand: loss = (w x + b - y)^2 = 4 at w=1, b=0; dL/dw = 2 (2 - 4) 2 = -8, dL/db = -4
    assert h.loss[0] == 4.0 and h.grads["w"][0].tolist() == [-8.0] and h.grads["b"][0].tolist() == [-4.0]
    assert h.params["w"][:2].ravel().tolist() == pytest.approx([1.0, 1.8])
    assert h.params["w"].shape == (101, 1) and h.lr.tolist() == [0.1] * 100
    assert h.accumulation_steps == 1 and not h.skipped.any() and h.clip_norm is None
    assert tutorial.optimizer.name == "SGD" and tutorial.optimizer.hyper["lr"] == 0.1


@pytest.mark.parametrize("iteration", [0, 1, 99])
def test_tutorial_replay_lights_the_line_of_each_phase(tutorial, iteration):
    expected = {"forward": line_of(TUTORIAL, "y_pred = w * x + b"), "loss": line_of(TUTORIAL, "loss = loss_fn"),
                "zero_grad": line_of(TUTORIAL, "optimizer.zero_grad()"),
                "backward": line_of(TUTORIAL, "loss.backward()"), "step": line_of(TUTORIAL, "optimizer.step()")}
    replay = Replay(tutorial.traces[iteration])
    phases = [name for _, name, _ in replay.phase_starts()]
    assert phases == ["forward", "loss", "zero_grad", "backward", "step"]
    for i in range(1, len(replay)):
        frame = replay.frame(i)
        assert frame.line == expected[frame.phase], (i, frame.phase, frame.description)
    trace = tutorial.traces[iteration]
    assert set(trace.param_nodes) == {"w", "b"} and set(trace.input_nodes) == {"x", "y_true"}
    assert trace.module_types == {"loss": "MSELoss"} and replay.node_name(trace.loss_node) == "MseLossBackward0"
    assert trace.params_before["w"] == pytest.approx(tutorial.history.params["w"][iteration])
    assert trace.params_after["w"] == pytest.approx(tutorial.history.params["w"][iteration + 1])


def test_module_class_names_parameters_and_matches_torch():
    result = run_script(MODULE, "lesson.py")
    printed, ns = run_torch(MODULE, "lesson.py")
    assert result.error is None and result.stdout == printed
    h = result.history
    assert h.param_names == ["linear.weight", "linear.bias"] and result.module_types == {"linear": "Linear"}
    for k, params in enumerate(ns["trajectory"]):
        for name, p in zip(h.param_names, params):
            # float32 updates: equal to within float32 rounding of a few steps' sums
            assert h.params[name][k] == pytest.approx(p.numpy(), rel=1e-4, abs=1e-6), (k, name)
    assert set(h.state_keys()) == {"momentum_buffer"}
    assert result.traces[3].module_types == {"linear": "Linear", "loss": "MSELoss"}


def test_accumulation_with_division():
    result = run_script(ACCUMULATION, "accumulate.py")
    printed, ns = run_torch(ACCUMULATION, "accumulate.py")
    assert result.error is None and result.stdout == printed
    h = result.history
    assert h.steps == len(ns["grads"]) == 6 and h.accumulation_steps == 2 and h.param_names == ["w"]
    for k, g in enumerate(ns["grads"]):
        assert h.grads["w"][k] == pytest.approx(g.numpy(), rel=1e-5)
    assert h.micro_losses.shape == (6, 2) and h.loss[0] == pytest.approx(h.micro_losses[0].mean())
    trace = result.traces[1]
    backward = [(mb, pos) for pos, phase, mb in Replay(trace).phase_starts() if phase == "backward"]
    assert [mb for mb, _ in backward] == [0, 1] and trace.accumulation_steps == 2
    starts = [phase for _, phase, _ in Replay(trace).phase_starts()]
    assert starts[-2:] == ["step", "zero_grad_after"]                 # zero_grad after step: this iteration's


def test_autocast_and_grad_scaler_match_torch():
    result = run_script(SCALER, "scaler.py")
    printed, ns = run_torch(SCALER, "scaler.py")
    assert result.error is None and result.stdout == printed and result.notes == []
    h = result.history
    assert h.grad_scale.tolist() == ns["scales"]
    assert h.skipped.tolist() == [b < a for a, b in zip(ns["scales"], ns["scales"][1:] + [ns["scaler"].get_scale()])]
    replay = Replay(result.traces[0])
    lit = {frame.phase: frame.line for frame in (replay.frame(i) for i in range(1, len(replay)))}
    assert lit["backward"] == line_of(SCALER, "scaler.scale(loss).backward()")
    assert lit["loss"] == line_of(SCALER, "loss = loss_fn(model(x), y)")


def test_manual_update():
    result = run_script(MANUAL, "manual.py")
    printed, ns = run_torch(MANUAL, "manual.py")
    assert result.error is None and result.stdout == printed
    h = result.history
    assert h.steps == 30 and h.param_names == ["w", "b"] and result.optimizer is None
    assert h.params["w"][30] == pytest.approx(ns["w"].item()) and h.loss[0] == pytest.approx(41.0)
    assert h.grads["w"][0] == pytest.approx(-35.0)                    # 2 mean((0 - y) x) = -70 / 2
    replay = Replay(result.traces[2])
    kinds = {type(f.event).__name__: f.line for f in (replay.frame(i) for i in range(1, len(replay)))}
    assert kinds["ManualUpdateEvent"] in (line_of(MANUAL, "w -= lr"), line_of(MANUAL, "b -= lr"))
    assert [p for _, p, _ in replay.phase_starts()] == ["forward", "backward", "step", "zero_grad_after"]


@pytest.mark.parametrize("source, line, message, kind", [
    ("import torch\nx = (1 +\n", 2, "SyntaxError: '(' was never closed", "syntax"),
    ("import torch\n\ndef f(a):\n    return a / 0\n\nf(1)\n", 4, "ZeroDivisionError: division by zero", "exception"),
    ("import torch\nw = torch.ones(2, 3)\nw @ torch.ones(2, 3)\n", 3, "RuntimeError: mat1 and mat2 shapes",
     "exception"),
    ("import torch\nnet = torch.nn.Sequential(\n    torch.nn.Conv2d(1, 2, 3))\n", 3,
     "torch.nn.Conv2d is not supported by GradViz's core (supported: ", "unsupported"),
    ("from torch.nn import Conv2d\n", 1, "torch.nn.Conv2d is not supported by GradViz's core (supported: ",
     "unsupported"),
    ("import torch.distributed\n", 1, "torch.distributed is not supported by GradViz's core", "unsupported"),
    ("import sys\nsys.exit(3)\n", 2, "SystemExit: 3", "exit"),
])
def test_failures_are_one_line_at_the_script_line(source, line, message, kind):
    result = run_script(source, "/some/where/lesson.py")
    error = result.error
    assert isinstance(error, ScriptError) and error.kind == kind
    assert error.line == line and error.message.startswith(message)
    assert str(error).startswith(f"lesson.py:{line}: {message}") and "\n" not in str(error)
    assert "gradviz" not in str(error).split("(supported")[0]


def test_a_clean_exit_and_an_abort():
    assert run_script("import sys\nprint('hi')\nsys.exit(0)\n", "a.py").error is None
    source = ("from gradviz.training.script import ScriptAbort\n"
              "raise ScriptAbort('the script ran longer than the time limit (1 s)')\n")
    error = run_script(source, "slow.py").error
    assert error.kind == "abort" and str(error) == "slow.py:2: the script ran longer than the time limit (1 s)"
    assert issubclass(ScriptAbort, Exception)


def test_progress_and_cancel():
    seen = []
    result = run_script(TUTORIAL, "tutorial.py", progress=lambda k: seen.append(k) or k < 3)
    assert seen == [1, 2, 3] and result.error.kind == "cancelled"
    assert str(result.error) == f"tutorial.py:{line_of(TUTORIAL, 'y_pred = w * x + b')}: cancelled"
    assert result.history.steps == 3


def test_trace_budget_and_trace_only(tutorial):
    assert run_script(TUTORIAL, "tutorial.py", trace_budget=1).traces == {}     # not even one fits
    # a trace of the tutorial holds 116-132 bytes of arrays (values, gradients, snapshots): 2 fit in 240
    light = run_script(TUTORIAL, "tutorial.py", trace_budget=240, trace_iterations=None)
    assert light.budget_hit
    assert not light.traced_all and sorted(light.traces) == [0, 1]
    assert light.history.loss.tolist() == tutorial.history.loss.tolist()
    assert any("traced iterations 0-1" in note for note in light.notes)
    run = ScriptRun(light)
    with pytest.raises(TraceNotRecorded) as info:
        run.trace_iteration(40)
    assert info.value.iteration == 40
    again = run_script(TUTORIAL, "tutorial.py", trace_only=40)
    assert again.error is None and sorted(again.traces) == [40] and again.history.steps == 41
    run.add_trace(again.traces[40])
    full, redone = tutorial.traces[40], run.trace_iteration(40)
    assert [type(e) for e in redone.events] == [type(e) for e in full.events]
    assert redone.event_lines == full.event_lines and redone.params_before == full.params_before
    with pytest.raises(IndexError):
        run.trace_iteration(100)


def test_recording_does_not_change_the_numbers(tutorial):
    plain = run_script(TUTORIAL, "tutorial.py", record=False)
    assert plain.stdout == tutorial.stdout and plain.history is None and plain.error is None


def test_output_streams_and_cap():
    chunks = []
    result = run_script("for i in range(100):\n    print(i)\n", "p.py", stdout=chunks.append, stdout_limit=50)
    assert "".join(chunks) == "".join(f"{i}\n" for i in range(100))
    assert result.stdout.startswith("0\n1\n") and "output cut" in result.stdout and len(result.stdout) < 120


def test_notes_for_cuda_and_warnings():
    source = "import torch, warnings\nx = torch.ones(2).cuda()\nwarnings.warn('careful')\nx.to('cuda')\n"
    result = run_script(source, "n.py")
    assert result.notes == ["this script asked for cuda: GradViz runs it on its CPU core",
                            "n.py:3: UserWarning: careful"]


def test_the_core_is_left_as_found():
    source = ("import torch\ntorch.no_grad().__enter__()\ntorch.set_printoptions(precision=2)\n"
              "torch.autocast('cpu').__enter__()\nraise ValueError('x')\n")
    result = run_script(source, "messy.py")
    assert result.error.message == "ValueError: x"
    assert gradviz.is_grad_enabled() and not gradviz.amp.is_autocast_enabled()
    assert gradviz.get_printoptions()["precision"] == 4
    assert "torch" not in __import__("sys").modules or not hasattr(__import__("sys").modules["torch"], "_gv_own")


def test_runs_are_reproducible_without_a_seed():
    source = "import torch, random\nprint(torch.randn(2), random.random())\n"
    assert run_script(source, "r.py").stdout == run_script(source, "r.py").stdout


def test_script_run_and_scenario_for_the_views(tutorial):
    run = ScriptRun(tutorial)
    assert run.history is tutorial.history and run.data is None and run.variant_index == 0
    assert run.variant_spec.name == "tutorial.py" and run.variant_spec.loop.steps == 100
    assert run.variant_spec.optimizer.kind == "sgd" and run.variant_spec.optimizer.hyper["lr"] == 0.1
    assert run.scalar_parameters() == ["w[0]", "b[0]"]
    assert run.trace_iteration(5) is tutorial.traces[5]
    with pytest.raises(SessionError, match="needs a TOML scenario"):
        run.landscape("w[0]", "b[0]")
    scenario = script_scenario("tutorial.py", TUTORIAL, tutorial)
    assert scenario.title == "Fit w*x + b" and scenario.script == TUTORIAL and scenario.loop.steps == 100


def test_results_survive_pickling(tutorial):
    back = pickle.loads(pickle.dumps(tutorial))
    assert back.history.loss.tolist() == tutorial.history.loss.tolist() and sorted(back.traces) == list(range(100))
    error = pickle.loads(pickle.dumps(run_script("1/0\n", "z.py").error))
    assert isinstance(error, ScriptError) and str(error) == "z.py:1: ZeroDivisionError: division by zero"


def test_a_model_inside_a_main_function_is_named():
    source = textwrap.dedent("""\
        import torch
        def main():
            net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
            opt = torch.optim.SGD(net.parameters(), lr=0.1)
            x, y = torch.ones(4, 2), torch.zeros(4, 1)
            for _ in range(3):
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(x), y).backward()
                opt.step()
        if __name__ == "__main__":
            main()
        """)
    result = run_script(source, "main.py")
    assert result.error is None
    assert result.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"] and result.iterations == 3
    assert result.traces[0].module_types["loss"] == "mse_loss" and set(result.traces[0].input_nodes) == {"x", "y"}
    assert np.isfinite(result.history.loss).all()


def test_trace_iterations_traces_the_first_ones_and_records_the_rest_light(tutorial):
    result = run_script(TUTORIAL, "tutorial.py", trace_iterations=3)
    assert sorted(result.traces) == [0, 1, 2] and not result.traced_all and not result.budget_hit
    assert untraced(result) == list(range(3, 100)) and untraced(result, have=[5]) == [3, 4] + list(range(6, 100))
    assert result.history.loss.tolist() == tutorial.history.loss.tolist()
    assert not any("trace budget" in note for note in result.notes)      # a policy, not a limit: no note
    assert result.trace_bytes > 0
    for k in range(3):
        assert result.traces[k].event_lines == tutorial.traces[k].event_lines
    default = run_script(TUTORIAL, "tutorial.py")
    assert sorted(default.traces) == list(range(TRACE_ITERATIONS))


@pytest.mark.parametrize("asked, expected, steps", [(range(40, 45), [40, 41, 42, 43, 44], 45),
                                                    ([7, 3, 9], [3, 7, 9], 10), (0, [0], 1)])
def test_trace_only_a_range_or_collection_records_those_and_stops_after_the_last(tutorial, asked, expected, steps):
    result = run_script(TUTORIAL, "tutorial.py", trace_only=asked)
    assert result.error is None and sorted(result.traces) == expected and result.history.steps == steps
    for k in expected:
        redone, full = result.traces[k], tutorial.traces[k]
        assert [type(e) for e in redone.events] == [type(e) for e in full.events]
        assert redone.event_lines == full.event_lines and redone.params_before == full.params_before


def test_trace_only_a_range_keeps_to_the_budget_and_stops_when_it_is_spent():
    result = run_script(TUTORIAL, "tutorial.py", trace_only=range(10, 60), trace_budget=240)   # ~130 bytes each
    assert sorted(result.traces) == [10, 11] and result.budget_hit and result.history.steps <= 13
    exact = run_script(TUTORIAL, "tutorial.py", trace_only=50, trace_budget=1)   # one iteration asked: always
    assert sorted(exact.traces) == [50]
