"""Integer and bool tensors against PyTorch: result dtypes, values and errors of the op table.

Floating ops on integer tensors give the default dtype, float32, as PyTorch's do (numpy would give
float64).  Values are compared exactly, except where the float32 value comes from a different
libm: gradviz computes float32 ``exp``/``tanh``/``log`` in float64 and rounds once, torch uses
SLEEF's vectorised float32 kernels (within 1 ulp); they may differ by 1 ulp.  ``sigmoid`` is
``1 / (1 + exp(-x))`` in float32 on both sides around that exp, and measured up to 2 ulps apart.
``sqrt`` of an integer tensor is 1 ulp off the correctly rounded float32 in torch (sqrt(19):
4.3588986 where float32 sqrt gives 4.358899); not explained, allowed 1 ulp.
"""
import numpy as np
import pytest

import gradviz

torch = pytest.importorskip("torch")

INTS = np.arange(-60, 61)                     # a few hundred cases with the shapes below
POSITIVE = np.arange(1, 241)

UNARY = {
    "exp": (lambda L, x: x.exp(), POSITIVE % 20 - 10, 1),
    "log": (lambda L, x: x.log(), POSITIVE, 1),
    "sqrt": (lambda L, x: x.sqrt(), POSITIVE, 1),
    "tanh": (lambda L, x: x.tanh(), INTS % 9 - 4, 1),
    "sigmoid": (lambda L, x: x.sigmoid(), INTS % 30 - 15, 2),
    "reciprocal": (lambda L, x: x.reciprocal(), POSITIVE, 0),
    "abs": (lambda L, x: x.abs(), INTS, 0),
    "neg": (lambda L, x: -x, INTS, 0),
    "relu": (lambda L, x: x.relu(), INTS, 0),
    "clamp": (lambda L, x: x.clamp(-3, 5), INTS, 0),
    "square": (lambda L, x: x ** 2, INTS, 0),
    "pow_float": (lambda L, x: x ** 0.5, POSITIVE, 1),      # powf here, sqrt in torch
    "sum": (lambda L, x: x.sum(), INTS, 0),
    "max": (lambda L, x: x.max(), INTS, 0),
    "true_div": (lambda L, x: x / 7, INTS, 0),
    "true_div_tensor": (lambda L, x: x / L.tensor(7), INTS, 0),
    "mul_float": (lambda L, x: x * 0.1, INTS, 0),
    "add_float": (lambda L, x: x + 0.1, INTS, 0),
    "add_int": (lambda L, x: x + 3, INTS, 0),
    "mul_float_tensor": (lambda L, x: x * L.tensor([0.5]), INTS, 0),
    "rsub_float": (lambda L, x: 1.5 - x, INTS, 0),
    "int_pow_int_tensor": (lambda L, x: x ** L.tensor(2), INTS, 0),
}
DTYPES = ["int64", "bool", "int64_0d"]


def _value(L, fn, data, dtype_name):
    if dtype_name == "bool":
        x = L.tensor(data % 2 == 0)
    elif dtype_name == "int64_0d":
        x = L.tensor(int(data[len(data) // 3]))
    else:
        x = L.tensor(data)
    out = fn(L, x)
    return out


def _ulps32(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_op_on_integer_or_bool_tensor_matches_torch(name, dtype_name):
    fn, data, ulps = UNARY[name]
    try:
        expected = _value(torch, fn, data, dtype_name)
    except NotImplementedError:
        pytest.skip("torch has no kernel for this dtype")
    except RuntimeError as e:
        if dtype_name == "bool":
            pytest.skip("torch refuses this op on bool tensors; gradviz's bool errors are not covered here")
        with pytest.raises(RuntimeError, match=str(e).splitlines()[0][:40].replace("(", r"\(").replace(")", r"\)")):
            _value(gradviz, fn, data, dtype_name)
        return
    ours = _value(gradviz, fn, data, dtype_name)
    assert str(ours.dtype) == str(expected.dtype).removeprefix("torch."), name
    assert tuple(ours.shape) == tuple(expected.shape)
    o, t = ours.numpy(), expected.numpy()
    if o.dtype.kind == "f" and ulps:
        assert _ulps32(o, t).max() <= ulps
    else:
        np.testing.assert_array_equal(o, t)


@pytest.mark.parametrize("L", [gradviz, torch], ids=["gradviz", "torch"])
def test_int_to_negative_int_power_raises(L):
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed."):
        L.tensor([1, 2]) ** -1


def test_int_tensor_to_negative_int_tensor_power_matches_torch():
    a, b = [2, 1, -1, -1, 3, 5, -2], [-1, -3, -3, -2, 2, 0, 3]
    np.testing.assert_array_equal((gradviz.tensor(a) ** gradviz.tensor(b)).numpy(),
                                  (torch.tensor(a) ** torch.tensor(b)).numpy())


def test_float64_scenario_with_exp_and_sqrt_constants_matches_its_exported_script(tmp_path):
    """``exp(1)`` and ``sqrt(2)`` are float32 tensors on both sides (torch.tensor(1.0) in the script);
    their float32 values now have torch's bits, so the float64 run matches at 1e-10."""
    import contextlib
    import io
    import runpy

    from gradviz.codegen import export_torch
    from gradviz.training.session import Session
    from tests.scenario.test_codegen import objective_scenario

    scenario = objective_scenario(steps=20)
    scenario.model.expression = "exp(1) * sum((1 - p)**2) + sqrt(2) * (q - exp(-1) * sum(p**2))**2 + tanh(2) * q"
    path = tmp_path / "script.py"
    path.write_text(export_torch(scenario).source, encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(path), run_name="__main__")
    lines = out.getvalue().strip().splitlines()
    loss_column = lines[0].split(",").index("loss")
    torch_loss = np.array([float(line.split(",")[loss_column]) for line in lines[1:]])
    np.testing.assert_allclose(Session(scenario).run().loss, torch_loss, rtol=1e-10, atol=0)
