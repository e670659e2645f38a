"""The bundled scenarios: they load, round-trip, run, and show what their descriptions promise.

The checks compare against analytic values or against another variant of the same scenario
(e.g. "4 micro-batches of 8 with the loss divided" == "one batch of 32"), not against numbers
copied from our own output.
"""
import ast
import math
import re
import textwrap

import numpy as np
import pytest

from gradviz.scenario import DEFAULT_SCENARIO, bundled, bundled_path, dumps, find_bundled, load, loads
from gradviz.scenario.bundled import bundled_scripts, find_bundled_script, lessons
from gradviz.scenario.saver import render
from gradviz.scenario.script_source import header
from gradviz.training.script import run_script

STEMS = ["01_tutorial_wx_b", "02_forgot_zero_grad", "03_gradient_accumulation", "04_rosenbrock_race",
         "05_ill_conditioned_bowl", "06_saddle_point", "07_mlp_two_moons", "08_tanh_neuron",
         "09_fp16_underflow", "10_adam_vs_adamw", "11_bfloat16_vs_float16", "12_clipping_scaled_gradients",
         "13_scheduler_before_step"]
SCRIPTS = ["01_tutorial_loop", "02_accumulation_dataloader", "03_linear_regression_module",
           "04_cross_entropy_momentum", "05_autocast_gradscaler", "06_manual_update", "07_scheduler_and_clipping"]


def test_the_bundled_scenarios_exist():
    assert [p.stem for p in bundled()] == STEMS
    assert DEFAULT_SCENARIO == STEMS[0]


# -- the bundled scripts (their runs under torch and the core: tests/scripts/test_differential.py) ---

def test_the_bundled_scripts_exist_and_are_listed_beside_the_scenarios():
    assert [p.stem for p in bundled_scripts()] == SCRIPTS
    assert not {p.stem for p in bundled()} & set(SCRIPTS)          # a name finds one lesson
    listed = lessons()
    assert [(lesson.kind, lesson.name) for lesson in listed] == (
        [("scenario", stem) for stem in STEMS] + [("script", stem) for stem in SCRIPTS])
    assert all(lesson.path.is_file() and lesson.title and "\n" not in lesson.title for lesson in listed)
    assert listed[0].title == load(bundled_path(STEMS[0])).title
    assert find_bundled_script("01_tutorial_loop.py") == find_bundled_script("01_tutorial_loop") == bundled_scripts()[0]
    assert find_bundled_script("01_tutorial_wx_b") is None and find_bundled("01_tutorial_loop") is None


@pytest.mark.parametrize("stem", SCRIPTS)
def test_each_script_has_a_lesson_in_its_header(stem):
    source = find_bundled_script(stem).read_text(encoding="utf-8")
    title, description = header(source)
    assert source.startswith("# ") and title == source.splitlines()[0][2:]
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", description.strip()) if x]
    assert 2 <= len(sentences) <= 6 and "Watch" in description, description
    assert len(source.splitlines()) <= 60                         # small: a lesson, not a project
    compile(source, stem, "exec")
    imports = {node.names[0].name.split(".")[0] if isinstance(node, ast.Import) else node.module.split(".")[0]
               for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.Import, ast.ImportFrom))}
    assert imports == {"torch"}, imports                            # ordinary PyTorch, nothing else


def test_the_tutorial_script_is_the_issues_loop_and_ends_at_the_textbook_values():
    source = find_bundled_script("01_tutorial_loop").read_text(encoding="utf-8")
    assert textwrap.dedent("""\
        for i in range(100):
            y_pred = w * x + b
            loss = loss_fn(y_pred, y_true)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        """) in source
    result = run_script(source, "01_tutorial_loop.py")
    assert result.error is None, str(result.error)
    assert "w =  tensor([1.8000], requires_grad=True)\n" in result.stdout
    assert result.iterations == 100 and result.history.params["w"][-1] == pytest.approx([1.8])


@pytest.mark.parametrize("stem", SCRIPTS)
def test_each_script_runs_on_the_core(stem):
    """(How long each takes is benchmarks/bench_scripts.py's business.)"""
    path = find_bundled_script(stem)
    result = run_script(path.read_text(encoding="utf-8"), str(path))
    assert result.error is None, str(result.error)
    assert result.history is not None and result.iterations >= 10


@pytest.mark.parametrize("stem", STEMS)
def test_loads_validates_and_round_trips(stem):
    path = bundled_path(stem)
    s = load(path)
    assert s.path == path and s.title
    assert loads(dumps(s)) == s
    assert render(s) == path.read_text(encoding="utf-8")     # saving unedited changes nothing
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", s.description.strip()) if x]
    assert 2 <= len(sentences) <= 4 and "\n" not in s.description, s.description


@pytest.fixture(scope="module")
def histories():
    from gradviz.training import session
    cache = {}

    def run(stem):
        if stem not in cache:
            s = load(bundled_path(stem))
            cache[stem] = {v.name: session.Session(s, i).run() for i, v in enumerate(s.variants())}
        return cache[stem]
    return run


@pytest.mark.parametrize("stem", STEMS)
def test_every_variant_runs_without_divergence(stem, histories):
    for name, h in histories(stem).items():
        s = load(bundled_path(stem))
        expected = next(v.loop.steps for v in s.variants() if v.name == name)
        assert h.diverged_at is None and h.message == "", (name, h.message)
        assert h.steps == expected and np.all(np.isfinite(h.loss)), name


def test_tutorial_ends_at_the_textbook_values(histories):
    (h,) = histories("01_tutorial_wx_b").values()
    # 2w + b = 4 reached along the gradient direction (x, 1) = (2, 1) from (1, 0): (1.8, 0.4)
    assert h.params["w"][-1] == pytest.approx(1.8, abs=1e-6)
    assert h.params["b"][-1] == pytest.approx(0.4, abs=1e-6)
    assert h.grads["w"][0] == pytest.approx(-8.0) and h.grads["b"][0] == pytest.approx(-4.0)


def test_forgetting_zero_grad_never_settles(histories):
    bug, correct = histories("02_forgot_zero_grad").values()
    assert correct.loss[-10:].max() < 1e-6
    assert bug.loss[-20:].max() > 2.0 and bug.loss[-20:].min() < 1.0     # still swinging at the end
    growth = np.abs(bug.grads["w"][:5])
    assert np.all(np.diff(growth) > 0), growth        # the stale .grad visibly grows at first
    # .grad is the running sum of every gradient so far
    x = 2.0
    residual = x * bug.params["w"][:-1] + bug.params["b"][:-1] - 4.0
    np.testing.assert_allclose(bug.grads["b"], np.cumsum(2 * residual), atol=1e-4)


def test_accumulation_with_divided_loss_equals_one_big_batch(histories):
    divided, one_batch, undivided = histories("03_gradient_accumulation").values()
    for name in ("w", "b"):
        np.testing.assert_allclose(divided.params[name], one_batch.params[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(undivided.grads[name][0], 4 * one_batch.grads[name][0], rtol=1e-5)
    assert np.any(np.diff(undivided.params["b"][:6]) < 0)     # overshoots and comes back
    assert np.all(np.diff(one_batch.params["b"][:6]) > 0)


def test_rosenbrock_adaptive_and_momentum_methods_beat_plain_sgd(histories):
    runs = histories("04_rosenbrock_race")
    sgd = list(runs.values())[0].loss[-1]
    for name in ("SGD + momentum 0.9", "SGD + Nesterov 0.9", "Adam", "RMSprop"):
        assert runs[name].loss[-1] < sgd, name


def test_momentum_wins_in_the_ill_conditioned_bowl(histories):
    sgd, momentum, small_lr = histories("05_ill_conditioned_bowl").values()
    assert momentum.loss[-1] < 1e-3 * sgd.loss[-1]
    assert np.any(np.sign(sgd.params["y"][1:6]) != np.sign(sgd.params["y"][:5]))   # zigzag in y
    assert abs(small_lr.params["x"][-1]) > abs(sgd.params["x"][-1])


def test_saddle_point_plateau_then_escape(histories):
    runs = histories("06_saddle_point")
    sgd = list(runs.values())[0]
    minimum = -0.5                                  # f(0, ±1) = -1 + 1/2
    assert sgd.loss[-1] == pytest.approx(minimum, abs=1e-4)
    assert abs(sgd.loss[40]) < 0.01                 # stuck near the saddle's value f(0, 0) = 0

    def escape(h):
        return int(np.argmax(h.loss < minimum / 2))
    assert escape(runs["Adam"]) < escape(runs["SGD + momentum 0.9"]) < escape(sgd)


def test_mlp_learns_two_moons(histories):
    (h,) = histories("07_mlp_two_moons").values()
    assert h.loss[0] == pytest.approx(math.log(2), abs=0.05) and h.loss[-1] < 0.05


def test_tanh_neuron_has_micrographs_gradients(histories):
    (h,) = histories("08_tanh_neuron").values()
    out = math.tanh(2 * -3 + 0 * 1 + 6.8813735870195432)
    upstream = 2 * (out - 1) * (1 - out ** 2)        # dloss/dn through mse and tanh
    assert out == pytest.approx(math.sqrt(0.5), abs=1e-4)
    assert h.grads["w1"][0] == pytest.approx(2 * upstream)
    assert h.grads["b"][0] == pytest.approx(upstream)
    assert np.all(h.grads["w2"] == 0) and np.all(h.params["w2"] == 1.0)


def test_float16_weight_gradient_underflows_without_loss_scaling(histories):
    plain, scaled, float32 = histories("09_fp16_underflow").values()
    assert np.all(plain.grads["0.weight"] == 0)
    assert np.all(plain.params["0.weight"] == plain.params["0.weight"][0])
    # with the scaler: at most the first step overflows (skipped, the scale backs off), then
    # the weight gets real gradients and learns about as the float32 run does
    assert not scaled.skipped[1:].any() and np.all(scaled.grads["0.weight"][1:] != 0)
    assert np.all(scaled.grad_scale[1:] == scaled.grad_scale[0] / (2 if scaled.skipped[0] else 1))
    moved = float32.params["0.weight"][-1] - float32.params["0.weight"][0]
    assert moved > 2
    assert abs(scaled.params["0.weight"][-1] - float32.params["0.weight"][-1]) < 0.2 * moved
    np.testing.assert_allclose(plain.params["0.bias"][-1], float32.params["0.bias"][-1], atol=1e-3)


def test_bfloat16_keeps_the_gradient_float16_loses_without_a_scaler(histories):
    float16, scaled, bfloat16 = histories("11_bfloat16_vs_float16").values()
    # float16 without a scaler: the weight's gradient underflows to 0, the weight is frozen
    assert np.all(float16.grads["0.weight"] == 0)
    assert np.all(float16.params["0.weight"] == float16.params["0.weight"][0])
    # bfloat16, no scaler: float32's exponent range, so the gradient survives every step and the weight moves
    assert not bfloat16.skipped.any() and np.all(bfloat16.grads["0.weight"] != 0)
    assert abs(bfloat16.params["0.weight"][-1] - bfloat16.params["0.weight"][0]) > 2
    # float16 needs the GradScaler for that; its 11 significant bits then fit better than bfloat16's 8
    assert np.all(scaled.grads["0.weight"][1:] != 0)
    assert bfloat16.loss[-50:].mean() > 10 * scaled.loss[-50:].mean()


def test_adam_l2_differs_from_adamw(histories):
    adam_l2, adamw, adam = histories("10_adam_vs_adamw").values()
    # Adam + L2 converges where grad + 0.1 * param = 0: a = 6 / 2.1, b = 0.06 / 0.12
    assert adam_l2.params["a"][-1] == pytest.approx(6 / 2.1, abs=0.01)
    assert adam_l2.params["b"][-1] == pytest.approx(0.5, abs=0.01)
    assert adam.params["a"][-1] == pytest.approx(3, abs=0.01)
    assert adam.params["b"][-1] == pytest.approx(3, abs=0.01)
    assert adamw.params["b"][-1] > 2.5 and abs(adamw.params["a"][-1] - adamw.params["b"][-1]) < 0.05


@pytest.fixture(scope="module")
def script_runs():
    cache = {}

    def run(stem):
        if stem not in cache:
            path = find_bundled_script(stem)
            cache[stem] = run_script(path.read_text(encoding="utf-8"), str(path))
        return cache[stem]
    return run


def test_accumulation_script_steps_every_second_batch_and_at_the_end_of_an_epoch(script_runs):
    h = script_runs("02_accumulation_dataloader").history
    assert h.steps == 8 * 3                      # 5 batches per epoch: steps after batches 2, 4 and 5
    backward_calls = np.sum(np.isfinite(h.micro_losses), axis=1)
    assert backward_calls.tolist() == [2, 2, 1] * 8


def test_gradscaler_script_skips_its_first_steps_and_halves_the_scale(script_runs):
    h = script_runs("05_autocast_gradscaler").history
    skipped = np.asarray(h.skipped, dtype=bool)
    first = int(np.argmin(skipped))              # the first step taken
    assert first >= 3 and not skipped[first:].any()
    np.testing.assert_array_equal(h.grad_scale[:first + 1], 2.0 ** 24 / 2.0 ** np.arange(first + 1))


def test_clipping_script_clips_early_and_not_late_while_the_lr_steps_down(script_runs):
    h = script_runs("07_scheduler_and_clipping").history
    assert h.clip_norm[0] > 1.0 and np.all(h.clip_norm[-10:] < 1.0)
    np.testing.assert_allclose(np.asarray(h.lr)[[0, 19, 20, 40]], [0.3, 0.3, 0.03, 0.003])
    assert np.all(h.grad_norm() <= 1.0 + 1e-5)   # what the optimizer saw: clipped to max_norm


def test_manual_update_script_moves_w_and_b_without_an_optimizer(script_runs):
    result = script_runs("06_manual_update")
    h = result.history
    assert result.iterations == 50 and h.param_names == ["w", "b"]
    np.testing.assert_allclose(h.params["w"][1] - h.params["w"][0], -0.02 * h.grads["w"][0], rtol=1e-6)
