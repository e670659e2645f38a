"""gradviz.optim on its own (no PyTorch needed): one table of optimizers feeds generic tests.

Parity with PyTorch's numbers lives in test_optim_torch.py.
"""
import copy
import re

import numpy as np
import pytest

import gradviz
from gradviz import trace
from gradviz.nn import Parameter
from gradviz.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, required

# (optimizer class, kwargs, description): every generic test below runs on every row.
CASES = [
    (SGD, dict(lr=0.1), "plain SGD"),
    (SGD, dict(lr=0.05, momentum=0.9), "SGD momentum"),
    (SGD, dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01), "SGD dampening + L2"),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True), "SGD Nesterov, maximize"),
    (Adam, dict(lr=0.1), "Adam"),
    (Adam, dict(lr=0.1, amsgrad=True, weight_decay=0.01), "AMSGrad + L2"),
    (AdamW, dict(lr=0.1, maximize=True), "AdamW, maximize"),
    (RMSprop, dict(lr=0.01), "RMSprop"),
    (RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01), "RMSprop centered momentum"),
    (Adagrad, dict(lr=0.5), "Adagrad"),
    (Adagrad, dict(lr=0.5, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01),
     "Adagrad lr_decay + initial sum"),
]
CASE_PARAMS = [pytest.param(cls, kwargs, id=desc) for cls, kwargs, desc in CASES]

# (optimizer class, kwargs, message the ValueError must contain)
BAD_HYPERPARAMETERS = [
    (SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (SGD, dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (SGD, dict(lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (SGD, dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (Adam, dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (Adam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (Adam, dict(betas=(0, 0.999)), "betas must be either both floats or both Tensors"),
    (Adam, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (AdamW, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    (RMSprop, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (RMSprop, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (Adagrad, dict(lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value value: -1.0"),
    (Adagrad, dict(eps=-1e-10), "Invalid epsilon value: -1e-10"),
]

# Keys of state entries that carry momentum (they must decay under a zero gradient).
MOMENTUM_KEYS = ("momentum_buffer", "exp_avg")


def make_param(values, dtype=np.float32):
    return Parameter(gradviz.tensor(np.asarray(values, dtype=dtype)))


def set_grad(p, values):
    p.grad = gradviz.tensor(np.asarray(values, dtype=p.dtype))


def quadratic(w):
    """f(w) = 1/2 sum a (w - c)^2 with condition number 10, computed with gradviz's autograd."""
    a = gradviz.tensor([1.0, 4.0, 10.0])
    c = gradviz.tensor([1.0, -1.0, 0.5])
    return ((w - c) ** 2 * a).sum() * 0.5


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_loss_goes_the_right_way_in_20_steps(cls, kwargs):
    w = make_param([3.0, -2.0, 1.5])
    opt = cls([w], **kwargs)
    sign = -1.0 if kwargs.get("maximize") else 1.0      # maximize the negated loss
    with gradviz.no_grad():
        start = quadratic(w).item()
    for _ in range(20):
        opt.zero_grad()
        (quadratic(w) * sign).backward()
        opt.step()
    with gradviz.no_grad():
        end = quadratic(w).item()
    assert end < 0.7 * start


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_updates_in_place_and_keeps_dtype(cls, kwargs):
    w = make_param([3.0, -2.0, 1.5])
    array = w.detach().numpy()
    opt = cls([w], **kwargs)
    for _ in range(3):
        set_grad(w, [0.5, -1.0, 2.0])
        opt.step()
    assert w.detach().numpy() is array and w.dtype == np.float32
    assert not np.array_equal(w.data, [3.0, -2.0, 1.5])
    for key, value in opt.state[w].items():
        expected = np.float32 if key == "step" else w.dtype
        assert value.dtype == expected, key


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_none_grad_is_a_no_op(cls, kwargs):
    a, b = make_param([1.0, 2.0]), make_param([3.0, 4.0])
    opt = cls([a, b], **kwargs)
    b_state = copy.deepcopy(opt.state.get(b))    # Adagrad creates state eagerly; others have none
    for _ in range(3):
        set_grad(a, [0.1, -0.2])
        opt.step()
    np.testing.assert_array_equal(b.data, [3.0, 4.0])
    if b_state is None:
        assert b not in opt.state
    else:
        assert opt.state[b]["step"] == 0 and b_state.keys() == opt.state[b].keys()
        for key in b_state:
            np.testing.assert_array_equal(opt.state[b][key], b_state[key])


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_zero_grad_is_a_real_step(cls, kwargs):
    w = make_param([1.0, -2.0, 3.0])
    opt = cls([w], **kwargs)
    set_grad(w, [0.5, 0.5, -1.0])
    opt.step()
    data, state = w.detach().numpy().copy(), copy.deepcopy(opt.state[w])
    set_grad(w, [0.0, 0.0, 0.0])
    opt.step()
    if "step" in state:
        assert opt.state[w]["step"] == state["step"] + 1
    for key in MOMENTUM_KEYS:
        if key in state:     # momentum decays and keeps moving the parameter
            assert np.all(np.abs(opt.state[w][key]) < np.abs(state[key]))
            assert not np.array_equal(w.data, data)


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    grads = np.random.default_rng(0).standard_normal((10, 2, 3))

    def build():
        params = [make_param([1.0, 2.0, 3.0]), make_param([-1.0, 0.5, 0.0])]
        return params, cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.02}], **kwargs)

    params, opt = build()
    for g in grads[:5]:
        for p, gp in zip(params, g):
            set_grad(p, gp)
        opt.step()
    state_dict = copy.deepcopy(opt.state_dict())
    assert [g["params"] for g in state_dict["param_groups"]] == [[0], [1]]
    assert state_dict["param_groups"][1]["lr"] == 0.02

    params2, opt2 = build()
    for p, p2 in zip(params, params2):
        p2.data[...] = p.data
    opt2.load_state_dict(state_dict)
    for key, value in opt2.state[params2[0]].items():      # loaded arrays are copies
        assert not np.shares_memory(value, state_dict["state"][0][key])
    for g in grads[5:]:
        for ps in (params, params2):
            for p, gp in zip(ps, g):
                set_grad(p, gp)
        opt.step()
        opt2.step()
    for p, p2 in zip(params, params2):
        np.testing.assert_array_equal(p.data, p2.data)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    w = make_param([1.0, 2.0])
    opt = SGD([w], lr=0.1)
    set_grad(w, [3.0, 4.0])
    grad_array = w.grad.numpy()
    opt.zero_grad(set_to_none=set_to_none)
    if set_to_none:
        assert w.grad is None
    else:
        assert w.grad.numpy() is grad_array and np.array_equal(grad_array, [0.0, 0.0])
        assert not w.grad.requires_grad


@pytest.mark.parametrize("cls, kwargs", CASE_PARAMS)
def test_trace_records_step_and_zero_grad(cls, kwargs):
    a, b = make_param([1.0, 2.0]), make_param([3.0, 4.0])
    opt = cls([a, b], **kwargs)
    set_grad(a, [0.1, -0.2])
    opt.step()
    set_grad(a, [0.3, 0.4])
    a_before, state_before = a.detach().numpy().copy(), copy.deepcopy(opt.state[a])
    with trace.record() as rec:
        opt.step()
        opt.zero_grad()
    step_event, zero_event = rec.events
    assert isinstance(step_event, trace.StepEvent) and step_event.optimizer == cls.__name__
    update_a, update_b = step_event.updates
    assert (update_a.node, update_b.node) == (rec.find(a), rec.find(b))
    np.testing.assert_array_equal(update_a.before, a_before)
    np.testing.assert_array_equal(update_a.after, a.data)
    np.testing.assert_array_equal(update_a.grad, np.float32([0.3, 0.4]))
    assert update_a.state_before.keys() == state_before.keys() == update_a.state_after.keys()
    for key in state_before:
        np.testing.assert_array_equal(update_a.state_before[key], state_before[key])
        np.testing.assert_array_equal(update_a.state_after[key], opt.state[a][key])
    assert update_b.grad is None and np.array_equal(update_b.before, update_b.after)
    # the event holds copies: later training does not rewrite history
    set_grad(a, [1.0, 1.0])
    opt.step()
    assert not np.array_equal(update_a.after, a.data)

    assert isinstance(zero_event, trace.ZeroGradEvent) and zero_event.set_to_none
    np.testing.assert_array_equal(zero_event.cleared[0].before, np.float32([0.3, 0.4]))
    assert zero_event.cleared[1].before is None


def test_no_events_without_recorder_and_no_double_recording():
    class Traced(SGD):           # a subclass that overrides step and calls super().step()
        def step(self, closure=None):
            return super().step(closure)

    w = make_param([1.0])
    opt = Traced([w], lr=0.1)
    set_grad(w, [1.0])
    opt.step()
    with trace.record() as rec:
        opt.step()
    assert [type(e).__name__ for e in rec.events] == ["StepEvent"]
    assert rec.events[0].optimizer == "Traced"


@pytest.mark.parametrize("cls, kwargs, message", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cls([make_param([1.0])], **kwargs)


# (build(p, q), error, message): PyTorch's checks on the parameters themselves.
BAD_PARAMETER_GROUPS = [
    (lambda p, q: SGD(p), TypeError, "params argument given to the optimizer should be an iterable"),
    (lambda p, q: SGD([]), ValueError, "optimizer got an empty parameter list"),
    (lambda p, q: SGD([np.zeros(2)]), TypeError, "optimizer can only optimize Tensors"),
    (lambda p, q: SGD([p * 2]), ValueError, "can't optimize a non-leaf Tensor"),
    (lambda p, q: SGD([{"params": {p}}]), TypeError, "ordered collections"),
    (lambda p, q: SGD([{"params": [p]}, {"params": [p, q]}]), ValueError,
     "some parameters appear in more than one parameter group"),
    (lambda p, q: SGD([("w", p), q]), ValueError, "Some param names are missing"),
    (lambda p, q: SGD([{"params": [("w", p)]}, {"params": [q]}]), ValueError,
     "cannot add param group without names to the optimizer"),
    (lambda p, q: SGD([p]).add_param_group([q]), TypeError, "param_group must be a dict"),
]


@pytest.mark.parametrize("build, error, message", BAD_PARAMETER_GROUPS)
def test_bad_parameter_groups_raise(build, error, message):
    with pytest.raises(error, match=re.escape(message)):
        build(make_param([1.0]), make_param([2.0]))


def test_required_hyperparameter_and_group_defaults():
    class Plain(Optimizer):
        def __init__(self, params, lr=required, beta=0.5):
            super().__init__(params, dict(lr=lr, beta=beta))

    p, q = make_param([1.0]), make_param([2.0])
    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        Plain([p])
    opt = Plain([{"params": [p], "lr": 0.1}, {"params": q, "lr": 0.2, "beta": 0.9}])
    assert [(g["lr"], g["beta"]) for g in opt.param_groups] == [(0.1, 0.5), (0.2, 0.9)]
    assert opt.param_groups[1]["params"] == [q]
    with pytest.raises(NotImplementedError):
        opt.step()


def test_duplicate_parameter_warns():
    p = make_param([1.0])
    with pytest.warns(UserWarning, match="duplicate parameters"):
        SGD([p, p], lr=0.1)


def test_named_parameters_are_kept_as_param_names():
    p, q = make_param([1.0]), make_param([2.0])
    opt = Adam([("layer.weight", p), ("layer.bias", q)])
    assert opt.param_groups[0]["params"] == [p, q]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["layer.weight", "layer.bias"]


@pytest.mark.parametrize("state_dict, message", [
    ({"state": {}, "param_groups": []}, "different number of parameter groups"),
    ({"state": {}, "param_groups": [{"params": [0, 1], "lr": 0.1}]}, "doesn't match the size"),
])
def test_load_state_dict_validates_groups(state_dict, message):
    opt = SGD([make_param([1.0])], lr=0.1)
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.load_state_dict(state_dict)


def test_step_calls_closure_with_grad_enabled_and_returns_its_loss():
    w = make_param([3.0, -2.0, 1.5])
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = quadratic(w)
        loss.backward()
        return loss

    with gradviz.no_grad():          # the closure must still build a graph
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(0.5 * (4 + 4 * 1 + 10 * 1))
    np.testing.assert_allclose(w.data, [3 - 0.1 * 2, -2 - 0.1 * -4, 1.5 - 0.1 * 10], rtol=1e-6)
    assert opt.step() is None


def test_adagrad_creates_state_eagerly_and_lazily_for_new_groups():
    p, q = make_param([1.0, 2.0]), make_param([3.0])
    opt = Adagrad([p], initial_accumulator_value=0.5)
    assert opt.state[p]["step"] == 0 and np.array_equal(opt.state[p]["sum"], [0.5, 0.5])
    opt.add_param_group({"params": [q], "initial_accumulator_value": 2.0})
    assert q not in opt.state
    set_grad(q, [1.0])
    opt.step()
    # a group's own initial_accumulator_value is ignored: the constructor's default is used
    np.testing.assert_allclose(opt.state[q]["sum"], [0.5 + 1.0])


def test_sgd_momentum_buffer_starts_as_the_first_gradient():
    w = make_param([0.0, 0.0])
    opt = SGD([w], lr=1.0, momentum=0.9, dampening=0.5)
    set_grad(w, [1.0, -2.0])
    opt.step()
    np.testing.assert_array_equal(opt.state[w]["momentum_buffer"], [1.0, -2.0])   # no dampening yet
    opt.step()
    np.testing.assert_allclose(opt.state[w]["momentum_buffer"], [0.9 + 0.5, -1.8 - 1.0], rtol=1e-6)


def test_adamw_is_adam_with_decoupled_weight_decay():
    opt = AdamW([make_param([1.0])])
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert opt.param_groups[0]["weight_decay"] == 1e-2
    state_dict = Adam([make_param([1.0])]).state_dict()     # loading Adam's state keeps AdamW
    opt.load_state_dict(state_dict)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


def test_repr_lists_group_hyperparameters():
    opt = SGD([make_param([1.0])], lr=0.1, momentum=0.9)
    assert repr(opt) == ("SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n"
                         "    foreach: None\n    fused: None\n    lr: 0.1\n    maximize: False\n"
                         "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)")
