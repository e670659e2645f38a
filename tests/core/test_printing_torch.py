"""``repr(tensor)`` in gradviz and in PyTorch on the same values: the strings must be identical.

Cases are drawn from one seeded table: shapes (0-d, empty, 1-D to 3-D, over the 1000-element
summarising threshold), dtypes, value kinds (integers in float, tiny, huge, wide ranges that switch
to scientific notation, nan / inf / -0.0) and autograd states (plain, leaf requiring grad, a
non-leaf with its grad_fn, an nn.Parameter); then print options and ``Size``.
"""
import itertools

import numpy as np
import pytest

import gradviz
import gradviz.nn as gnn

torch = pytest.importorskip("torch")

SHAPES = [(), (0,), (3, 0), (1,), (2,), (5,), (17,), (40,), (2, 3), (4, 7), (1, 1), (2, 3, 4), (3, 1, 2),
          (1001,), (30, 40), (3, 400), (11, 11, 11)]
KINDS = ["normal", "ints", "tiny", "huge", "wide", "special", "mixed_sign_small", "zeros", "round"]
FLOATS = ["float32", "float64", "float16"] + (["bfloat16"] if hasattr(gradviz, "bfloat16") else [])
INTS = ["int64", "int32", "bool"]
STATES = ["plain", "requires_grad", "grad_fn", "parameter"]


def values(kind: str, shape: tuple, rng) -> np.ndarray:
    n = int(np.prod(shape))
    if kind == "normal":
        x = rng.normal(size=n)
    elif kind == "ints":
        x = rng.integers(-50, 50, n).astype(np.float64)
    elif kind == "tiny":
        x = rng.normal(size=n) * 1e-6
    elif kind == "huge":
        x = rng.normal(size=n) * 1e9
    elif kind == "wide":
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 5, n)
    elif kind == "special":
        x = rng.normal(size=n)
        picks = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0], n)
        mask = rng.random(n) < 0.4
        x[mask] = picks[mask]
    elif kind == "mixed_sign_small":
        x = rng.uniform(-1, 1, n) * 0.01
    elif kind == "zeros":
        x = np.zeros(n) * rng.choice([1.0, -1.0], n)
    else:                                   # "round": few digits, fixed point
        x = np.round(rng.uniform(-100, 100, n), 2)
    return x.reshape(shape)


def _cases():
    rng = np.random.default_rng(20261206)
    cases = []
    for shape, kind in itertools.product(SHAPES, KINDS):
        for dtype in FLOATS:
            state = STATES[rng.integers(len(STATES))] if shape not in ((0,), (3, 0)) else "plain"
            cases.append((shape, kind, dtype, state, int(rng.integers(1 << 30))))
    for shape, dtype in itertools.product(SHAPES, INTS):
        cases.append((shape, "ints", dtype, "plain", int(rng.integers(1 << 30))))
    return cases


CASES = _cases()


def make(L, arr: np.ndarray, dtype: str, state: str):
    dt = getattr(L, dtype, None) if L is torch else getattr(gradviz, dtype, np.dtype(dtype))
    if dtype == "bool":
        data = arr > 0
    elif dtype in ("int64", "int32"):
        data = np.nan_to_num(arr).astype(np.int64)
    else:
        data = arr
    t = L.tensor(data, dtype=dt)
    if state == "requires_grad":
        t.requires_grad_(True)
    elif state == "grad_fn":
        t = t.requires_grad_(True) * 2
    elif state == "parameter":
        t = (torch.nn.Parameter if L is torch else gnn.Parameter)(t)
    return t


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")      # huge values in float16: inf
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")
@pytest.mark.parametrize("shape,kind,dtype,state,seed", CASES,
                         ids=[f"{'x'.join(map(str, c[0])) or '0d'}-{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_repr_matches_torch(shape, kind, dtype, state, seed):
    arr = values(kind, shape, np.random.default_rng(seed))
    expected = repr(make(torch, arr, dtype, state))
    got = repr(make(gradviz, arr, dtype, state))
    assert got == expected
    assert str(make(gradviz, arr, dtype, state)) == str(make(torch, arr, dtype, state))


OPTIONS = [dict(precision=2), dict(precision=8), dict(sci_mode=True), dict(sci_mode=False), dict(linewidth=40),
           dict(linewidth=120), dict(threshold=5), dict(threshold=5, edgeitems=1), dict(edgeitems=0, threshold=3),
           dict(profile="short"), dict(profile="full"), dict(precision=1, sci_mode=False, linewidth=30)]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
@pytest.mark.parametrize("shape,kind", [((7,), "normal"), ((4, 6), "wide"), ((2, 3, 5), "ints"), ((1200,), "round"),
                                        ((), "huge"), ((12,), "special")])
def test_print_options_match_torch(options, shape, kind):
    arr = values(kind, shape, np.random.default_rng(1))
    try:
        torch.set_printoptions(**options)
        gradviz.set_printoptions(**options)
        for dtype in ("float32", "float64", "int64"):
            assert repr(make(gradviz, arr, dtype, "plain")) == repr(make(torch, arr, dtype, "plain"))
    finally:
        torch.set_printoptions(profile="default")
        gradviz.set_printoptions(profile="default")


def test_get_printoptions_round_trips():
    gradviz.set_printoptions(precision=6)
    try:
        assert gradviz.get_printoptions()["precision"] == 6
    finally:
        gradviz.set_printoptions(profile="default")
    assert gradviz.get_printoptions() == torch._tensor_str.get_printoptions()


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 4), (1, 1, 5)])
def test_size_prints_like_torch_size(shape):
    g, t = gradviz.zeros(shape), torch.zeros(shape)
    assert repr(g.shape) == repr(t.shape) and str(g.size()) == str(t.size())
    assert g.shape == shape and isinstance(g.shape, tuple) and g.shape.numel() == t.shape.numel()
    assert repr(g.shape[1:]) == repr(t.shape[1:])


def test_loss_grad_fn_prints_torchs_name():
    x = gradviz.tensor([[0.5, -1.0]], requires_grad=True)
    loss = gradviz.nn.functional.mse_loss(x, gradviz.tensor([[1.0, 0.0]]))
    tx = torch.tensor([[0.5, -1.0]], requires_grad=True)
    tloss = torch.nn.functional.mse_loss(tx, torch.tensor([[1.0, 0.0]]))
    assert repr(loss) == repr(tloss) == "tensor(0.6250, grad_fn=<MseLossBackward0>)"
