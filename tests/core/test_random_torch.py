"""gradviz's random streams against torch's CPU generator: the same seed, the same numbers, bit for bit.

Every function x dtype x size x seed is compared exactly (``np.array_equal`` on the values, and each
case draws twice, then a tail of ``randn(5)``, so a draw that consumed one word too many or too few
fails too). "default" is a fresh ``Generator()`` on both sides, passed as ``generator=``: torch's
*global* generator starts from a new seed in each process (test_fresh_processes_...).

Where torch's own builds differ: the normal kernel for 16 or more float32 values has an AVX2
version (polynomial log and sincos in float32, with fused multiply-adds) and a scalar one (the C
library's logf, cosf, sinf); on the same seed they differ in about 39% of the values, by up to
2e-6. On x86-64 with AVX2, torch runs the first (its AVX512 build has no normal kernel of its own);
with ``ATEN_CPU_CAPABILITY=default``, the second, and its uniform and small-normal ``a * b + c`` are
then rounded twice instead of fused. gradviz picks the same kernel as torch by the same rule; the
in-process tests cover the machine's build, ``test_default_build_matches_torchs_default_build`` the
other one, with both libraries in a subprocess under ``ATEN_CPU_CAPABILITY=default``.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradviz as gv  # noqa: E402
from gradviz import random as R  # noqa: E402
from gradviz.nn import init  # noqa: E402
from gradviz.scenario import bundled_path, load  # noqa: E402
from gradviz.training.build import build_model, prepare  # noqa: E402

SEEDS = [0, 1, 12345, 2**40 + 3, "default"]
SIZES = [0, 1, 3, 15, 16, 17, 100, 1000, (7, 9)]
F16, F32, F64, I64 = ((np.float16, torch.float16), (np.float32, torch.float32), (np.float64, torch.float64),
                      (np.int64, torch.int64))
BF16 = [(gv.bfloat16, torch.bfloat16)] if hasattr(gv, "bfloat16") else []


def _gv_empty(size, dtype):
    return gv.zeros(size, dtype=dtype)


# name -> (dtypes, gradviz draw, torch draw); each draw is (size, dtype, generator) -> array
FUNCTIONS = {
    "randn": ([F32, F64, F16, *BF16], lambda s, d, g: gv.randn(s, dtype=d, generator=g),
              lambda s, d, g: torch.randn(s, dtype=d, generator=g)),
    "rand": ([F32, F64, F16, *BF16], lambda s, d, g: gv.rand(s, dtype=d, generator=g),
             lambda s, d, g: torch.rand(s, dtype=d, generator=g)),
    "normal_": ([F32, F64, F16, *BF16], lambda s, d, g: _gv_empty(s, d).normal_(0.3, 2.7, generator=g),
                lambda s, d, g: torch.empty(s, dtype=d).normal_(0.3, 2.7, generator=g)),
    "uniform_": ([F32, F64, F16, *BF16], lambda s, d, g: _gv_empty(s, d).uniform_(-0.37, 2.3, generator=g),
                 lambda s, d, g: torch.empty(s, dtype=d).uniform_(-0.37, 2.3, generator=g)),
    "randint": ([I64, F32, F64], lambda s, d, g: gv.randint(-5, 17, s, dtype=d, generator=g),
                lambda s, d, g: torch.randint(-5, 17, s, dtype=d, generator=g)),
    "randint_wide": ([I64, F64], lambda s, d, g: gv.randint(-5, 2**40, s, dtype=d, generator=g),
                     lambda s, d, g: torch.randint(-5, 2**40, s, dtype=d, generator=g)),
    "randperm": ([I64], lambda s, d, g: gv.randperm(math.prod(_shape(s)), generator=g),
                 lambda s, d, g: torch.randperm(math.prod(_shape(s)), generator=g)),
}
CASES = [pytest.param(name, pair, size, seed, id=f"{name}-{np.dtype(pair[0]).name}-{size}-{seed}")
         for name, (dtypes, _, _) in FUNCTIONS.items() for pair in dtypes for size in SIZES for seed in SEEDS]


def _shape(size):
    return size if isinstance(size, tuple) else (size,)


def seeded(seed):
    """(gradviz generator, torch generator) for a seed: None, None after seeding the global ones."""
    if seed == "default":
        return gv.Generator(), torch.Generator()
    gv.manual_seed(seed)
    torch.manual_seed(seed)
    return None, None


def same(a, b) -> bool:
    a = np.asarray(a.data if isinstance(a, gv.Tensor) else a)
    if b.dtype == torch.bfloat16:          # numpy has no bfloat16 of its own: compare the values in float32
        return a.dtype.name == "bfloat16" and np.array_equal(a.astype(np.float32), b.detach().float().numpy())
    b = b.detach().numpy()
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("name, pair, size, seed", CASES)
def test_same_numbers_as_torch(name, pair, size, seed):
    (gv_dtype, torch_dtype), (_, gv_draw, torch_draw) = pair, FUNCTIONS[name]
    g, t = seeded(seed)
    shape = _shape(size)
    for _ in range(2):
        ours, theirs = gv_draw(shape, gv_dtype, g), torch_draw(shape, torch_dtype, t)
        assert same(ours, theirs), (ours, theirs)
    assert same(gv.randn(5, generator=g), torch.randn(5, generator=t))


def test_the_textbook_triple():
    gv.manual_seed(0)
    torch.manual_seed(0)
    x = gv.randn(3)
    assert same(x, torch.randn(3))
    np.testing.assert_allclose(x.data, [1.5410, -0.2934, -2.1788], atol=5e-5)


def test_kept_normal_sample_across_calls_as_torch():
    """Box-Muller's second sample waits in the generator between small draws; draws of 16 or more,
    other functions and other dtypes leave it there; manual_seed drops it."""
    steps = [("randn", 1, F32), ("randn", 20, F32), ("randn", 1, F64), ("rand", 3, F32), ("randn", 5, F64),
             ("normal_", 2, F32), ("randint", 4, I64), ("randn", 1, F16), ("randn", 16, F64), ("randn", 3, F32)]
    g, t = seeded(7)
    for name, n, (gv_dtype, torch_dtype) in steps:
        _, gv_draw, torch_draw = FUNCTIONS[name]
        assert same(gv_draw((n,), gv_dtype, g), torch_draw((n,), torch_dtype, t)), name
    gv.randn(1)
    torch.randn(1)
    seeded(7)
    assert same(gv.randn(2), torch.randn(2))


def test_generators_are_independent_of_the_global_stream():
    seeded(3)
    g, t = gv.Generator().manual_seed(99), torch.Generator().manual_seed(99)
    for n in (1, 17, 2, 40):
        assert same(gv.randn(n), torch.randn(n))
        assert same(gv.randn(n, generator=g), torch.randn(n, generator=t))
        assert same(gv.rand(n, generator=g), torch.rand(n, generator=t))
    assert g.initial_seed() == t.initial_seed() == 99


def test_state_is_torchs_byte_for_byte():
    seeded(5)
    for draw in (lambda lib: lib.randn(3), lambda lib: lib.randn(37), lambda lib: lib.randperm(10)):
        draw(gv), draw(torch)
        np.testing.assert_array_equal(gv.get_rng_state(), torch.get_rng_state().numpy())
    gv.set_rng_state(torch.get_rng_state())                 # torch's state continues here
    assert same(gv.randn(19, dtype=gv.float64), torch.randn(19, dtype=torch.float64))
    torch.set_rng_state(torch.from_numpy(gv.get_rng_state()))     # and ours there
    assert same(gv.randn(1), torch.randn(1))
    np.testing.assert_array_equal(gv.Generator().get_state(), torch.Generator().get_state().numpy())


def test_fresh_processes_start_from_a_new_seed_and_follow_it():
    """torch 2.x seeds its global generator from /dev/urandom: no fixed default to match. gradviz does
    the same, and its never-seeded stream is the one torch gives for gradviz's initial_seed()."""
    code = ("import gradviz, torch; s = gradviz.initial_seed(); a = gradviz.randn(50).numpy(); "
            "print(torch.initial_seed(), s, end=' '); torch.manual_seed(s); "
            "print((a == torch.randn(50).numpy()).all())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    (torch_1, gv_1, follows_1), (torch_2, gv_2, follows_2) = runs
    assert torch_1 != torch_2 and gv_1 != gv_2 and str(R.DEFAULT_SEED) not in (torch_1, torch_2, gv_1, gv_2)
    assert follows_1 == follows_2 == "True"


@pytest.mark.parametrize("n", [1, 2, 10, 1000, 100_000])
@pytest.mark.parametrize("seed", [0, 12345, "default"])
def test_randperm_small_and_large(n, seed):
    g, t = seeded(seed)
    assert same(gv.randperm(n, generator=g), torch.randperm(n, generator=t))


@pytest.mark.parametrize("n", [1, 5, 200, 10_000])
def test_sampler_order_is_random_samplers(n):
    """DataLoader(shuffle=True)'s order, epoch after epoch, with and without a generator."""
    from torch.utils.data import RandomSampler
    seeded(2024)
    sampler = RandomSampler(range(n))
    for _ in range(3):
        assert R.random_sampler_order(n).tolist() == list(sampler)
    g, t = gv.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    sampler = RandomSampler(range(n), generator=t)
    for _ in range(2):
        assert R.random_sampler_order(n, generator=g).tolist() == list(sampler)
    assert same(gv.randn(4), torch.randn(4))               # the global streams are still in step


@pytest.mark.parametrize("in_features, out_features", [(3, 4), (256, 256), (1, 1), (2, 16), (784, 128)])
@pytest.mark.parametrize("pair", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
def test_linear_init_is_torchs(in_features, out_features, pair, seed):
    seeded(seed)
    ours = gv.nn.Linear(in_features, out_features, dtype=pair[0])
    theirs = torch.nn.Linear(in_features, out_features, dtype=pair[1])
    assert same(ours.weight, theirs.weight) and same(ours.bias, theirs.bias)
    ours.reset_parameters()
    theirs.reset_parameters()
    assert same(ours.weight, theirs.weight) and same(ours.bias, theirs.bias)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_a_layers_scenario_starts_from_torchs_initial_weights(precision):
    """The two-moons MLP, built by the Session's own code, equals the same nn.Sequential under torch."""
    scenario = load(bundled_path("07_mlp_two_moons"))
    scenario.loop.precision = precision
    model = build_model(prepare(scenario))
    torch.manual_seed(scenario.seed)
    dtype = getattr(torch, precision)
    sizes = scenario.model.layers
    layers = []
    for i in range(len(sizes) - 1):
        layers += [torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dtype), torch.nn.Tanh()]
    theirs = dict(torch.nn.Sequential(*layers[:-1]).named_parameters())
    assert model.names == list(theirs)
    for name, p in zip(model.names, model.params):
        assert same(p, theirs[name]), name


INITS = [
    ("uniform_", dict(a=-0.2, b=0.7)), ("normal_", dict(mean=0.1, std=0.02)),
    ("xavier_uniform_", dict(gain=1.3)), ("xavier_normal_", {}),
    ("kaiming_uniform_", dict(a=math.sqrt(5))), ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", dict(nonlinearity="tanh")),
]


@pytest.mark.parametrize("fn, kwargs", INITS, ids=[f"{f}{sorted(k)}" for f, k in INITS])
@pytest.mark.parametrize("shape", [(3, 5), (64, 32), (16, 4, 3)])
@pytest.mark.parametrize("pair", [F32, F64], ids=["float32", "float64"])
def test_nn_init_is_torchs(fn, kwargs, shape, pair):
    seeded(31)
    ours = getattr(init, fn)(gv.nn.Parameter(gv.zeros(shape, dtype=pair[0])), **kwargs)
    theirs = getattr(torch.nn.init, fn)(torch.nn.Parameter(torch.zeros(shape, dtype=pair[1])), **kwargs)
    assert same(ours, theirs)


DEFAULT_BUILD = """
import numpy as np, torch, gradviz as gv
from gradviz import random as R
assert R._TORCH_KERNELS == "default" and torch.backends.cpu.get_cpu_capability() == "DEFAULT"
bad = []
for gvd, td in [(np.float32, torch.float32), (np.float64, torch.float64), (np.float16, torch.float16)]:
    for n in [1, 3, 15, 16, 17, 100, 1000, 20000]:
        gv.manual_seed(1); torch.manual_seed(1)
        for name, a, b in [
                ("randn", gv.randn(n, dtype=gvd), torch.randn(n, dtype=td)),
                ("normal_", gv.zeros(n, dtype=gvd).normal_(0.3, 2.5), torch.empty(n, dtype=td).normal_(0.3, 2.5)),
                ("uniform_", gv.zeros(n, dtype=gvd).uniform_(-2.0, 0.7), torch.empty(n, dtype=td).uniform_(-2.0, 0.7))]:
            if not np.array_equal(a.numpy(), b.numpy()):
                bad.append((name, n, gvd.__name__))
print(bad)
"""


@pytest.mark.skipif(R._TORCH_KERNELS == "other", reason="torch's x86-64 default build only exists on x86-64")
def test_default_build_matches_torchs_default_build():
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    out = subprocess.run([sys.executable, "-c", DEFAULT_BUILD], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"
