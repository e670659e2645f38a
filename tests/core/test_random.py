"""gradviz.random without torch: the mt19937 engine against its reference values and numpy's own
Mersenne Twister, generators and their state, the fused multiply-adds against exact arithmetic,
and the Tensor / nn.init API around them. (Against torch itself: test_random_torch.py.)
"""
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

import gradviz as gv
from gradviz import random as R
from gradviz.nn import init


# -- the engine ---------------------------------------------------------------------------------
def test_mt19937_reference_output():
    """The C++ standard's check value: std::mt19937 seeded with 5489, 10000th output."""
    assert R._MT19937(5489).random(10000)[-1] == 4123659995


@pytest.mark.parametrize("seed", [0, 1, 5489, 12345, 2**32 - 1])
@pytest.mark.parametrize("pieces", [[1] * 5, [623, 1, 1, 624], [1248, 7], [1, 2000], [3000]])
def test_engine_matches_numpys_mersenne_twister_in_any_pieces(seed, pieces):
    """numpy's legacy RandomState seeds mt19937 the same way (init_genrand); its raw words are the
    reference, however the draws are split across twists."""
    engine = R._MT19937(seed)
    got = np.concatenate([engine.random(n) for n in pieces])
    want = np.random.RandomState(seed)._bit_generator.random_raw(sum(pieces))
    np.testing.assert_array_equal(got, want.astype(np.uint32))


def test_random64_is_two_words_first_high():
    words = R._MT19937(7).random(6).astype(np.uint64)
    np.testing.assert_array_equal(R._MT19937(7).random64(3), (words[0::2] << np.uint64(32)) | words[1::2])


@pytest.mark.parametrize("seed, state_seed, initial", [
    (2**40 + 3, 3, 2**40 + 3),              # the engine keeps the low 32 bits, initial_seed all 64
    (-1, 2**32 - 1, 2**64 - 1),             # negative seeds are taken mod 2**64, as torch does
    (-2**63, 0, 2**63),
    (1.9, 1, 1),                            # int(), as torch.manual_seed
])
def test_seeds_as_torch_reads_them(seed, state_seed, initial):
    g = R.Generator().manual_seed(seed)
    assert g.initial_seed() == initial
    np.testing.assert_array_equal(g._engine.random(5), R._MT19937(state_seed).random(5))


@pytest.mark.parametrize("seed", [2**64, -2**63 - 1])
def test_seeds_out_of_range_raise(seed):
    with pytest.raises(ValueError, match="Overflow"):
        gv.manual_seed(seed)


# -- generators and state -----------------------------------------------------------------------
def test_a_new_generator_starts_from_torchs_default_seed():
    assert R.Generator().initial_seed() == R.DEFAULT_SEED == 67280421310721
    with pytest.raises(RuntimeError, match="CPU"):
        R.Generator("cuda")


def _fresh_process_seed() -> int:
    code = "import gradviz; print(gradviz.initial_seed())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_global_generator_starts_from_a_new_seed_each_process():
    """As torch 2.x: the default generator is seeded from the OS, not from a fixed number."""
    first, second = _fresh_process_seed(), _fresh_process_seed()
    assert first != second and R.DEFAULT_SEED not in (first, second)


def test_seed_reseeds_and_returns_the_seed():
    s = gv.seed()
    assert gv.initial_seed() == s and 0 <= s < 2**64
    a = gv.randn(20)
    gv.manual_seed(s)
    np.testing.assert_array_equal(gv.randn(20).numpy(), a.numpy())


def test_manual_seed_returns_the_one_default_generator():
    g = gv.manual_seed(3)
    assert g is gv.default_generator is R.default_generator and g.initial_seed() == 3


def test_a_generator_object_leaves_the_global_stream_alone():
    gv.manual_seed(0)
    expected = gv.randn(40).numpy()
    gv.manual_seed(0)
    g = gv.Generator().manual_seed(0)
    own = gv.randn(40, generator=g).numpy()
    np.testing.assert_array_equal(own, expected)            # same seed, same stream
    np.testing.assert_array_equal(gv.randn(40).numpy(), expected)     # the global one did not move


@pytest.mark.parametrize("draw", [lambda: gv.randn(3), lambda: gv.randn(40), lambda: gv.rand(7, dtype=gv.float64),
                                  lambda: gv.randperm(30), lambda: gv.randint(0, 2**40, (5,))])
def test_state_saves_and_restores(draw):
    gv.manual_seed(11)
    gv.randn(1)                                  # leaves the second Box-Muller sample cached
    state = gv.get_rng_state()
    assert state.dtype == np.uint8 and state.shape == (5056,)
    first = draw().numpy().copy()
    gv.set_rng_state(state)
    np.testing.assert_array_equal(draw().numpy(), first)
    gv.set_rng_state(state)
    np.testing.assert_array_equal(gv.get_rng_state(), state)


def test_bad_states_raise():
    with pytest.raises(RuntimeError, match="size 5056"):
        gv.set_rng_state(np.zeros(10, np.uint8))
    with pytest.raises(RuntimeError, match="Invalid mt19937 state"):
        gv.set_rng_state(np.zeros(5056, np.uint8))           # seeded = 0, left = 0


def test_second_normal_sample_is_kept_between_small_draws():
    gv.manual_seed(0)
    pair = gv.randn(2, dtype=gv.float64).numpy()
    gv.manual_seed(0)
    np.testing.assert_array_equal(np.concatenate([gv.randn(1, dtype=gv.float64).numpy(),
                                                  gv.randn(1, dtype=gv.float64).numpy()]), pair)
    gv.manual_seed(0)
    gv.randn(1)
    gv.manual_seed(0)                            # reseeding drops the kept sample
    np.testing.assert_array_equal(gv.randn(2, dtype=gv.float64).numpy(), pair)


def test_sixteen_or_more_leave_the_kept_sample_alone():
    gv.manual_seed(0)
    a = gv.randn(1).numpy()
    gv.randn(16)
    b = gv.randn(1).numpy()
    gv.manual_seed(0)
    np.testing.assert_array_equal(np.concatenate([a, b]), gv.randn(2).numpy())


# -- fused multiply-add, against exact arithmetic ---------------------------------------------------
def _ties32():
    """Products that land exactly half-way between two float32, plus a tiny c either side."""
    a = np.float32(1 + 2**-12)
    return [(a, a, np.float32(s * 2**-60)) for s in (1, -1, 0)] + [(a, -a, np.float32(s * 2**-70)) for s in (1, -1)]


def test_fmaf_rounds_once():
    """Including the products that land half-way between two float32 (rounding twice, through
    float64, would get those wrong)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4000)).astype(np.float32)
    c = (rng.standard_normal(4000) * 10.0 ** rng.integers(-12, 4, 4000)).astype(np.float32)
    cases = list(zip(a, b, c)) + _ties32()
    for x, y, z in cases:
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        assert R._fmaf(np.array([x]), np.array([y]), np.array([z]))[0] == _nearest32(exact), (x, y, z)


def _nearest32(exact: Fraction) -> np.float32:
    """float32 nearest to an exact rational (ties to even), without going through float64."""
    f = np.float32(float(exact))
    lo, hi = sorted([f, np.nextafter(f, np.float32(np.inf) if Fraction(float(f)) < exact else np.float32(-np.inf))])
    dlo, dhi = exact - Fraction(float(lo)), Fraction(float(hi)) - exact
    if dlo != dhi:
        return lo if dlo < dhi else hi
    return lo if (lo.view(np.int32) & 1) == 0 else hi


def test_fma_float64_rounds_once():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3000))
    c = rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000)
    c[:1000] = -(a[:1000] * b[:1000])                    # cancellation: the product's rounding error shows
    got = R._fma(a, b, c)
    for i in range(3000):
        assert got[i] == float(Fraction(a[i]) * Fraction(b[i]) + Fraction(c[i])), i


# -- the Tensor and nn.init API --------------------------------------------------------------------
@pytest.mark.parametrize("make, dtype", [
    (lambda: gv.randn(2, 3), np.float32), (lambda: gv.rand((4,)), np.float32),
    (lambda: gv.randn(3, dtype=gv.float64), np.float64), (lambda: gv.randint(10, (3,)), np.int64),
    (lambda: gv.randint(-3, 3, (2, 2)), np.int64), (lambda: gv.randint(5, (3,), dtype=gv.float32), np.float32),
    (lambda: gv.randperm(5), np.int64), (lambda: gv.randn(()), np.float32),
])
def test_factory_dtypes_are_torchs(make, dtype):
    assert make().dtype == dtype


def test_randint_forms_and_range():
    gv.manual_seed(0)
    a = gv.randint(7, (200,)).numpy()
    gv.manual_seed(0)
    np.testing.assert_array_equal(gv.randint(0, 7, (200,)).numpy(), a)
    gv.manual_seed(0)
    np.testing.assert_array_equal(gv.randint(high=7, size=(200,)).numpy(), a)
    assert a.min() >= 0 and a.max() < 7
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        gv.randint(5, 5, (2,))


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000])
def test_randperm_and_sampler_order_are_permutations(n):
    assert sorted(gv.randperm(n).numpy().tolist()) == list(range(n))
    assert sorted(R.random_sampler_order(n).tolist()) == list(range(n))


@pytest.mark.parametrize("call, message", [
    (lambda: gv.zeros(3).normal_(0, -1), "std >= 0.0"),
    (lambda: gv.zeros(3).uniform_(2, 1), r"\[from, to\) range"),
    (lambda: gv.zeros(3, dtype=gv.int64).uniform_(), "'Long'"),
    (lambda: gv.randn(3, dtype=gv.int64), '"normal_kernel_cpu" not implemented for \'Long\''),
    (lambda: gv.rand(3, dtype=gv.int64), '"check_uniform_bounds" not implemented for \'Long\''),
    (lambda: gv.zeros(3, requires_grad=True).normal_(), "leaf Variable that requires grad"),
])
def test_inplace_fills_raise_as_torch(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def test_inplace_fills_keep_the_tensor_and_dtype():
    t = gv.zeros(2, 3, dtype=gv.float64)
    arr = t.numpy()
    assert t.uniform_(-1, 1) is t and t.dtype == np.float64
    assert np.all((arr >= -1) & (arr < 1) & (arr != 0))          # written into the same storage
    with gv.no_grad():
        p = gv.zeros(4, requires_grad=True).normal_(3.0, 0.5)
    assert p.requires_grad and p.is_leaf


def test_init_functions_fill_in_place_with_their_bounds():
    w = gv.nn.Parameter(gv.zeros(64, 32))
    assert init.kaiming_uniform_(w, a=5**0.5) is w
    assert np.abs(w.detach().numpy()).max() <= 1 / 32**0.5
    init.xavier_uniform_(w)
    assert np.abs(w.detach().numpy()).max() <= (6 / 96) ** 0.5
    init.zeros_(w)
    assert not w.detach().numpy().any()
    init.ones_(w)
    assert np.all(w.detach().numpy() == 1)
    init.constant_(w, 0.25)
    assert np.all(w.detach().numpy() == 0.25)
    assert init.calculate_gain("relu") == 2**0.5 and init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(gv.zeros(3))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_linear_draws_weight_then_bias_from_the_stream():
    gv.manual_seed(4)
    layer = gv.nn.Linear(5, 3)
    gv.manual_seed(4)
    w = gv.zeros(3, 5)
    with gv.no_grad():
        init.kaiming_uniform_(w, a=5**0.5)
        b = gv.zeros(3).uniform_(-1 / 5**0.5, 1 / 5**0.5)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), w.detach().numpy())
    np.testing.assert_array_equal(layer.bias.detach().numpy(), b.numpy())
