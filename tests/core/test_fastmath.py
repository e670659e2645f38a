"""The float32 tanh and exp without libm (gradviz/_fastmath.py) give the float64-then-round bits.

The reference is what the core computed before: numpy's float64 function on the float32 input,
rounded once to float32 (``functions._libm``). The fast path may differ from it only where the
exact value lies within ~2**-45 of a float32 rounding boundary; none of the ~30 million values
below does, so the tests ask for equality.
"""
import functools
import threading
import time

import numpy as np
import pytest

import gradviz as gv
from gradviz import _fastmath
from gradviz._fastmath import exp_f32, tanh_f32
from gradviz.random import _TORCH_KERNELS, _fmaf

# Both paths, whichever this machine picks: the kernel without libm, and numpy's float64 function in
# blocks (taken where numpy vectorizes it, e.g. with AVX-512).
FUNCTIONS = [(f"{name}/{how}", functools.partial(fast, how=how), fn)
             for name, fast, fn in (("tanh", tanh_f32, np.tanh), ("exp", exp_f32, np.exp))
             for how in ("kernel", "libm")]
LARGE = max(_fastmath.MIN_ELEMENTS, _fastmath.MIN_EXP_ELEMENTS)     # both take the fast path from here


def reference(fn, x):
    with np.errstate(over="ignore", invalid="ignore"):
        return fn(x.astype(np.float64)).astype(np.float32)


def same_bits(a, b):
    """Equal bit for bit, any NaN equal to any NaN."""
    return (a.view(np.int32) == b.view(np.int32)) | (np.isnan(a) & np.isnan(b))


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
@pytest.mark.parametrize("scale", [1e-6, 1e-3, 0.05, 1.0, 4.0, 30.0])
def test_equals_float64_rounded_once_on_normal_inputs(name, fast, fn, scale):
    x = (np.random.default_rng(7).standard_normal(1_000_000) * scale).astype(np.float32)
    out = fast(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.count_nonzero(~same_bits(out, reference(fn, x))) == 0


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
@pytest.mark.parametrize("lo, hi", [(0.001, 0.01), (0.0027, 0.0055), (0.01, 0.5), (0.5, 9.0), (-0.01, -0.001)])
def test_equals_where_the_table_step_is_small(name, fast, fn, lo, hi):
    """2x just past ln 2 / 256 takes the first table entry while tanh is still small: there
    ``expm1`` is a difference of two near values, the case a degree-4 polynomial got wrong."""
    x = np.random.default_rng(3).uniform(lo, hi, 1_000_000).astype(np.float32)
    assert np.count_nonzero(~same_bits(fast(x), reference(fn, x))) == 0


def test_tanh_at_its_table_steps_and_clip():
    """tanh reduces x to k/128 + d: the values halfway between two steps (where rounding to a step
    ties), next to each step, and every float32 from 9 to 10.5 (around where tanh rounds to 1 and
    where the table ends), each sign."""
    steps = np.arange(-1280, 1281, dtype=np.float64) / 128
    halfway = (steps[:-1] + 1 / 256).astype(np.float32)
    near = np.concatenate([np.nextafter(halfway, np.float32(np.inf)), np.nextafter(halfway, np.float32(-np.inf)),
                           np.nextafter(steps.astype(np.float32), np.float32(np.inf)),
                           np.nextafter(steps.astype(np.float32), np.float32(-np.inf))])
    bits = np.arange(np.float32(9).view(np.int32), np.float32(10.5).view(np.int32), dtype=np.int32)
    top = bits.view(np.float32)
    x = np.concatenate([halfway, near, steps.astype(np.float32), top, -top])
    assert np.count_nonzero(~same_bits(tanh_f32(x, "kernel"), reference(np.tanh, x))) == 0


def test_every_float32_exponent_from_tiny_to_ten():
    """Every 7th float32 from 2**-10 to 10 (4.5 million of them), each sign."""
    lo, hi = np.float32(2.0 ** -10).view(np.int32), np.float32(10).view(np.int32)
    x = np.arange(lo, hi, 7, dtype=np.int32).view(np.float32)
    x = np.concatenate([x, -x])
    assert np.count_nonzero(~same_bits(tanh_f32(x, "kernel"), reference(np.tanh, x))) == 0


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
def test_equals_on_random_bit_patterns(name, fast, fn):
    """Every exponent: subnormals, huge values, infinities and NaNs among them."""
    x = np.random.default_rng(11).integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert np.count_nonzero(~same_bits(fast(x), reference(fn, x))) == 0


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
def test_special_values(name, fast, fn):
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 88.72, 88.73,
                        -103.9, -104.0, 9.0, -9.0, 3e38, -3e38], np.float32)
    x = np.tile(special, LARGE // special.size + 1)     # large enough for the fast path
    out = fast(x)[:special.size]
    assert same_bits(out, reference(fn, special)).all(), (out, reference(fn, special))
    if name == "tanh":          # the sign of zero survives
        assert np.signbit(out[1]) and not np.signbit(out[0])


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
@pytest.mark.parametrize("shape", [(7,), (_fastmath.MIN_ELEMENTS - 1,), (_fastmath.MIN_ELEMENTS,),
                                   (_fastmath.MIN_EXP_ELEMENTS - 1,), (_fastmath.MIN_EXP_ELEMENTS,),
                                   (_fastmath.BLOCK + 1,), (3, _fastmath.BLOCK + 5), (2, 300, 70)])
def test_shapes_block_edges_and_small_arrays(name, fast, fn, shape):
    x = np.random.default_rng(5).uniform(-6, 6, shape).astype(np.float32)
    out = fast(x)
    assert out.shape == shape and out.dtype == np.float32
    assert same_bits(out, reference(fn, x)).all()


@pytest.mark.parametrize("name, fast, fn", FUNCTIONS)
def test_strided_input(name, fast, fn):
    x = np.random.default_rng(6).uniform(-6, 6, (400, 200)).astype(np.float32)
    view = x[::2, 1::3].T
    assert same_bits(fast(view), reference(fn, view)).all()
    assert same_bits(fast(x), reference(fn, x)).all()        # the input was not changed


def test_threads_have_their_own_scratch_buffers():
    """The run thread and the UI thread may both compute a tanh at once."""
    inputs = [np.random.default_rng(seed).uniform(-5, 5, 3 * _fastmath.BLOCK).astype(np.float32) for seed in range(4)]
    wrong = []

    def work(x):
        want = reference(np.tanh, x)
        for _ in range(10):
            for how in ("kernel", "libm"):
                if not same_bits(tanh_f32(x, how), want).all():
                    wrong.append(how)

    threads = [threading.Thread(target=work, args=(x,)) for x in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


@pytest.mark.parametrize("name", ["tanh", "exp"])
def test_the_faster_path_is_picked(name, monkeypatch):
    """``path`` times both on one block and takes libm only where it is clearly faster; both give the
    same bits, so the choice is about time alone. GRADVIZ_FASTMATH forces one."""
    monkeypatch.delenv("GRADVIZ_FASTMATH", raising=False)
    fn, kernel, minimum = _fastmath._PATHS[name]
    libm = _fastmath._LIBM_BLOCKS[name]

    def slow(block):
        def run(*args):
            time.sleep(0.002)
            block(*args)
        return run

    monkeypatch.setitem(_fastmath._LIBM_BLOCKS, name, slow(libm))
    assert _fastmath._calibrate(name) == "kernel"
    monkeypatch.setitem(_fastmath._LIBM_BLOCKS, name, libm)
    monkeypatch.setitem(_fastmath._PATHS, name, (fn, slow(kernel), minimum))
    assert _fastmath._calibrate(name) == "libm"
    monkeypatch.setenv("GRADVIZ_FASTMATH", "kernel")
    assert _fastmath._calibrate(name) == "kernel"
    assert _fastmath.path(name) in ("kernel", "libm")


@pytest.mark.parametrize("how", ["kernel", "libm"])
def test_either_path_over_the_block_size(how):
    """The libm path in blocks from LIBM_BLOCKED_FROM elements, across block edges."""
    x = np.random.default_rng(8).uniform(-6, 6, _fastmath.LIBM_BLOCKED_FROM + _fastmath.BLOCK + 3).astype(np.float32)
    for fast, fn in ((tanh_f32, np.tanh), (exp_f32, np.exp)):
        assert same_bits(fast(x, how), reference(fn, x)).all()


def test_tensor_ops_use_it_and_keep_the_gradient():
    """``Tensor.tanh``/``exp``/``sigmoid`` on a large float32 tensor: the values are the reference's,
    and the gradient is the rule's formula on them."""
    x = np.random.default_rng(2).uniform(-4, 4, (64, 500)).astype(np.float32)
    for op, fn in (("tanh", np.tanh), ("exp", np.exp)):
        t = gv.tensor(x, requires_grad=True)
        y = getattr(t, op)()
        out = y.detach().numpy()
        assert same_bits(out, reference(fn, x)).all()
        y.sum().backward()
        # tanh: torch's fused 1 - s*s (functions._tanh_bw), where its kernels have FMA
        fused = _TORCH_KERNELS != "default"
        want = (_fmaf(-out, out, np.float32(1)) if fused else 1 - out * out) if op == "tanh" else out
        np.testing.assert_array_equal(t.grad.numpy(), want)
    s = gv.tensor(x).sigmoid().numpy()
    np.testing.assert_array_equal(s, (1 / (1 + reference(np.exp, -x))).astype(np.float32))


def test_float64_and_small_arrays_are_untouched():
    x64 = np.random.default_rng(4).uniform(-4, 4, 50_000)
    np.testing.assert_array_equal(gv.tensor(x64).tanh().numpy(), np.tanh(x64))


def test_torch_bits_as_often_as_before():
    """Against torch's SLEEF kernels: as many equal bits as the float64-then-round path (which the
    fast path equals), that is nearly all; where they differ it is by one ulp: SLEEF's rounding (libm,
    not a defect). How often SLEEF rounds correctly depends on the kernel torch picks for the CPU:
    tanh 99.80 % and exp 98.999 % with AVX2 (AMD EPYC), 99.26 % and 98.92 % with AVX-512 (Xeon)."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(9).uniform(-5, 5, 1_000_000).astype(np.float32)
    for fast, op, reference in ((tanh_f32, torch.tanh, np.tanh), (exp_f32, torch.exp, np.exp)):
        ours, theirs = fast(x), op(torch.from_numpy(x)).numpy()
        rounded = reference(x.astype(np.float64)).astype(np.float32)
        assert np.mean(ours == theirs) == np.mean(rounded == theirs) > 0.985, torch.backends.cpu.get_cpu_capability()
        ulps = np.abs(ours.view(np.int32).astype(np.int64) - theirs.view(np.int32).astype(np.int64))
        assert ulps.max() <= 1
