"""Grad mode, autocast and the trace recorder are per thread, as PyTorch's grad mode and autocast are.

A new thread starts with grad enabled, autocast off and no recorder, whatever the thread that
started it is doing; changing one of them in a thread changes it only there. The default dtype,
print options and generators stay process-global (they are global in PyTorch too).

Threads hand over with ``threading.Event`` (no sleeps): one thread enters a mode and waits
while the other computes, so the two really overlap. The grad-mode and autocast tests run the
same code on real torch (CPU autocast, bfloat16, whose state is thread-local too) to show it
behaves identically.
"""
import threading

import numpy as np
import pytest

import gradviz
from gradviz import trace
from gradviz.trace import ForwardEvent

TIMEOUT = 30


def _lib(name):
    return gradviz if name == "gradviz" else pytest.importorskip("torch")


LIBS = pytest.mark.parametrize("lib", ["gradviz", "torch"], ids=["gradviz", "torch"], indirect=True)


@pytest.fixture
def lib(request):
    return _lib(request.param)


def _wait(event: threading.Event) -> None:
    assert event.wait(TIMEOUT), "the other thread did not answer"


def run_threads(*targets) -> None:
    """Run each target in a thread of its own; re-raise the first failure here."""
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 (re-raised in the test's thread)
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


# -- (1) grad mode ----------------------------------------------------------------------------------
@LIBS
def test_no_grad_in_one_thread_does_not_disable_grad_in_another(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with lib.no_grad():
            inside.set()
            _wait(done)                   # b computes while a is inside no_grad
            seen["a"] = (lib.is_grad_enabled(), (w * 2).requires_grad)
        seen["a after"] = lib.is_grad_enabled()

    def b():
        _wait(inside)
        y = w * 2
        seen["b"] = (lib.is_grad_enabled(), y.requires_grad, y.grad_fn is not None)
        done.set()

    run_threads(a, b)
    assert seen == {"a": (False, False), "b": (True, True, True), "a after": True}


@LIBS
def test_a_new_thread_starts_with_grad_enabled(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    seen = {}

    def child():
        seen["child"] = (lib.is_grad_enabled(), (w * 2).requires_grad)

    with lib.no_grad():
        run_threads(child)
        seen["main"] = (lib.is_grad_enabled(), (w * 2).requires_grad)
    assert seen == {"child": (True, True), "main": (False, False)}
    assert lib.is_grad_enabled()


@LIBS
def test_set_grad_enabled_as_a_call_affects_only_its_thread(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    off, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        lib.set_grad_enabled(False)       # a plain call: stays off until set back, in this thread
        try:
            off.set()
            _wait(done)
            seen["a"] = (lib.is_grad_enabled(), (w * 2).requires_grad)
        finally:
            lib.set_grad_enabled(True)

    def b():
        _wait(off)
        seen["b"] = (lib.is_grad_enabled(), (w * 2).requires_grad)
        done.set()

    run_threads(a, b)
    assert seen == {"a": (False, False), "b": (True, True)}
    assert lib.is_grad_enabled()


@LIBS
def test_a_decorated_function_called_from_two_threads_restores_each_threads_mode(lib):
    """``@no_grad()`` makes one manager for every call: a call must not restore another thread's mode."""
    entered, b_done = threading.Event(), threading.Event()
    seen = {}

    @lib.no_grad()
    def f(wait: bool):
        if wait:
            entered.set()
            _wait(b_done)
        return lib.is_grad_enabled()

    def a():                              # grad on: f runs without grad, then grad is back on
        seen["a in f"] = f(True)
        seen["a after"] = lib.is_grad_enabled()

    def b():                              # grad off around the call: stays off after it
        _wait(entered)
        with lib.set_grad_enabled(False):
            seen["b in f"] = f(False)
            seen["b after"] = lib.is_grad_enabled()
        b_done.set()

    run_threads(a, b)
    assert seen == {"a in f": False, "a after": True, "b in f": False, "b after": False}


# -- (2) the trace recorder ---------------------------------------------------------------------------
def test_a_recorder_does_not_record_another_threads_ops():
    x = gradviz.tensor([1.0, 2.0])
    w = gradviz.tensor([3.0, 4.0], requires_grad=True)
    recording, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with trace.record() as rec:
            (w * x).sum()                 # two ops recorded here
            recording.set()
            _wait(done)
            n_before = len(rec.events)
            (w + x).sum()
        seen["a"] = [e.grad_fn for e in rec.events if isinstance(e, ForwardEvent)]
        seen["a between"] = n_before

    def b():
        _wait(recording)
        seen["b current"] = trace.current()
        loss = (w - x).exp().sum()        # none of this reaches a's recorder
        loss.backward()
        done.set()

    run_threads(a, b)
    assert seen["b current"] is None
    assert seen["a"] == ["MulBackward0", "SumBackward0", "AddBackward0", "SumBackward0"]
    assert seen["a between"] == 2
    assert trace.current() is None


def test_two_threads_record_their_own_ops_and_module_names():
    """Each thread's recorder, and the module names it tags ops with, are its own."""
    x = gradviz.tensor([[1.0, 2.0]])
    a_inside, b_done = threading.Event(), threading.Event()
    recs = {}

    class Waits(gradviz.nn.Module):       # holds thread a inside its module scope while b runs
        def forward(self, t):
            a_inside.set()
            _wait(b_done)
            return t * 2

    model_a = gradviz.nn.Sequential(gradviz.nn.Linear(2, 1), Waits())
    model_b = gradviz.nn.Sequential(gradviz.nn.Linear(2, 1), gradviz.nn.Linear(1, 1), gradviz.nn.Tanh())

    def a():
        with trace.record() as rec:
            model_a(x)
        recs["a"] = rec

    def b():
        _wait(a_inside)
        with trace.record() as rec:
            model_b(x)
        recs["b"] = rec
        b_done.set()

    run_threads(a, b)
    ops = {k: [(n.op, n.module) for n in r.nodes.values() if n.kind == "op"] for k, r in recs.items()}
    assert ops["a"] == [("addmm", "0"), ("mul", "1")]
    assert ops["b"] == [("addmm", "0"), ("addmm", "1"), ("tanh", "2")]


# -- (3) autocast -----------------------------------------------------------------------------------
@LIBS
def test_autocast_in_one_thread_does_not_cast_another_threads_ops(lib):
    a_mat = lib.tensor(np.arange(4.0).reshape(2, 2), dtype=lib.float32, requires_grad=True)
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with lib.autocast("cpu", dtype=lib.bfloat16):
            inside.set()
            _wait(done)
            seen["a"] = (a_mat @ a_mat).dtype
        seen["a after"] = (a_mat @ a_mat).dtype

    def b():
        _wait(inside)
        seen["b"] = (a_mat @ a_mat).dtype
        done.set()

    run_threads(a, b)
    assert seen == {"a": lib.bfloat16, "b": lib.float32, "a after": lib.float32}


@LIBS
def test_a_new_thread_starts_with_autocast_off(lib):
    a_mat = lib.tensor(np.arange(4.0).reshape(2, 2), dtype=lib.float32)
    seen = {}

    def child():
        seen["child"] = (a_mat @ a_mat).dtype

    with lib.autocast("cpu", dtype=lib.bfloat16):
        run_threads(child)
        seen["main"] = (a_mat @ a_mat).dtype
    assert seen == {"child": lib.float32, "main": lib.bfloat16}


def test_autocast_cast_cache_is_per_thread():
    """Leaving autocast in one thread clears only that thread's cache of cast weights."""
    from gradviz import amp
    w = gradviz.tensor(np.ones((2, 2)), dtype=gradviz.float32, requires_grad=True)
    cached, done = threading.Event(), threading.Event()
    seen = {}

    def a():
        with gradviz.autocast("cpu", dtype=gradviz.bfloat16):
            w @ w
            seen["a cache"] = len(amp._state.cast_cache)
            cached.set()
            _wait(done)
            seen["a cache later"] = len(amp._state.cast_cache)

    def b():
        _wait(cached)
        seen["b cache"] = len(amp._state.cast_cache)
        with gradviz.autocast("cpu", dtype=gradviz.bfloat16):
            w @ w
        done.set()

    run_threads(a, b)
    assert seen == {"a cache": 1, "b cache": 0, "a cache later": 1}


# -- a script run saves and restores its own thread's state ------------------------------------------
def test_a_script_run_in_a_thread_leaves_other_threads_alone():
    """``run_script`` resets and restores the core's state of the thread it runs in, only."""
    from gradviz.training.script import _fresh_core
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with gradviz.no_grad(), _fresh_core(False, "script.py"):
            seen["worker in script"] = gradviz.is_grad_enabled()
            inside.set()
            _wait(done)
        seen["worker after"] = gradviz.is_grad_enabled()

    with gradviz.no_grad(), gradviz.autocast("cpu", dtype=gradviz.bfloat16):
        thread = threading.Thread(target=worker, daemon=True)
        thread.start()
        _wait(inside)                     # the worker is inside its script run now
        seen["main"] = (gradviz.is_grad_enabled(), gradviz.amp.is_autocast_enabled())
        done.set()
        thread.join(TIMEOUT)
        seen["main after"] = (gradviz.is_grad_enabled(), gradviz.amp.is_autocast_enabled())
    assert seen == {"worker in script": True, "worker after": True, "main": (False, True),
                    "main after": (False, True)}


def test_layers_models_built_in_two_threads_at_once_get_their_own_seeded_weights():
    """``build_model`` seeds the process-wide generator and draws the initial weights from it
    (``torch.manual_seed`` then ``nn.Linear``): two threads building at once must not interleave."""
    import threading

    from gradviz.scenario import bundled_path, load
    from gradviz.training.session import Session

    scenario = load(bundled_path("07_mlp_two_moons"))
    expected = {n: v[0].copy() for n, v in Session(scenario).history.params.items()}
    results, go = [], threading.Barrier(4)

    def build():
        go.wait()
        for _ in range(5):
            results.append({n: v[0].copy() for n, v in Session(scenario).history.params.items()})
    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20
    for got in results:
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value)
