"""gradviz.training.session: the loop the toggles describe, its History, exact replays, landscapes.

References, not pasted numbers: gradients are checked against the closed-form gradient of the
line fit, accumulation against the big batch it stands for, traces against the History they
replay, landscapes against the training loop's own loss (and plain numpy formulas).
"""
import csv
import json
import math

import numpy as np
import pytest

from gradviz import trace
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
from gradviz.training.engine import BatchOrder, batch_order
from gradviz.training.session import Session, SessionError, run_all

# -- scenarios, built from the schema directly -----------------------------------------------------
LINE_X = np.linspace(-1.0, 1.0, 32)
LINE_Y = 1.8 * LINE_X + 0.4 + 0.1 * np.sin(7 * LINE_X)     # not exactly on the line


def optimizer(kind="sgd", **hyper):
    return OptimizerSpec(kind, dict(OPTIMIZER_DEFAULTS[kind], **hyper))


def line(opt=None, seed=0, w=0.0, b=0.0, **loop):
    """w * x + b fitted to 32 points by MSE (float64 unless the loop says otherwise)."""
    loop = dict(dict(steps=40, precision="float64"), **loop)
    return Scenario("line", seed=seed,
                    model=ModelSpec("expression", "w * x + b", {"w": ParamInit(value=w), "b": ParamInit(value=b)}),
                    data=DataSpec(x=LINE_X.tolist(), y=LINE_Y.tolist()), loss=LossSpec("mse"),
                    optimizer=opt or optimizer(lr=0.1), loop=LoopSpec(**loop))


def tanh_expr(**loop):
    """A two-input expression with random inits and generated data."""
    loop = dict(dict(steps=30, precision="float64"), **loop)
    params = {"w1": ParamInit("normal", std=0.5), "w2": ParamInit("uniform", low=-1, high=1), "b": ParamInit()}
    return Scenario("tanh", seed=5, model=ModelSpec("expression", "tanh(x1 * w1 + x2 * w2 + b)", params),
                    data=DataSpec(kind="xor", n=64, noise=0.2), loss=LossSpec("mse"),
                    optimizer=optimizer("sgd", lr=0.2, momentum=0.9), loop=LoopSpec(**loop))


def mlp(opt=None, loss="bce_with_logits", layers=(2, 8, 1), activation="tanh", data="moons", **loop):
    loop = dict(dict(steps=30, precision="float64"), **loop)
    return Scenario("mlp", seed=3, model=ModelSpec("layers", layers=list(layers), activation=activation),
                    data=DataSpec(kind=data, n=64, noise=0.1), loss=LossSpec(loss),
                    optimizer=opt or optimizer("adam", lr=0.05), loop=LoopSpec(**loop))


def rosenbrock(opt=None, **loop):
    loop = dict(dict(steps=50, precision="float64"), **loop)
    return Scenario("rosenbrock", model=ModelSpec("objective", "(1 - a)**2 + 100 * (b - a**2)**2",
                                                  {"a": ParamInit(value=-1.5), "b": ParamInit(value=2.0)}),
                    optimizer=opt or optimizer("adam", lr=0.05), loop=LoopSpec(**loop))


SCENARIOS = {
    "line": line(),
    "line-shuffled": line(batch_size=8, shuffle=True),
    "tanh-expression": tanh_expr(batch_size=16, shuffle=True),
    "mlp-adam": mlp(),
    "mlp-cross-entropy": mlp(optimizer("sgd", lr=0.1, momentum=0.9), loss="cross_entropy", layers=(2, 6, 3),
                             activation="relu", data="blobs", batch_size=32, shuffle=True),
    "rosenbrock": rosenbrock(),
    "float32": line(precision="float32"),
}


def assert_same_history(a, b):
    assert (a.steps, a.diverged_at, a.message) == (b.steps, b.diverged_at, b.message)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.micro_losses, b.micro_losses)
    for name in a.param_names:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        np.testing.assert_array_equal(a.grads[name], b.grads[name])
        assert a.state[name].keys() == b.state[name].keys()
        for key in a.state[name]:
            np.testing.assert_array_equal(a.state[name][key], b.state[name][key])
    np.testing.assert_array_equal(a.grad_scale, b.grad_scale)
    np.testing.assert_array_equal(a.skipped, b.skipped)


def line_grad(w, b):
    """d/dw, d/db of mean((w x + b - y)^2) on the whole line data set."""
    r = w * LINE_X + b - LINE_Y
    return np.mean(2 * r * LINE_X), np.mean(2 * r)


# -- the tutorial ---------------------------------------------------------------------------------------
def tutorial():
    """The bundled tutorial if the loader is there, else the same scenario written inline."""
    try:
        from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load
        return load(bundled_path(DEFAULT_SCENARIO))
    except (ImportError, FileNotFoundError):
        return Scenario("tutorial", model=ModelSpec("expression", "w * x + b",
                                                    {"w": ParamInit(value=0.0), "b": ParamInit(value=0.0)}),
                        data=DataSpec(x=[-1.0, 1.0], y=[-1.4, 2.2]), loss=LossSpec("mse"),
                        optimizer=optimizer(lr=0.2), loop=LoopSpec(steps=3000))


def test_tutorial_ends_on_the_line():
    h = Session(tutorial()).run()
    assert h.diverged_at is None and h.message == ""
    assert h.params["w"].dtype == np.float32
    assert h.params["w"][-1] == np.float32(1.8) and h.params["b"][-1] == np.float32(0.4)   # 1.7999999523, 0.4000000060


# -- the loop --------------------------------------------------------------------------------------------
def test_history_shapes_and_first_row():
    s = Session(mlp(steps=7, accumulation_steps=2))
    h = s.run()
    assert s.param_names == h.param_names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert h.steps == 7 and h.loss.shape == (7,) and h.micro_losses.shape == (7, 2)
    assert h.params["0.weight"].shape == (8, 8, 2) and h.grads["0.weight"].shape == (7, 8, 2)
    assert set(h.state["0.weight"]) == {"step", "exp_avg", "exp_avg_sq"}
    np.testing.assert_array_equal(h.state["0.weight"]["step"], np.arange(1, 8))
    np.testing.assert_array_equal(h.loss, h.micro_losses.mean(axis=1))
    np.testing.assert_array_equal(h.grad_scale, 1.0)
    assert not h.skipped.any()


def test_grads_are_the_true_gradient_at_each_step():
    h = Session(line(steps=10)).run()
    for k in range(10):
        np.testing.assert_allclose([h.grads["w"][k], h.grads["b"][k]],
                                   line_grad(h.params["w"][k], h.params["b"][k]), rtol=1e-12)


def test_forgotten_zero_grad_accumulates_every_gradient():
    h = Session(line(optimizer(lr=0.01), zero_grad="never", steps=12)).run()
    total = np.zeros(2)
    for k in range(12):
        total += line_grad(h.params["w"][k], h.params["b"][k])
        np.testing.assert_allclose([h.grads["w"][k], h.grads["b"][k]], total, rtol=1e-10)
    assert np.all(np.diff(np.abs(h.grads["w"])) > 0)     # the .grad keeps growing


@pytest.mark.parametrize("zero_grad", ["before_backward", "after_step"])
def test_zero_grad_placement_gives_the_same_run(zero_grad):
    assert_same_history(Session(line(zero_grad=zero_grad)).run(), Session(line()).run())


@pytest.mark.parametrize("scenario", [
    pytest.param(lambda **kw: line(optimizer("sgd", lr=0.2, momentum=0.9), **kw), id="line-sgd-momentum"),
    pytest.param(lambda **kw: mlp(**kw), id="mlp-adam"),
])
def test_accumulation_with_divide_loss_equals_the_big_batch(scenario):
    big = Session(scenario(batch_size=32, shuffle=True, steps=20)).run()
    acc = Session(scenario(batch_size=32, shuffle=True, steps=20, accumulation_steps=4)).run()
    np.testing.assert_allclose(acc.loss, big.loss, rtol=1e-12)
    for name in big.param_names:
        np.testing.assert_allclose(acc.params[name], big.params[name], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(acc.grads[name], big.grads[name], rtol=1e-12, atol=1e-12)


def test_accumulation_without_divide_loss_gives_4x_the_gradient():
    plain = Session(line(steps=5)).run()
    summed = Session(line(steps=5, accumulation_steps=4, divide_loss=False)).run()
    for k in range(5):   # at every step: 4x the mean-batch gradient at that step's parameters
        np.testing.assert_allclose([summed.grads["w"][k], summed.grads["b"][k]],
                                   4 * np.array(line_grad(summed.params["w"][k], summed.params["b"][k])), rtol=1e-12)
    np.testing.assert_allclose(summed.grads["w"][0], 4 * plain.grads["w"][0], rtol=1e-12)


@pytest.mark.parametrize("zero_grad", ["before_backward", "after_step"])
def test_set_to_none_changes_what_grad_holds_not_the_run(zero_grad):
    """In this loop every parameter gets a gradient every step, so None and zeros train alike; the
    difference is what ``.grad`` holds in between, which the trace shows."""
    s_none = Session(line(optimizer("sgd", lr=0.1, momentum=0.9), zero_grad=zero_grad, set_to_none=True))
    s_zero = Session(line(optimizer("sgd", lr=0.1, momentum=0.9), zero_grad=zero_grad, set_to_none=False))
    assert_same_history(s_none.run(), s_zero.run())
    clears = [[e for e in s.trace_iteration(3).events if isinstance(e, trace.ZeroGradEvent)] for s in (s_none, s_zero)]
    assert [e.set_to_none for e in clears[0]] == [True] and [e.set_to_none for e in clears[1]] == [False]
    if zero_grad == "after_step":
        assert s_none.trace_iteration(3).grads_before["w"] is None
        np.testing.assert_array_equal(s_zero.trace_iteration(3).grads_before["w"], 0.0)


def test_unused_parameter_never_gets_a_gradient_or_state():
    sc = line(optimizer("adam", lr=0.1))
    sc.model.parameters["c"] = ParamInit(value=3.0)
    h = Session(sc).run()
    assert np.isnan(h.grads["c"]).all() and h.state["c"] == {}
    np.testing.assert_array_equal(h.params["c"], 3.0)
    assert h.diverged_at is None


def test_batches_follow_batch_order():
    for shuffle in (False, True):
        gen, mirror = batch_order(10, 3, shuffle, 7), BatchOrder(10, 3, shuffle, 7)
        saved = None
        for k in range(12):
            if k == 5:
                saved = mirror.get_state()
            position, idx = mirror.next()
            expected = next(gen)
            np.testing.assert_array_equal(expected, idx if shuffle else np.arange(position * 3, position * 3 + 3))
        mirror.set_state(saved)
        replay = [mirror.next() for _ in range(7)]
        gen = batch_order(10, 3, shuffle, 7)
        expected = [next(gen) for _ in range(12)][5:]
        for (position, idx), e in zip(replay, expected):
            np.testing.assert_array_equal(e, idx if shuffle else np.arange(position * 3, position * 3 + 3))


def test_shuffled_micro_batches_use_the_contract_indices():
    """Step k's loss is the mean of its micro-batches' losses on batch_order's rows."""
    h = Session(line(batch_size=8, shuffle=True, accumulation_steps=2, steps=9)).run()
    gen = batch_order(32, 8, True, 0)
    for k in range(9):
        idx = next(gen)
        w, b = h.params["w"][k], h.params["b"][k]
        for j in range(2):
            rows = idx[j * 4:(j + 1) * 4]
            np.testing.assert_allclose(h.micro_losses[k, j], np.mean((w * LINE_X[rows] + b - LINE_Y[rows]) ** 2),
                                       rtol=1e-12)


# -- divergence, errors, determinism -----------------------------------------------------------------
@pytest.mark.parametrize("scenario", [
    pytest.param(line(optimizer(lr=50.0), steps=500), id="line-huge-lr"),
    pytest.param(rosenbrock(optimizer(lr=0.01), steps=500), id="rosenbrock-sgd"),
    pytest.param(mlp(optimizer("sgd", lr=1e4), loss="mse", steps=500), id="mlp-mse-huge-lr"),
])
def test_divergence_is_recorded_not_raised(scenario):
    h = Session(scenario).run()
    d = h.diverged_at
    assert d is not None and h.steps == d + 1
    assert h.message.startswith(f"diverged at step {d}: ") and h.message.endswith(("is inf", "is nan"))
    assert "\n" not in h.message
    finite = np.isfinite(h.loss[:d]).all() and all(np.isfinite(h.params[n][:d + 1]).all() for n in h.param_names)
    bad = (not np.isfinite(h.loss[d])) or any(not np.isfinite(h.params[n][d + 1]).all() for n in h.param_names)
    assert finite and bad


def test_progress_can_cancel():
    calls = []
    h = Session(line(steps=1000)).run(progress=lambda done, total: calls.append((done, total)) or done < 300)
    assert calls[0][1] == 1000 and h.steps == calls[-1][0] < 1000 and h.diverged_at is None
    assert h.message.startswith("cancelled")


@pytest.mark.parametrize("change, words", [
    (lambda s: setattr(s.model, "expression", "w * z + b"), "unknown name 'z'"),
    (lambda s: setattr(s.model, "expression", "w * x +"), "model.expression"),
    (lambda s: setattr(s.model, "expression", "2 * x"), "none of the parameters"),
    (lambda s: setattr(s.loop, "batch_size", 100), "batch_size"),
    (lambda s: setattr(s.loop, "accumulation_steps", 64), "micro-batches"),
    (lambda s: setattr(s.data, "y", [1.0, 2.0]), "rows"),
    (lambda s: setattr(s.data, "kind", "none"), "needs data"),
    (lambda s: s.model.parameters.__setitem__("w", ParamInit(value=[1.0, 2.0])), "cannot run"),
    (lambda s: setattr(s.optimizer, "hyper", dict(lr=-1.0)), "Invalid learning rate"),
])
def test_bad_scenarios_raise_one_line_session_errors(change, words):
    sc = line()
    change(sc)
    with pytest.raises(SessionError) as info:
        Session(sc)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_layers_shape_mismatch_is_a_session_error():
    with pytest.raises(SessionError, match="3 input features but the data has 2"):
        Session(mlp(layers=(3, 4, 1)))
    with pytest.raises(SessionError, match="variant 5"):
        Session(mlp(), variant=5)


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_file_same_numbers(name):
    assert_same_history(Session(SCENARIOS[name]).run(), Session(SCENARIOS[name]).run())


@pytest.mark.parametrize("name", ["line-shuffled", "mlp-cross-entropy", "rosenbrock"])
def test_run_chunked_equals_run(name):
    s = Session(SCENARIOS[name])
    seen = list(s.run_chunked(chunk=7))
    steps = SCENARIOS[name].loop.steps
    assert seen[-1] == (steps, steps)
    assert [d for d, _ in seen] == sorted({min(steps, c) for c in range(7, steps + 7, 7)})
    assert_same_history(s.history, Session(SCENARIOS[name]).run())


def test_run_restarts_from_the_initial_state():
    s = Session(SCENARIOS["mlp-adam"])
    first = s.run()
    s.trace_iteration(11)
    assert_same_history(s.run(), first)


def test_comparison_variants():
    sc = line()
    sc.comparisons = [Variant("adam", optimizer("adam", lr=0.1), LoopSpec(steps=25, precision="float64")),
                      Variant("acc", optimizer(lr=0.1), LoopSpec(steps=40, precision="float64", accumulation_steps=4))]
    histories = run_all(sc)
    assert [h.variant for h in histories] == ["SGD(lr=0.1)", "adam", "acc"]
    assert [h.steps for h in histories] == [40, 25, 40]
    assert set(histories[1].state["w"]) == {"step", "exp_avg", "exp_avg_sq"}
    assert_same_history(histories[1], Session(sc, 1).run())
    np.testing.assert_allclose(histories[2].params["w"], histories[0].params["w"], rtol=1e-12)


# -- trace_iteration: an exact replay --------------------------------------------------------------------
TRACE_CASES = {
    "before_backward": line(optimizer("sgd", lr=0.1, momentum=0.9), steps=130),
    "after_step": line(optimizer("adam", lr=0.1), zero_grad="after_step", set_to_none=False, steps=130),
    "never": line(optimizer(lr=0.002), zero_grad="never", steps=130),
    "accumulation-4-shuffled": line(optimizer("rmsprop", lr=0.01), batch_size=16, shuffle=True,
                                    accumulation_steps=4, steps=130),
    "mlp-accumulation-2": mlp(batch_size=32, shuffle=True, accumulation_steps=2, steps=130),
    "float32-adagrad": line(optimizer("adagrad", lr=0.3), precision="float32", steps=130),
}


def expected_phases(loop, k):
    zero = ["zero_grad"] if loop.zero_grad == "before_backward" else []
    micro = ["forward", "loss", "backward"] * loop.accumulation_steps
    after = ["zero_grad_after"] if loop.zero_grad == "after_step" else []
    return zero + micro + ["step"] + after


@pytest.mark.parametrize("name", TRACE_CASES)
def test_trace_replays_the_recorded_step_exactly(name):
    sc = TRACE_CASES[name]
    s = Session(sc)
    h = s.run()
    assert h.diverged_at is None
    for k in (0, 1, 2, 7, 64, 66, 129):
        t = s.trace_iteration(k)
        assert t.iteration == k and t.accumulation_steps == sc.loop.accumulation_steps
        phases = [e for e in t.events if isinstance(e, trace.PhaseEvent)]
        assert [e.phase for e in phases] == expected_phases(sc.loop, k)
        assert {e.iteration for e in phases} == {k}
        for name_ in h.param_names:
            np.testing.assert_array_equal(t.params_before[name_], h.params[name_][k])
            np.testing.assert_array_equal(t.params_after[name_], h.params[name_][k + 1])
        (step,) = [e for e in t.events if isinstance(e, trace.StepEvent)]
        for update in step.updates:
            name_ = t.nodes[update.node].label
            assert t.param_nodes[name_] == update.node
            np.testing.assert_array_equal(update.grad, h.grads[name_][k])
            np.testing.assert_array_equal(update.after, h.params[name_][k + 1])
            for key, value in update.state_after.items():
                np.testing.assert_array_equal(value, h.state[name_][key][k])
        loss_value = next(e.value for e in t.events if isinstance(e, trace.ForwardEvent) and e.node == t.loss_node)
        divided = sc.loop.accumulation_steps if sc.loop.accumulation_steps > 1 and sc.loop.divide_loss else 1
        np.testing.assert_allclose(loss_value * divided, h.micro_losses[k, -1], rtol=1e-6)


def test_trace_labels_parameters_inputs_and_target():
    s = Session(tanh_expr(accumulation_steps=2, batch_size=16))
    t = s.trace_iteration(0)                              # before run(): replays from the initial state
    labels = {info.label for info in t.nodes.values()}
    assert {"w1", "w2", "b", "x1", "x2", "y"} <= labels
    assert {n: t.nodes[i].label for n, i in t.param_nodes.items()} == {"w1": "w1", "w2": "w2", "b": "b"}
    assert len(t.input_nodes["x1"]) == 2 and len(t.input_nodes["y"]) == 2   # one per micro-batch
    assert t.grads_before == {"w1": None, "w2": None, "b": None}
    assert all(t.nodes[i].kind == "param" for i in t.param_nodes.values())


def test_trace_of_a_layers_model_tags_modules():
    s = Session(mlp(steps=3))
    s.run()
    t = s.trace_iteration(2)
    assert {n: t.nodes[i].label for n, i in t.param_nodes.items()} == {n: n for n in s.param_names}
    modules = {info.module for info in t.nodes.values() if info.kind == "op"}
    assert {"0", "1", "2"} <= modules


def test_trace_range_is_checked():
    s = Session(line(optimizer(lr=50.0), steps=500))
    h = s.run()
    s.trace_iteration(h.diverged_at)
    with pytest.raises(IndexError):
        s.trace_iteration(h.diverged_at + 1)
    with pytest.raises(IndexError):
        s.trace_iteration(-1)


# -- float16 and the GradScaler ---------------------------------------------------------------------------
def test_float16_with_scaler_records_scale_and_replays_exactly():
    sc = mlp(steps=40, precision="float16", loss_scaling=True)
    sc.loop.scaler = dict(sc.loop.scaler, growth_interval=10)
    s = Session(sc)
    h = s.run()
    assert h.params["0.weight"].dtype == np.float32 and h.diverged_at is None
    assert h.grad_scale[0] == 2.0 ** 16 and h.grad_scale[10] == 2.0 ** 17 and h.grad_scale[20] == 2.0 ** 18
    for k in (0, 9, 10, 39):
        t = s.trace_iteration(k)
        for name in h.param_names:
            np.testing.assert_array_equal(t.params_after[name], h.params[name][k + 1])
        assert any(info.op == "to" for info in t.nodes.values())             # autocast's float16 copies
        assert any(isinstance(e, trace.ScalerEvent) for e in t.events)


def test_float16_overflowing_scale_skips_steps_without_diverging():
    sc = mlp(optimizer("sgd", lr=0.1), loss="mse", steps=30, precision="float16", loss_scaling=True)
    sc.loop.scaler = dict(sc.loop.scaler, init_scale=2.0 ** 40)
    h = Session(sc).run()
    assert h.diverged_at is None and h.skipped[0]
    first = int(np.argmin(h.skipped))                                         # the first step taken
    assert h.skipped[:first].all() and not h.skipped[first:].any()
    np.testing.assert_array_equal(h.grad_scale[:first + 1], 2.0 ** 40 * 0.5 ** np.arange(first + 1))
    for name in h.param_names:
        np.testing.assert_array_equal(h.params[name][first], h.params[name][0])   # skipped steps move nothing
        assert not np.array_equal(h.params[name][first + 1], h.params[name][0])


def test_float16_without_scaler_runs_the_forward_in_float16():
    h32 = Session(mlp(steps=5, precision="float32")).run()
    h16 = Session(mlp(steps=5, precision="float16")).run()
    assert (h16.grad_scale == 1.0).all()
    assert h16.loss[0] != h32.loss[0] and abs(h16.loss[0] - h32.loss[0]) < 1e-2


# -- landscape --------------------------------------------------------------------------------------------
def test_landscape_matches_the_training_loss():
    s = Session(line(steps=30))
    s.run()
    land = s.landscape("w", "b", n=7, x_range=(-1.0, 3.0), y_range=(-2.0, 2.0))
    assert land.z.shape == (7, 7) and (land.p1, land.p2) == ("w", "b")
    np.testing.assert_allclose(land.xs, np.linspace(-1, 3, 7))
    for i, j in [(0, 0), (2, 5), (6, 3)]:
        h = Session(line(w=land.xs[j], b=land.ys[i], steps=1)).run()
        np.testing.assert_allclose(land.z[i, j], h.loss[0], rtol=1e-12)


def test_landscape_default_range_covers_the_trajectory():
    s = Session(line(steps=60))
    h = s.run()
    land = s.landscape("w", "b", n=5)
    for axis, name in ((land.xs, "w"), (land.ys, "b")):
        assert axis[0] <= min(h.params[name].min(), -1.0) and axis[-1] >= max(h.params[name].max(), 1.0)


def rosenbrock_numpy(a, b):
    return (1 - a) ** 2 + 100 * (b - a ** 2) ** 2


def test_landscape_of_an_objective():
    s = Session(rosenbrock())
    land = s.landscape("a", "b", n=100, x_range=(-2, 2), y_range=(-1, 3))
    a, b = np.meshgrid(land.xs, land.ys)
    np.testing.assert_allclose(land.z, rosenbrock_numpy(a, b), rtol=1e-12)


def test_landscape_over_elements_of_a_vector_parameter():
    sc = Scenario("bowl", seed=1, model=ModelSpec("objective", "sum(v * v) + c * sum(v)",
                                                  {"v": ParamInit("normal", shape=(3,)), "c": ParamInit(value=0.5)}))
    s = Session(sc)
    assert s.scalar_parameters() == ["v[0]", "v[1]", "v[2]", "c"]
    v0 = s.history.params["v"][0].astype(np.float64)      # float32 initial values, float64 grid
    land = s.landscape("v[1]", "c", n=9, x_range=(-1, 1), y_range=(0, 2))
    for i, j in [(0, 0), (4, 7), (8, 8)]:
        v = v0.copy()
        v[1] = land.xs[j]
        np.testing.assert_allclose(land.z[i, j], np.sum(v * v) + land.ys[i] * np.sum(v), rtol=1e-12)


def test_landscape_falls_back_when_the_expression_does_not_vectorise():
    sc = Scenario("dot", model=ModelSpec("objective", "v @ v + w", {"v": ParamInit(value=[1.0, 2.0]),
                                                                    "w": ParamInit(value=0.0)}))
    land = Session(sc).landscape("v[0]", "w", n=4, x_range=(0, 3), y_range=(0, 1))
    a, w = np.meshgrid(land.xs, land.ys)
    np.testing.assert_allclose(land.z, a * a + 4 + w, rtol=1e-12)


class Stop(Exception):
    pass


@pytest.mark.parametrize("vectorises", [True, False])
def test_landscape_reports_progress_and_stops_when_progress_raises(vectorises):
    """``progress(done, total)`` after each block (or every 64 points on the point-by-point path),
    up to ``total``; an exception it raises stops the computation and reaches the caller (a cancelled
    job), even on the paths that otherwise catch errors to fall back."""
    if vectorises:
        s, p1, p2 = Session(line(steps=3)), "w", "b"
    else:
        s, p1, p2 = Session(Scenario("dot", model=ModelSpec("objective", "v @ v + w", {
            "v": ParamInit(value=[1.0, 2.0]), "w": ParamInit(value=0.0)}))), "v[0]", "w"
    seen = []
    land = s.landscape(p1, p2, n=20, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (400, 400) and all(t == 400 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    def stop(done, total):
        raise Stop()
    with pytest.raises(Stop):
        s.landscape(p1, p2, n=20, progress=stop)
    np.testing.assert_array_equal(s.landscape(p1, p2, n=20).z, land.z)     # nothing left half-done


def mlp_bce_numpy(x, y, w1, b1, w2, b2):
    logits = np.tanh(x @ w1.T + b1) @ w2.T + b2
    return np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))


@pytest.mark.parametrize("p1, p2", [("0.weight[3,1]", "2.weight[0,5]"), ("0.bias[2]", "0.weight[2,0]"),
                                    ("2.bias[0]", "0.bias[7]")])
def test_landscape_of_a_layers_model(p1, p2):
    s = Session(mlp(steps=10))
    s.run()
    land = s.landscape(p1, p2, n=12)
    from gradviz.scenario.datasets import make_dataset
    x, y = make_dataset("moons", 64, 0.1, 3)
    init = {n: s.history.params[n][0].copy() for n in s.param_names}
    for i, j in [(0, 0), (5, 11), (11, 4)]:
        values = {n: v.copy() for n, v in init.items()}
        for text, value in ((p1, land.xs[j]), (p2, land.ys[i])):
            name, index = text.split("[")
            values[name][tuple(int(c) for c in index.rstrip("]").split(","))] = value
        expected = mlp_bce_numpy(x, y, values["0.weight"], values["0.bias"], values["2.weight"], values["2.bias"])
        np.testing.assert_allclose(land.z[i, j], expected, rtol=1e-5)      # float32 grid


def test_landscape_of_cross_entropy_layers():
    s = Session(SCENARIOS["mlp-cross-entropy"])
    land = s.landscape("2.weight[1,3]", "2.bias[2]", n=5)
    assert land.z.shape == (5, 5) and np.isfinite(land.z).all()


def test_scalar_parameters_and_bad_names():
    s = Session(mlp(layers=(2, 3, 1)))
    names = s.scalar_parameters()
    assert names[:3] == ["0.weight[0,0]", "0.weight[0,1]", "0.weight[1,0]"] and names[-1] == "2.bias[0]"
    assert len(names) == 2 * 3 + 3 + 3 + 1
    for bad in ("0.weight", "0.weight[3,0]", "nope", "0.bias[0,0]"):
        with pytest.raises(SessionError):
            s.landscape(bad, "2.bias[0]")


# -- export ---------------------------------------------------------------------------------------------------
def test_columns_csv_and_json(tmp_path):
    s = Session(mlp(optimizer("sgd", lr=0.1, momentum=0.9), layers=(2, 2, 1), steps=6, accumulation_steps=2))
    h = s.run()
    cols = h.columns()
    assert list(cols)[:4] == ["step", "loss", "micro_loss[0]", "micro_loss[1]"]
    assert "0.weight[1,0]" in cols and "grad.0.weight[1,0]" in cols and "state.2.bias[0].momentum_buffer" in cols
    assert all(len(v) == 6 for v in cols.values())
    np.testing.assert_array_equal(cols["0.weight[1,0]"], h.params["0.weight"][:6, 1, 0])
    h.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(cols) and len(rows) == 7
    np.testing.assert_array_equal(np.array(rows[1:], dtype=float), np.column_stack(list(cols.values())))
    h.to_json(tmp_path / "h.json")
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["steps"] == 6 and doc["columns"]["loss"] == cols["loss"].tolist()
    assert doc["shapes"]["0.weight"] == [2, 2]


def test_json_writes_nan_as_null(tmp_path):
    sc = line(optimizer("adam", lr=0.1), steps=3)
    sc.model.parameters["c"] = ParamInit(value=1.0)        # unused: its grad is None (nan)
    Session(sc).run().to_json(tmp_path / "h.json")
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["columns"]["grad.c"] == [None, None, None] and math.isclose(doc["columns"]["c"][0], 1.0)


def test_a_history_of_zero_steps_exports_its_header(tmp_path):
    """Bug fix: columns() (and so to_csv/to_json) raised for 0 steps (reshape(0, -1) is ambiguous)."""
    s = Session(mlp(layers=(2, 3, 1)))
    for h in (s.history, s.run(0)):              # before any run, and a run of 0 steps
        cols = h.columns()
        assert "0.weight[2,1]" in cols and "grad.2.bias[0]" in cols
        assert all(len(v) == 0 for v in cols.values())
        h.to_csv(tmp_path / "h.csv")
        with open(tmp_path / "h.csv", newline="") as f:
            assert list(csv.reader(f)) == [list(cols)]
        h.to_json(tmp_path / "h.json")
        doc = json.loads((tmp_path / "h.json").read_text())
        assert doc["steps"] == 0 and doc["final"]["2.bias"] == h.params["2.bias"][0].tolist()


def test_landscape_that_cannot_be_evaluated_is_a_session_error():
    """Bug fix: an expression sized to the micro-batch (x @ w with w 2x2, batches of 2 of 4 points)
    trains, but the landscape (whole data set) raised the core's RuntimeError."""
    sc = Scenario("mm", model=ModelSpec("expression", "x @ w", {"w": ParamInit(value=[[1.0, 0.5], [0.0, 1.0]])}),
                  data=DataSpec(x=[1.0, 2.0, 3.0, 4.0], y=[1.0, 2.0, 3.0, 4.0]), loss=LossSpec("mse"),
                  optimizer=optimizer(lr=0.01), loop=LoopSpec(steps=3, batch_size=2))
    s = Session(sc)
    assert s.run().steps == 3
    with pytest.raises(SessionError, match=r"whole data set \(4 points\)"):
        s.landscape("w[0,0]", "w[1,1]", n=4)


def test_missing_variant_message_without_comparisons():
    with pytest.raises(SessionError, match=r"variant 1 does not exist: the scenario has only the main run, 0$"):
        Session(line(), 1)
    sc = line()
    sc.comparisons = [Variant("adam", optimizer("adam"), LoopSpec(steps=3))]
    with pytest.raises(SessionError, match=r"has 2: 0 = main run, 1\.\.1 = comparisons"):
        Session(sc, 2)
