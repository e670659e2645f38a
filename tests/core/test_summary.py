"""A trace keeps a very large array as an ArraySummary (issue 12, memory at the limits): its statistics
are those of every element, its first rows and its evenly spaced grid are the array's own, it refuses
to pass for an array, and a trace of a 100,000-point layer holds megabytes, not a gigabyte."""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gradviz as gv
from gradviz import summary
from gradviz import trace as T
from gradviz._dtypes import bfloat16
from gradviz.summary import ArraySummary, grid_indices


def numpy_stats(a):
    x = np.asarray(a, dtype=np.float64).ravel()
    f = x[np.isfinite(x)]
    return x.mean(), f.mean(), f.min(), f.max(), int(np.isnan(x).sum()), int(np.isinf(x).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64])
def test_statistics_are_those_of_every_element(dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3000, 40)) * 5).astype(dtype)
    s = ArraySummary.of(a)
    mean, fmean, lo, hi, nan, inf = numpy_stats(a)
    assert s.shape == (3000, 40) and s.size == a.size and s.ndim == 2 and s.dtype == a.dtype
    assert s.mean == pytest.approx(mean, rel=1e-12, abs=1e-12)
    assert s.finite_mean == pytest.approx(fmean, rel=1e-12, abs=1e-12)
    assert (s.min, s.max, s.nan, s.inf) == (lo, hi, nan, inf)


def test_nan_and_inf_are_counted_and_left_out_of_min_mean_max():
    a = np.arange(3_000_000, dtype=np.float32).reshape(1000, 3000) / 1e6
    a[5, 7] = np.nan
    a[999, 2999] = np.inf
    a[400, 0] = -np.inf
    a[0, 1] = np.nan
    s = ArraySummary.of(a)
    mean, fmean, lo, hi, nan, inf = numpy_stats(a)
    assert math.isnan(s.mean) and math.isnan(mean)            # as numpy.mean: a nan anywhere
    assert s.finite_mean == pytest.approx(fmean, rel=1e-12)
    assert (s.min, s.max, s.nan, s.inf) == (lo, hi, 2, 2)


@pytest.mark.skipif(bfloat16 is None, reason="ml_dtypes not installed")
def test_bfloat16():
    a = np.linspace(-3, 5, 20_000, dtype=np.float32).astype(bfloat16).reshape(200, 100)
    s = ArraySummary.of(a)
    mean, fmean, lo, hi, _, _ = numpy_stats(a)
    assert s.mean == pytest.approx(mean, rel=1e-12) and (s.min, s.max) == (lo, hi)


def test_head_rows_and_grid_are_the_arrays_own():
    a = np.random.default_rng(1).standard_normal((100_000, 256)).astype(np.float32)
    s = ArraySummary.of(a)
    rows = summary.HEAD_ELEMENTS // 256
    assert s.head_rows == rows and np.array_equal(s.head, a[:rows])
    assert np.array_equal(s.grid, a[np.ix_(grid_indices(100_000), grid_indices(256))])
    assert s.grid.shape == (256, 256) and grid_indices(100_000)[[0, -1]].tolist() == [0, 99_999]
    assert s[3, 7] == a[3, 7] and np.array_equal(s[rows - 1], a[rows - 1])
    with pytest.raises(IndexError, match=f"row {rows} of an array of shape \\(100000, 256\\) is not kept"):
        s[rows, 0]
    assert s.kept((rows - 1, 255)) and not s.kept((rows, 0))
    assert s.nbytes < 600_000                     # 256 rows + the 256 x 256 grid, at float32


def test_more_dimensions_fold_into_rows_of_the_last_as_the_heat_map_does():
    a = np.arange(2 * 3000 * 300, dtype=np.float64).reshape(2, 3000, 300)
    s = ArraySummary.of(a)
    folded = a.reshape(-1, 300)
    assert np.array_equal(s.grid, folded[np.ix_(grid_indices(6000), grid_indices(300))])
    assert s.head_rows == 1 and np.array_equal(s.head, a[:1])     # one "row" is 900,000 elements


def test_it_does_not_pass_for_an_array():
    s = ArraySummary.of(np.ones((2000, 600), dtype=np.float32))
    with pytest.raises(TypeError, match="keeps a summary, not the elements"):
        np.asarray(s)
    with pytest.raises(TypeError):
        np.mean(s)
    assert np.shape(s) == (2000, 600) and np.size(s) == 1_200_000 and np.ndim(s) == 2 and len(s) == 2000


def test_filled_and_sum():
    s = ArraySummary.filled((5000, 300), np.float32, 0.0)
    assert (s.mean, s.min, s.max, s.nan, s.inf) == (0.0, 0.0, 0.0, 0, 0)
    assert s.head.shape == (summary.HEAD_ELEMENTS // 300, 300) and not s.head.any()
    assert s.grid.shape == (256, 256)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 5000, 300))
    total = ArraySummary.of(a) + ArraySummary.of(b)
    assert total.mean == pytest.approx((a + b).mean(), rel=1e-9)
    assert np.array_equal(total.head, (a + b)[:total.head_rows]) and total.min is None


def test_keep_leaves_small_arrays_alone_and_copies_only_when_asked():
    small = np.ones(10)
    assert summary.keep(small) is small and summary.keep(None) is None
    copy = summary.keep_copy(small)
    assert copy is not small and np.array_equal(copy, small)
    big = np.ones(summary.SUMMARY_FROM + 1, dtype=np.float32)
    assert type(summary.keep(big)) is ArraySummary and type(summary.keep_copy(big)) is ArraySummary
    assert type(summary.keep(np.ones(summary.SUMMARY_FROM))) is np.ndarray


def layer_trace(points: int, width: int):
    """One traced step of a points x 2 -> width -> 1 MLP (tanh, MSE), as a Session would record it."""
    gv.manual_seed(0)
    model = gv.nn.Sequential(gv.nn.Linear(2, width), gv.nn.Tanh(), gv.nn.Linear(width, 1))
    x, y = gv.randn(points, 2), gv.randn(points, 1)
    opt = gv.optim.SGD(model.parameters(), lr=0.1)
    with T.record() as rec:
        opt.zero_grad()
        loss = gv.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return rec


def trace_bytes(rec) -> int:
    from gradviz.training.script_recorder import _nbytes
    return _nbytes(rec.events) + _nbytes(list(rec.nodes.values()))


def test_a_large_layer_trace_holds_its_summaries_not_its_activations():
    rec = layer_trace(20_000, 128)                # 2.56M-element activations and gradients
    summarised = [e for e in rec.events if type(e) is T.ForwardEvent and type(e.value) is ArraySummary]
    assert len(summarised) == 2                   # the first Linear's output and its tanh
    grads = [g for e in rec.events if type(e) is T.BackwardEvent for g in (e.grad_output, *e.grad_inputs)
             if type(g) is ArraySummary]
    assert len(grads) >= 3
    whole = 20_000 * 128 * 4
    assert trace_bytes(rec) < 2 * whole / 3       # was: every one of the ~7 large arrays whole (7 x 10 MB)
    for e in summarised:
        assert e.value.shape == (20_000, 128) and e.value.dtype == np.float32


def test_a_small_trace_is_unchanged():
    rec = layer_trace(64, 8)
    assert not any(type(v) is ArraySummary for e in rec.events for v in vars(e).values())


def test_recording_a_100k_point_256_wide_step_stays_within_memory():
    """A subprocess measures the peak: the step itself (its activations) and then its trace."""
    code = textwrap.dedent("""
        import resource, sys
        sys.path.insert(0, sys.argv[1])
        import gradviz as gv
        from gradviz import trace as T
        gv.manual_seed(0)
        model = gv.nn.Sequential(gv.nn.Linear(2, 256), gv.nn.ReLU(), gv.nn.Linear(256, 256), gv.nn.ReLU(),
                                 gv.nn.Linear(256, 1))
        x, y = gv.randn(100_000, 2), gv.randn(100_000, 1)
        def step():
            model.zero_grad()
            gv.nn.functional.mse_loss(model(x), y).backward()
        step()
        untraced = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with T.record() as rec:
            step()
        traced = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(untraced // 1024, traced // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(__import__("pathlib").Path(__file__).parents[2])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    untraced, traced = map(int, out.stdout.split())
    # every forward value and gradient kept whole was about 1.2 GB more than the step itself
    assert traced - untraced < 150, (untraced, traced)


def test_grid_indices_and_thinned_are_np_uniques_without_importing_numpy_ma():
    """``distinct_sorted`` is ``np.unique`` of a sorted array; the heat maps' and plots' index picks use
    it because ``np.unique``'s first call imports numpy.ma (13 ms; 40-80 ms on the UI thread during a
    run: the first heat map shown at the end of limit_variants' run)."""
    from gradviz.summary import distinct_sorted, grid_indices
    from gradviz.view.series import thinned
    for n in range(0, 1200, 7):
        for side in (1, 2, 3, 10, 64, 257):
            want = np.unique(np.linspace(0, n - 1, side).round().astype(np.intp)) if n > side else np.arange(n)
            assert np.array_equal(grid_indices(n, side), want)
        for limit in (1, 2, 5, 100):
            want = np.unique(np.r_[np.linspace(0, n - 1, limit).astype(int), n - 1]) if n > limit else np.arange(n)
            assert np.array_equal(thinned(n, limit), want)
    for a in ([], [3], [1, 1, 1], [0, 1, 1, 2, 5, 5, 9]):
        assert np.array_equal(distinct_sorted(np.array(a, dtype=np.intp)), np.unique(np.array(a, dtype=np.intp)))
    probe = ("import sys; from gradviz.summary import grid_indices; from gradviz.view.series import thinned; "
             "grid_indices(1000, 64); thinned(10 ** 5, 2500); print('numpy.ma' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
