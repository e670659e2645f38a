"""gradviz.optim against torch.optim (PyTorch's single-tensor path): same numbers, state and errors.

Each optimizer runs a grid of its hyperparameters for 200 steps on a small MLP in float64, fed the
same gradients as its PyTorch twin, including stretches where a parameter's grad is None.  Params
and every state entry must agree to 1e-10.  In float32 every grid row is bit-identical to PyTorch
once its (MKL, CPU-dependent) sqrt is used; see docs/numerics.md.
"""
import itertools
import re

import numpy as np
import pytest

import gradviz
from gradviz.nn import Parameter
from gradviz.optim import SGD, Adagrad, Adam, AdamW, RMSprop

from .test_optim import BAD_HYPERPARAMETERS

torch = pytest.importorskip("torch")

TOL = 1e-10
STEPS = 200


def grid(cls, base, **axes):
    """One case per combination of the axes' values: (gradviz class, torch class, kwargs)."""
    names = list(axes)
    cases = []
    for values in itertools.product(*axes.values()):
        kwargs = dict(base, **dict(zip(names, values)))
        if kwargs.get("nesterov") and not (kwargs["momentum"] > 0 and kwargs["dampening"] == 0):
            continue      # PyTorch rejects these (tested in test_optim.py)
        desc = cls.__name__ + "(" + ", ".join(f"{k}={v}" for k, v in zip(names, values)) + ")"
        cases.append(pytest.param(cls, getattr(torch.optim, cls.__name__), kwargs, id=desc))
    return cases


GRID = (
    grid(SGD, dict(lr=0.05), momentum=[0, 0.9], dampening=[0, 0.1], nesterov=[False, True],
         weight_decay=[0, 0.1], maximize=[False, True])
    + grid(Adam, dict(lr=0.01), amsgrad=[False, True], weight_decay=[0, 0.1], maximize=[False, True])
    + grid(AdamW, dict(lr=0.01), amsgrad=[False, True], weight_decay=[0, 0.1], maximize=[False, True])
    + grid(RMSprop, dict(lr=0.005), centered=[False, True], momentum=[0, 0.9], weight_decay=[0, 0.1],
           maximize=[False, True])
    + grid(Adagrad, dict(lr=0.1), lr_decay=[0, 0.01], initial_accumulator_value=[0, 0.1],
           weight_decay=[0, 0.1], maximize=[False, True])
)

# One representative per optimizer (with its optional state entries switched on).
# NOTE: RMSprop's steps do not shrink near a minimum, so at lr=0.005 this problem turns chaotic after
# ~110 steps and two autograds' 1e-16 differences grow to 1e-3; lr=0.001 stays in the smooth regime.
DEFAULTS = [
    (SGD, dict(lr=0.05, momentum=0.9)),
    (Adam, dict(lr=0.01, amsgrad=True)),
    (AdamW, dict(lr=0.01)),
    (RMSprop, dict(lr=0.001, momentum=0.5, centered=True)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),   # lr_decay: zero grads count
]
DEFAULT_PARAMS = [pytest.param(cls, getattr(torch.optim, cls.__name__), kw, id=cls.__name__)
                  for cls, kw in DEFAULTS]


# -- the problem: a 3-8-1 tanh MLP on a fixed regression set ---------------------------------------
_rng = np.random.default_rng(1234)
X = _rng.standard_normal((32, 3))
Y = np.sin(X.sum(axis=1, keepdims=True))
INIT = [_rng.standard_normal((3, 8)) * 0.5, np.zeros(8), _rng.standard_normal((8, 1)) * 0.5, np.zeros(1)]


def grad_is_none(index: int, step: int) -> bool:
    """b1 gets no gradient for the first 10 steps (state created late); b2 none for steps 80-119."""
    return (index == 1 and step < 10) or (index == 3 and 80 <= step < 120)


def mlp_loss(params, x, y, lib):
    w1, b1, w2, b2 = params
    return ((lib.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2).mean()


def make_pair(cls, tcls, kwargs, dtype=np.float64):
    tparams = [torch.tensor(v.astype(dtype), requires_grad=True) for v in INIT]
    gparams = [Parameter(gradviz.tensor(v.astype(dtype))) for v in INIT]
    return tparams, tcls(tparams, foreach=False, **kwargs), gparams, cls(gparams, foreach=False, **kwargs)


def torch_step_with_shared_grads(step, tparams, topt, gparams, gopt, maximize):
    """Compute grads in torch, copy them into gradviz (None where grad_is_none), step both."""
    topt.zero_grad()
    dtype = tparams[0].dtype
    loss = mlp_loss(tparams, torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype), torch)
    (-loss if maximize else loss).backward()     # maximize -loss: the run stays bounded
    for i, (tp, gp) in enumerate(zip(tparams, gparams)):
        if grad_is_none(i, step):
            tp.grad = None
        gp.grad = None if tp.grad is None else gradviz.tensor(tp.grad.numpy().copy())
    topt.step()
    gopt.step()


def assert_same(tparams, topt, gparams, gopt, tol=TOL):
    for i, (tp, gp) in enumerate(zip(tparams, gparams)):
        assert np.max(np.abs(tp.detach().numpy() - gp.detach().numpy())) <= tol, f"param {i}"
        assert (tp in topt.state) == (gp in gopt.state), f"param {i}"
        if tp not in topt.state:
            continue
        tstate, gstate = topt.state[tp], gopt.state[gp]
        assert list(tstate) == list(gstate), f"param {i}"
        for key in tstate:
            if key == "step":
                assert float(tstate[key]) == float(gstate[key]), f"param {i} step"
            else:
                assert np.max(np.abs(tstate[key].numpy() - gstate[key]), initial=0) <= tol, f"param {i} {key}"


@pytest.mark.parametrize("cls, tcls, kwargs", GRID)
def test_matches_pytorch_over_hyperparameter_grid(cls, tcls, kwargs):
    tparams, topt, gparams, gopt = make_pair(cls, tcls, kwargs)
    for step in range(STEPS):
        torch_step_with_shared_grads(step, tparams, topt, gparams, gopt, kwargs.get("maximize", False))
        if step in (0, 9, 10, 100, STEPS - 1):
            assert_same(tparams, topt, gparams, gopt)


@pytest.mark.parametrize("cls, tcls, kwargs", DEFAULT_PARAMS)
def test_matches_pytorch_in_float32(cls, tcls, kwargs):
    tparams, topt, gparams, gopt = make_pair(cls, tcls, kwargs, dtype=np.float32)
    for step in range(100):
        torch_step_with_shared_grads(step, tparams, topt, gparams, gopt, False)
    assert all(p.dtype == np.float32 for p in gparams)
    assert_same(tparams, topt, gparams, gopt, tol=1e-5)    # float32 rounding (PyTorch may use FMA)


@pytest.mark.parametrize("cls, tcls, kwargs", DEFAULT_PARAMS)
def test_matches_pytorch_with_each_own_autograd(cls, tcls, kwargs):
    tparams, topt, gparams, gopt = make_pair(cls, tcls, kwargs)
    tx, ty = torch.tensor(X), torch.tensor(Y)
    gx, gy = gradviz.tensor(X), gradviz.tensor(Y)
    for _ in range(STEPS):
        topt.zero_grad()
        mlp_loss(tparams, tx, ty, torch).backward()
        topt.step()
        gopt.zero_grad()
        mlp_loss(gparams, gx, gy, gradviz).backward()
        gopt.step()
    assert_same(tparams, topt, gparams, gopt)


@pytest.mark.parametrize("cls, tcls, kwargs", DEFAULT_PARAMS)
def test_zero_grad_set_to_none_or_not_changes_the_trajectory_like_pytorch(cls, tcls, kwargs):
    """``b`` is in the loss only every third step: between, its grad is None (skipped) or zero (a step)."""
    finals = {}
    for set_to_none in (True, False):
        runs = []
        for lib, make in ((torch, lambda v: torch.tensor(v, requires_grad=True)),
                          (gradviz, lambda v: Parameter(gradviz.tensor(v)))):
            a, b = make(np.array([1.0, -2.0])), make(np.array([0.5, 3.0]))
            opt = (tcls if lib is torch else cls)([a, b], foreach=False, **kwargs)
            for step in range(30):
                opt.zero_grad(set_to_none=set_to_none)
                loss = ((a - 0.3) ** 2).sum()
                if step % 3 == 0:
                    loss = loss + ((b + 1.0) ** 2).sum()
                loss.backward()
                opt.step()
            runs.append(np.concatenate([a.detach().numpy(), b.detach().numpy()]))
        np.testing.assert_allclose(runs[1], runs[0], rtol=0, atol=TOL)
        finals[set_to_none] = runs[1]
    assert np.max(np.abs(finals[True] - finals[False])) > 1e-6


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("cls, tcls, kwargs", DEFAULT_PARAMS)
def test_state_dict_matches_pytorch_and_loads_its_state(cls, tcls, kwargs):
    def build(params, make):
        return make([{"params": params[:2]}, {"params": params[2:], "lr": 0.003}], **kwargs)

    tparams, _, gparams, _ = make_pair(cls, tcls, kwargs)
    topt = build(tparams, lambda groups, **kw: tcls(groups, foreach=False, **kw))
    gopt = build(gparams, lambda groups, **kw: cls(groups, foreach=False, **kw))
    for step in range(5):              # b1 (index 1) has no grad yet: no state in both (but Adagrad's)
        torch_step_with_shared_grads(step, tparams, topt, gparams, gopt, False)
    tsd, gsd = topt.state_dict(), gopt.state_dict()

    assert len(tsd["param_groups"]) == len(gsd["param_groups"]) == 2
    for tgroup, ggroup in zip(tsd["param_groups"], gsd["param_groups"]):
        assert list(tgroup) == list(ggroup)      # same keys, foreach/fused/... included, same order
        assert tgroup == ggroup
    assert list(tsd["state"]) == list(gsd["state"])
    for index, tstate in tsd["state"].items():
        assert list(tstate) == list(gsd["state"][index])
        for key, value in tstate.items():
            np.testing.assert_allclose(gsd["state"][index][key], value.numpy(), rtol=0, atol=TOL)

    # PyTorch's state dict (as numpy) loads into a fresh gradviz optimizer and continues identically.
    fresh = [Parameter(gradviz.tensor(tp.detach().numpy().copy())) for tp in tparams]
    fresh_opt = build(fresh, lambda groups, **kw: cls(groups, foreach=False, **kw))
    fresh_opt.load_state_dict(_to_numpy(tsd))
    for step in range(5, 15):
        torch_step_with_shared_grads(step, tparams, topt, fresh, fresh_opt, False)
    assert_same(tparams, topt, fresh, fresh_opt)


@pytest.mark.parametrize("cls, tcls, kwargs", DEFAULT_PARAMS)
def test_repr_matches_pytorch(cls, tcls, kwargs):
    tparams, topt, gparams, gopt = make_pair(cls, tcls, kwargs)
    assert repr(gopt) == repr(topt)
    assert repr(cls(gparams, **kwargs)) == repr(tcls(tparams, **kwargs))     # PyTorch's defaults


@pytest.mark.parametrize("cls, kwargs, message", BAD_HYPERPARAMETERS)
def test_bad_hyperparameter_messages_match_pytorch(cls, kwargs, message):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, cls.__name__)([torch.zeros(1, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=re.escape(str(theirs.value))):
        cls([Parameter(gradviz.zeros(1))], **kwargs)


# -- float32: each update rounds as PyTorch's CPU kernels round ------------------------------------
# Thousands of elements, not a multiple of any SIMD width (the kernels' tails run too), and one
# element (gradviz's Python-float path for one-element arrays).
FLOAT32_SIZES = [4099, 1]


def torch_sqrt(x, out=None):
    """PyTorch's CPU sqrt (MKL's, not always correctly rounded), to swap in for gradviz's."""
    result = torch.from_numpy(np.ascontiguousarray(x)).sqrt().numpy()
    if out is None:
        return result
    np.copyto(out, result)
    return out


@pytest.mark.parametrize("size", FLOAT32_SIZES)
@pytest.mark.parametrize("cls, tcls, kwargs", GRID)
def test_float32_updates_are_bit_identical_to_pytorch(cls, tcls, kwargs, size, monkeypatch):
    """200 float32 steps on random elements give PyTorch's bits, every param and state entry.

    Single rounding is what makes this hold: ``param.add_(grad, alpha=-lr)``, ``lerp_`` and
    ``addcmul_`` are fused multiply-adds in PyTorch's kernels.  SGD matches as is.  Adam, RMSprop
    and Adagrad also take a sqrt, and PyTorch's CPU sqrt (MKL) is off by one ulp from the correctly
    rounded one on ~17% of float32 inputs; with it swapped in they match to the bit too, which shows
    that sqrt is the only CPU-dependent op (without it see ``test_matches_pytorch_in_float32``).
    """
    if cls is not SGD:
        for module in ("adam", "rmsprop", "adagrad"):
            monkeypatch.setattr(f"gradviz.optim.{module}._sqrt", torch_sqrt)
    rng = np.random.default_rng(0)
    init = rng.standard_normal(size).astype(np.float32)
    tparam, gparam = torch.nn.Parameter(torch.tensor(init)), Parameter(gradviz.tensor(init))
    topt, gopt = tcls([tparam], foreach=False, **kwargs), cls([gparam], **kwargs)
    for _ in range(STEPS):
        grad = (rng.standard_normal(size) * 0.1 + 0.05 * init).astype(np.float32)
        tparam.grad, gparam.grad = torch.tensor(grad), gradviz.tensor(grad)
        topt.step()
        gopt.step()
    assert gparam.dtype == np.float32
    np.testing.assert_array_equal(gparam.detach().numpy(), tparam.detach().numpy())
    for key, value in topt.state[tparam].items():
        np.testing.assert_array_equal(np.asarray(gopt.state[gparam][key]), value.numpy(), err_msg=key)


# -- foreach / fused / capturable / differentiable -------------------------------------------------
KERNEL_FLAGS = [
    dict(foreach=True), dict(foreach=False), dict(fused=True), dict(fused=False),
    dict(capturable=True), dict(capturable=True, fused=True), dict(differentiable=True),
    dict(fused=True, foreach=True), dict(fused=True, differentiable=True),
]
KERNEL_FLAG_CASES = [pytest.param(cls, getattr(torch.optim, cls.__name__), dict(kw, **flags),
                                  id=f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in flags.items())}")
                     for cls, kw in DEFAULTS for flags in KERNEL_FLAGS]


def _outcome(make, step):
    """('ok', None) or (exception type name, message) of constructing then stepping."""
    try:
        step(make())
    except Exception as error:      # noqa: BLE001 - the comparison is the point
        return type(error).__name__, str(error)
    return "ok", None


@pytest.mark.parametrize("cls, tcls, kwargs", KERNEL_FLAG_CASES)
def test_kernel_flags_are_accepted_and_refused_as_pytorch_does_on_cpu(cls, tcls, kwargs):
    """Each flag PyTorch accepts on CPU is accepted, stored in the group and gives the same numbers
    (float64, 1e-10 relative: PyTorch's fused CPU kernels round a little differently from its
    for-loop path); each it refuses (an unknown keyword, ``fused`` with ``foreach``,
    ``capturable`` off CUDA, ``differentiable`` on a leaf) raises the same error."""
    def run(opt, params, lib):
        for _ in range(20):
            opt.zero_grad()
            mlp_loss(params, lib.tensor(X), lib.tensor(Y), lib).backward()
            opt.step()
        return opt

    tparams = [torch.tensor(v, requires_grad=True) for v in INIT]
    gparams = [Parameter(gradviz.tensor(v)) for v in INIT]
    theirs = _outcome(lambda: tcls(tparams, **kwargs), lambda opt: run(opt, tparams, torch))
    ours = _outcome(lambda: cls(gparams, **kwargs), lambda opt: run(opt, gparams, gradviz))
    assert ours == theirs
    if theirs[0] != "ok":
        return
    topt, gopt = tcls([torch.zeros(1, requires_grad=True)], **kwargs), cls([Parameter(gradviz.zeros(1))], **kwargs)
    assert list(gopt.param_groups[0].items())[1:] == list(topt.param_groups[0].items())[1:]
    for tp, gp in zip(tparams, gparams):
        np.testing.assert_allclose(gp.detach().numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-14)
