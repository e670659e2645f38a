"""The History's storage: the run's dtype, a memory budget with a stated reduction (every stride-th
step of params/grads/state, every step of the scalars), divergence found as steps are written, grads
nan where ``.grad`` was None, state nan before it existed, and pickling."""
import copy
import pickle

import numpy as np
import pytest

from gradviz.scenario import bundled_path, load
from gradviz.scenario.schema import OPTIMIZER_DEFAULTS, OptimizerSpec, ParamInit
from gradviz.training.history import DOCUMENT_HISTORY_BUDGET, HistoryBuffer, history_bytes, plan_stride
from gradviz.training.session import Session
from gradviz.view.series import param_steps, row_steps, rows_between


def bundled(stem, kind=None, steps=None, precision=None, **hyper):
    """A bundled scenario's main variant only, with another optimizer / lr / steps."""
    sc = copy.deepcopy(load(bundled_path(stem)))
    sc.comparisons = []
    if kind:
        sc.optimizer = OptimizerSpec(kind, dict(OPTIMIZER_DEFAULTS[kind], **hyper))
    else:
        sc.optimizer.hyper.update(hyper)
    if steps is not None:
        sc.loop.steps = steps
    if precision is not None:
        sc.loop.precision = precision
    return sc


def arrays_of(h):
    yield from h.params.values()
    yield from h.grads.values()
    for state in h.state.values():
        yield from state.values()


# -- dtype -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision, dtype", [("float32", np.float32), ("float64", np.float64)])
def test_arrays_are_stored_at_the_runs_dtype(precision, dtype):
    h = Session(bundled("07_mlp_two_moons", steps=5, precision=precision)).run()
    for name in h.param_names:
        assert h.params[name].dtype == dtype and h.grads[name].dtype == dtype
        assert h.state[name]["exp_avg"].dtype == dtype and h.state[name]["exp_avg_sq"].dtype == dtype
        assert h.state[name]["step"].dtype == np.float64           # a counter, as a float
    np.testing.assert_array_equal(h.state["0.weight"]["step"], np.arange(1, 6))


@pytest.mark.parametrize("stem", ["09_fp16_underflow", "11_bfloat16_vs_float16"])
def test_mixed_precision_runs_keep_their_float32_master_copies(stem):
    sc = copy.deepcopy(load(bundled_path(stem)))
    for i in range(len(sc.variants())):
        h = Session(sc, i).run(4)
        for values in arrays_of(h):
            assert values.dtype in (np.float32, np.float64)
        assert all(h.params[n].dtype == np.float32 for n in h.param_names)


# -- the budget and its reduction --------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_and_reduced():
    sc = bundled("07_mlp_two_moons", steps=101)
    full = Session(sc).run()
    need = sum(a.nbytes for a in arrays_of(full))
    reduced = Session(copy.deepcopy(sc), history_budget=need // 7).run()
    return full, reduced


def test_a_small_budget_keeps_every_stride_th_row(full_and_reduced):
    full, h = full_and_reduced
    assert full.stride == 1 and full.reduction == ""
    assert h.stride > 1 and h.steps == full.steps == 101
    assert h.reduction.startswith(f"parameters, gradients and optimizer state every {h.stride}")
    assert "budget" in h.reduction
    s = h.stride
    np.testing.assert_array_equal(h.row_steps(), np.arange(0, 101, s))
    expected = np.arange(0, 102, s)
    if 101 % s:
        expected = np.append(expected, 101)
    np.testing.assert_array_equal(h.param_row_steps(), expected)
    np.testing.assert_array_equal(param_steps(h), expected)
    np.testing.assert_array_equal(row_steps(h), h.row_steps())
    assert h.row(2 * s) == 2 and h.row(s + 1) is None
    for name in h.param_names:
        np.testing.assert_array_equal(h.params[name], full.params[name][expected])
        np.testing.assert_array_equal(h.params[name][-1], full.params[name][-1])       # the final value
        np.testing.assert_array_equal(h.grads[name], full.grads[name][::s])
        for key, values in h.state[name].items():
            np.testing.assert_array_equal(values, full.state[name][key][::s])
    for field in ("loss", "micro_losses", "lr", "grad_scale", "skipped"):
        np.testing.assert_array_equal(getattr(h, field), getattr(full, field))
    np.testing.assert_allclose(h.grad_norm(), full.grad_norm(), rtol=1e-5)      # summed in float32
    assert len(h.grad_norm()) == 101


def test_a_reduced_history_fits_its_budget():
    sc = bundled("07_mlp_two_moons", steps=300)
    budget = 400_000
    h = Session(sc, history_budget=budget).run()
    kept = sum(a.nbytes for a in arrays_of(h)) + sum(a.nbytes for a in (h.loss, h.micro_losses, h.lr, h.grad_scale,
                                                                       h.skipped, h.grad_norms))
    assert h.stride > 1 and kept <= budget
    assert Session(sc, history_budget=budget)._buffer.stride == 1       # nothing recorded yet


def test_reduced_columns_are_nan_at_the_steps_not_kept(full_and_reduced, tmp_path):
    full, h = full_and_reduced
    cols, all_cols = h.columns(), full.columns()
    kept = np.zeros(101, bool)
    kept[::h.stride] = True
    for name in ("0.weight[0,0]", "grad.0.weight[0,0]", "state.0.weight[0,0].exp_avg"):
        np.testing.assert_array_equal(cols[name][kept], all_cols[name][kept])
        assert np.isnan(cols[name][~kept]).all()
    np.testing.assert_array_equal(cols["loss"], all_cols["loss"])
    assert set(cols) == set(all_cols) | {"grad_norm"}
    h.to_json(tmp_path / "h.json")
    h.to_csv(tmp_path / "h.csv")


def test_step_sizes_of_a_reduced_history_are_the_mean_step_between_rows(full_and_reduced):
    _, h = full_and_reduced
    p = h.params["4.bias"].astype(np.float64)
    gaps = np.diff(h.param_row_steps()).astype(np.float64)
    np.testing.assert_allclose(h.step_sizes("4.bias"), np.abs(np.diff(p, axis=0)) / gaps[:, None])


def test_plan_stride_is_the_smallest_that_fits():
    rows = {"params": 1000, "grads": 1000, "state": 2000}
    full = history_bytes(100, 1, rows, 50)
    assert plan_stride(100, rows, 50, full) == (1, "")
    for budget in (full // 2, full // 5, full // 33):
        stride, text = plan_stride(100, rows, 50, budget)
        assert history_bytes(100, stride, rows, 50) <= budget < history_bytes(100, stride - 1, rows, 50)
        assert f"every {stride}" in text and "GiB" not in text


def test_each_variant_gets_its_share_of_the_document_budget():
    sc = copy.deepcopy(load(bundled_path("04_rosenbrock_race")))
    assert Session(sc).history_budget == DOCUMENT_HISTORY_BUDGET // len(sc.variants())
    assert Session(sc, 1, history_budget=1234).history_budget == 1234


def checkpoint_bytes(session) -> int:
    total = 0
    for c in session._checkpoints.values():
        total += sum(a.nbytes for a in c.params) + sum(0 if g is None else g.nbytes for g in c.grads)
        total += sum(v.nbytes for st in c.optimizer["state"].values() for v in st.values()
                     if isinstance(v, np.ndarray))
    return total


@pytest.mark.parametrize("budget", [None, 400_000, 60_000])
def test_checkpoints_count_in_the_budget(budget):
    """A run keeps at most 64 checkpoints, fewer when they would take more than 1/8 of its budget, and
    its History and checkpoints together fit the budget (9 variants of a 100k-parameter MLP kept
    0.9 GB of checkpoints beside their Histories). An iteration between two far checkpoints still
    replays to the recorded values."""
    session = Session(bundled("07_mlp_two_moons", steps=300), history_budget=budget)
    h = session.run()
    kept = checkpoint_bytes(session)
    assert len(session._checkpoints) <= 65
    assert kept + history_bytes(300, h.stride, *session._row_bytes()) <= session.history_budget
    if budget is not None:
        assert kept <= budget // 8 + checkpoint_bytes(session) // len(session._checkpoints)
        assert len(session._checkpoints) < 64 and h.stride > 1
    marks = sorted(session._checkpoints)
    k = marks[1] - 1 if len(marks) > 1 else 299          # the farthest from a checkpoint
    trace = session.trace_iteration(k)
    steps = list(h.param_row_steps())
    row = steps.index(k + 1) if (k + 1) in steps else None
    for name in h.param_names:
        if row is not None:
            np.testing.assert_array_equal(trace.params_after[name], h.params[name][row])
    np.testing.assert_array_equal(trace.params_after[h.param_names[0]],
                                  Session(bundled("07_mlp_two_moons", steps=k + 1)).run().params[h.param_names[0]][-1])


def test_amsgrad_counts_its_third_buffer():
    sc = bundled("07_mlp_two_moons", "adam", steps=3, lr=0.01, amsgrad=True)
    session = Session(sc)
    rows, _ = session._row_bytes()
    values = sum(p._data.nbytes for p in session._engine.params)
    n = len(session.param_names)
    assert rows == {"params": values, "grads": values, "state": 3 * values + 8 * n}
    h = session.run()
    assert set(h.state_keys()) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    state = sum(a.nbytes for st in h.state.values() for a in st.values())
    assert state == 3 * rows["state"]


# -- divergence ------------------------------------------------------------------------------------------
def nan_gradient():
    sc = bundled("05_ill_conditioned_bowl")
    sc.model.expression = "sqrt(x**2) + y**2"        # loss 0 at x = 0, d/dx = x / |x| = nan
    sc.model.parameters["x"] = ParamInit(value=0.0)
    return sc


# (step, message) as the History recorded them before it checked steps as they were written
DIVERGING = {
    "tutorial-lr5": (lambda: bundled("01_tutorial_wx_b", lr=5.0), 12, "loss is inf"),
    "rosenbrock-sgd": (lambda: bundled("04_rosenbrock_race", lr=0.01), 5, "loss is inf"),
    "fp16-huge-lr": (lambda: bundled("09_fp16_underflow", lr=1e6), 1, "loss is inf"),
    "bowl-lr1e20": (lambda: bundled("05_ill_conditioned_bowl", lr=1e20), 1, "loss is inf"),
    "bowl-param-inf": (lambda: bundled("05_ill_conditioned_bowl", lr=1e100), 0, "x is inf"),
    "nan-gradient": (nan_gradient, 0, "the gradient of x is nan"),
}


@pytest.mark.parametrize("budget", [None, 1], ids=["full", "reduced"])
@pytest.mark.parametrize("case", list(DIVERGING))
def test_divergence_is_found_at_the_same_step_with_the_same_message(case, budget):
    make, step, what = DIVERGING[case]
    h = Session(make(), history_budget=budget).run()
    assert (h.diverged_at, h.message, h.steps) == (step, f"diverged at step {step}: {what}", step + 1)
    full = Session(make()).run()
    for name in h.param_names:           # the last params row is the value the divergence produced
        np.testing.assert_array_equal(h.params[name][-1], full.params[name][step + 1])
    np.testing.assert_array_equal(h.loss, full.loss)


# -- grads None and state that appears later -------------------------------------------------------------
def test_a_parameter_without_grad_has_nan_gradients_and_no_state():
    sc = bundled("01_tutorial_wx_b", "adam", steps=6, lr=0.1)
    sc.model.parameters["c"] = ParamInit(value=3.0)
    for budget in (None, 1):
        h = Session(copy.deepcopy(sc), history_budget=budget).run()
        assert h.diverged_at is None and np.isnan(h.grads["c"]).all() and h.state["c"] == {}
        assert np.isfinite(h.grads["w"]).all() and (h.params["c"] == 3.0).all()
        assert np.isnan(h.grad_norm()).all()                 # ‖∇‖ over every parameter: one is missing


class FakeParam:
    def __init__(self, value):
        self._data = np.asarray(value, dtype=np.float32)
        self.grad = None


def test_state_that_appears_later_is_nan_before():
    params = [FakeParam([1.0, 2.0]), FakeParam(3.0)]
    buf = HistoryBuffer(["a", "b"], params, 6, 1)
    state: dict = {}
    for k in range(6):
        for p in params:
            p.grad = FakeParam(p._data * 0 + k)
        buf.record_grads(k, 1.0, 0.1, params)
        if k == 2:
            state[params[0]] = {"buf": np.zeros(2, np.float32), "step": np.float32(0)}
        if k == 4:
            state[params[1]] = {"buf": np.zeros((), np.float32) + 7}
        for s in state.values():
            s["buf"] += 1
        buf.record_params(k, params, state)
    h = buf.history("v", 6, None, "")
    a, b = h.state["a"]["buf"], h.state["b"]["buf"]
    assert a.dtype == np.float32 and np.isnan(a[:2]).all() and (a[2:, 0] == [1, 2, 3, 4]).all()
    assert np.isnan(b[:4]).all() and (b[4:] == [8, 9]).all()
    assert set(h.state["b"]) == {"buf"} and np.isnan(h.state["a"]["step"][:2]).all()
    np.testing.assert_array_equal(h.grads["b"], np.arange(6))
    assert not buf.suspect


def test_a_non_finite_row_is_suspect_and_confirmed():
    params = [FakeParam([1.0, np.inf])]
    buf = HistoryBuffer(["a"], params, 3, 1)
    params[0].grad = FakeParam([0.0, 0.0])
    buf.record_grads(0, 1.0, 0.1, params)
    assert not buf.suspect
    buf.record_params(0, params, {})
    assert buf.suspect and buf.bad_at(0, True) == "a is inf" and not buf.suspect
    huge = [FakeParam([3e19, 1.0])]            # Σx² overflows float32, nothing is infinite
    buf = HistoryBuffer(["a"], huge, 3, 1)
    huge[0].grad = FakeParam([3e19, 0.0])
    with np.errstate(over="ignore"):                # as the Session runs steps
        buf.record_grads(0, 1.0, 0.1, huge)
        buf.record_params(0, huge, {})
    assert buf.suspect and buf.bad_at(0, True) is None
    np.testing.assert_allclose(buf.norm[0], 3e19, rtol=1e-6)        # added up again in float64


# -- the plots' reading of a reduced History; pickling ---------------------------------------------------
def test_rows_between_picks_the_rows_of_a_window(full_and_reduced):
    _, h = full_and_reduced
    steps = param_steps(h)
    rows = rows_between(steps, 10, 40)
    assert (steps[rows] >= 10).all() and (steps[rows] <= 40).all()
    assert len(steps[rows]) == len([k for k in steps if 10 <= k <= 40])


@pytest.mark.parametrize("which", [0, 1], ids=["full", "reduced"])
def test_history_pickles(full_and_reduced, which):
    h = full_and_reduced[which]
    back = pickle.loads(pickle.dumps(h))
    assert (back.stride, back.reduction, back.steps) == (h.stride, h.reduction, h.steps)
    for name in h.param_names:
        np.testing.assert_array_equal(back.params[name], h.params[name])
        np.testing.assert_array_equal(back.grads[name], h.grads[name])
    np.testing.assert_array_equal(back.param_row_steps(), h.param_row_steps())


# -- live storage ----------------------------------------------------------------------------------------
def test_the_engine_keeps_parameters_and_state_in_live_rows():
    session = Session(bundled("07_mlp_two_moons", kind="adam", steps=5, lr=0.01))
    h = session.run()
    engine, buf = session._engine, session._buffer
    assert all(p._data is a for p, a in zip(engine.params, engine.live.arrays))
    assert set(engine.live_state) == {"step", "exp_avg", "exp_avg_sq"}
    assert buf._params.bound is engine.live
    assert all(buf._state_rows[key].bound is live for key, live in engine.live_state.items())
    for name, p in zip(session.param_names, engine.params):          # views: the padding is not in them
        assert h.params[name].shape[1:] == p._data.shape
        np.testing.assert_array_equal(h.params[name][-1], p._data)
        np.testing.assert_array_equal(h.state[name]["exp_avg"][-1], engine.optimizer.state[p]["exp_avg"])
