"""gradviz.amp against torch.amp on the CPU: same scales, same skipped steps, same float16 numbers."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradviz as gv  # noqa: E402
from gradviz import amp  # noqa: E402
from gradviz.optim import SGD  # noqa: E402

# float16 overflow (and inf * 0 = nan after it) is what these tests provoke
pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


class Lib:
    """The few names a training loop needs, for gradviz and for torch."""

    def __init__(self, name):
        self.name = name
        self.torch = name == "torch"

    def tensor(self, data, requires_grad=False):
        arr = np.asarray(data, dtype=np.float32)
        return (torch if self.torch else gv).tensor(arr, requires_grad=requires_grad)

    def autocast(self):
        return torch.autocast("cpu", dtype=torch.float16) if self.torch else amp.autocast(dtype=gv.float16)

    def scaler(self, **kw):
        return torch.amp.GradScaler("cpu", **kw) if self.torch else amp.GradScaler("cpu", **kw)

    def sgd(self, params, **kw):
        return torch.optim.SGD(params, **kw) if self.torch else SGD(params, **kw)

    def numpy(self, t):
        return t.detach().numpy().copy()


LIBS = [Lib("gradviz"), Lib("torch")]

# Each step: (x, y).  Large x and the scale's own growth overflow float16 on some steps.
DATA = [([[1.0, 0.5]], 1.0), ([[0.5, -1.0]], 0.0), ([[2.0, 1.0]], 3.0), ([[-1.0, 0.25]], 0.5),
        ([[60000.0, 1.0]], 1.0), ([[1.0, 1.0]], 2.0), ([[0.25, 0.5]], -1.0), ([[1.0, -2.0]], 0.0),
        ([[3.0, 0.5]], 1.0), ([[0.5, 0.5]], 0.0), ([[40000.0, 0.0]], 0.0), ([[1.0, 2.0]], 1.0),
        ([[0.125, 1.0]], 0.5), ([[1.0, 0.0]], 1.0)]


def overflow_loop(lib, init_scale, growth_interval=3, growth_factor=2.0, backoff_factor=0.5, momentum=0.9):
    """A linear model run under autocast: x @ w in float16, the squared error in float32."""
    w = lib.tensor([[0.5], [-0.25]], requires_grad=True)
    # NOTE: a power-of-two lr makes lr * buf exact, so PyTorch's fused multiply-add in
    # param.add_(buf, alpha=-lr) and numpy's two roundings agree bit for bit.
    opt = lib.sgd([w], lr=2.0 ** -7, momentum=momentum)
    scaler = lib.scaler(init_scale=init_scale, growth_factor=growth_factor,
                        backoff_factor=backoff_factor, growth_interval=growth_interval)
    scales, skipped, state_sizes = [], [], []
    for x, y in DATA:
        opt.zero_grad()
        with lib.autocast():
            out = lib.tensor(x) @ w
            assert str(out.dtype).endswith("float16")
            loss = ((out.float() - y) ** 2).mean()
        scaler.scale(loss).backward()
        scale_before, w_before = scaler.get_scale(), lib.numpy(w)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        skipped.append(scaler.get_scale() < scale_before)    # the portable test for a skipped step
        assert np.array_equal(lib.numpy(w), w_before) == skipped[-1]
        if not lib.torch:
            assert scaler.last_step_skipped() == skipped[-1]
        state_sizes.append(len(opt.state))
    return scales, skipped, state_sizes, lib.numpy(w), scaler.state_dict(), opt


@pytest.mark.parametrize("init_scale", [2.0 ** 16, 2.0 ** 10, 4.0])
def test_overflow_loop_matches_torch(init_scale):
    ours = overflow_loop(LIBS[0], init_scale)
    ref = overflow_loop(LIBS[1], init_scale)
    assert ours[0] == ref[0], "scale sequence"
    assert ours[1] == ref[1], "skipped steps"
    assert ours[2] == ref[2], "optimizer state created only by a step taken"
    np.testing.assert_array_equal(ours[3], ref[3])
    assert ours[4] == ref[4], "state_dict"
    buf_ours = ours[5].state[ours[5].param_groups[0]["params"][0]].get("momentum_buffer")
    buf_ref = ref[5].state[ref[5].param_groups[0]["params"][0]].get("momentum_buffer")
    if buf_ref is None:
        assert buf_ours is None
    else:
        np.testing.assert_array_equal(buf_ours, buf_ref.numpy())


def test_the_loop_exercises_skips_growth_and_a_skipped_first_step():
    scales, skipped, state_sizes, *_ = overflow_loop(LIBS[0], 2.0 ** 16)
    assert skipped[0] and state_sizes[0] == 0          # 2**16 is inf in float16
    assert sum(skipped) >= 3 and any(b > a for a, b in zip(scales, scales[1:]))


def test_odd_factors_round_like_torch():
    """growth 1.7 / backoff 0.3: float64 products stored as float32, as in PyTorch's kernel."""
    ours = overflow_loop(LIBS[0], 3000.0, growth_interval=2, growth_factor=1.7, backoff_factor=0.3)
    ref = overflow_loop(LIBS[1], 3000.0, growth_interval=2, growth_factor=1.7, backoff_factor=0.3)
    assert ours[0] == ref[0] and ours[1] == ref[1]
    np.testing.assert_array_equal(ours[3], ref[3])


@pytest.mark.parametrize("lib", LIBS, ids=lambda lib: lib.name)
@pytest.mark.parametrize("init_scale", [None, 2.0 ** 16])
def test_underflow_matches_torch_bit_for_bit(lib, init_scale):
    def grad(lib):
        w = lib.tensor([[0.5]], requires_grad=True)
        with lib.autocast():
            loss = 1e-4 * (lib.tensor([[1e-4]]) @ w).float().sum()
        if init_scale is None:
            loss.backward()
        else:
            scaler = lib.scaler(init_scale=init_scale)
            scaler.scale(loss).backward()
            scaler.unscale_(lib.sgd([w], lr=0.1))
        return lib.numpy(w.grad)

    g = grad(lib)
    np.testing.assert_array_equal(g, grad(LIBS[1]))
    assert (g[0, 0] == 0.0) == (init_scale is None)


def test_autocast_dtypes_match_torch():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 3), dtype=np.float32) + 0.5, rng.random((3, 3), dtype=np.float32) + 0.5
    ops = {"matmul": lambda p, q: p @ q, "add": lambda p, q: p + q, "mul": lambda p, q: p * q,
           "div": lambda p, q: p / q, "pow": lambda p, q: p ** 2, "exp": lambda p, q: p.exp(),
           "log": lambda p, q: p.log(), "tanh": lambda p, q: p.tanh(), "sigmoid": lambda p, q: p.sigmoid(),
           "relu": lambda p, q: p.relu(), "sum": lambda p, q: p.sum(), "mean": lambda p, q: p.mean(),
           "softmax": lambda p, q: p.softmax(1), "log_softmax": lambda p, q: p.log_softmax(1),
           "half_sum": lambda p, q: p.half().sum(), "half_tanh": lambda p, q: p.half().tanh(),
           "half_log_softmax": lambda p, q: p.half().log_softmax(1)}
    for name, op in ops.items():
        with amp.autocast(dtype=gv.float16):
            ours = op(gv.tensor(a), gv.tensor(b))
        with torch.autocast("cpu", dtype=torch.float16):
            ref = op(torch.tensor(a), torch.tensor(b))
        assert str(ours.dtype) == str(ref.dtype).removeprefix("torch."), name
        np.testing.assert_allclose(ours.detach().numpy().astype(np.float64), ref.numpy().astype(np.float64),
                                   rtol=2e-3, err_msg=name)


def test_matmul_values_and_grads_match_torch_in_float16():
    rng = np.random.default_rng(1)
    x, w0 = rng.standard_normal((4, 8), dtype=np.float32), rng.standard_normal((8, 3), dtype=np.float32)
    grads, outs = [], []
    for lib in LIBS:
        w = lib.tensor(w0, requires_grad=True)
        with lib.autocast():
            out = lib.tensor(x) @ w
            (out.tanh() * out).float().sum().backward()
        outs.append(lib.numpy(out))
        grads.append(lib.numpy(w.grad))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(grads[0], grads[1])


def test_state_dict_keys_match_torch():
    ours, ref = amp.GradScaler(), torch.amp.GradScaler("cpu")
    assert ours.state_dict() == ref.state_dict()
    assert amp.GradScaler(enabled=False).state_dict() == {} == \
        torch.amp.GradScaler("cpu", enabled=False).state_dict()
