"""The process-wide pool of released History memory (gradviz/training/history_pool.py): a new run
takes the memory an earlier run released, never memory a History or a view of one still holds; the
pool stays under its cap; threads may allocate and release at once."""
import gc
import random
import threading
import time
import weakref

import numpy as np
import pytest

from gradviz.training.history_pool import POOL, POOL_BYTES, SLACK, MemoryPool
from gradviz.training.session import Session

from .test_history_storage import arrays_of, bundled


def scenario(kind="adam", steps=40, lr=0.01, **hyper):
    return bundled("07_mlp_two_moons", kind=kind, steps=steps, lr=lr, **hyper)


def same(a, b):
    return all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))


def memory_of(session):
    """The addresses of the current buffer's rows (params, grads, each state key)."""
    buf = session._buffer
    return {group[0].ctypes.data for rows in (buf._params, buf._grads, *buf._state_rows.values())
            for group in rows.groups}


@pytest.fixture
def pool(monkeypatch):
    """The process-wide pool, empty, pooling arrays of every size (these runs are small)."""
    monkeypatch.setattr(POOL, "min_bytes", 0)
    POOL.clear()
    yield POOL
    POOL.clear()


@pytest.mark.parametrize("kind", ["adam", "sgd", "rmsprop", "adagrad"])
def test_a_re_run_refills_free_memory_and_never_a_history_still_held(kind, pool):
    hyper = {"momentum": 0.9} if kind == "sgd" else {}
    session = Session(bundled("07_mlp_two_moons", kind=kind, steps=30, lr=0.01, **hyper))
    first = session.run()
    kept = [a.copy() for a in arrays_of(first)]
    held = memory_of(session)
    second = session.run()                           # `first` is alive: fresh memory, `first` untouched
    assert not memory_of(session) & held
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(kept, arrays_of(first)))
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(kept, arrays_of(second)))
    view = second.grads["0.weight"][2:5, 0]          # a view of a view still holds the grads' rows
    grads = session._buffer._grads.groups[0][0].ctypes.data
    previous = held | memory_of(session)
    del first, second
    third = session.run()
    assert grads not in memory_of(session) and memory_of(session) <= previous
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(kept, arrays_of(third)))
    assert np.array_equal(view, kept[len(third.params)][2:5, 0])


def test_a_new_session_of_the_same_size_takes_the_released_memory(pool):
    session = Session(scenario())
    h = session.run()
    kept = [a.copy() for a in arrays_of(h)]
    released = memory_of(session)
    del h, session
    gc.collect()
    before = pool.stats()
    assert before.free_bytes > 0 and before.returned >= len(released)
    other = Session(scenario())                       # another Session: every run is a first run in the app
    again = other.run()
    after = pool.stats()
    assert memory_of(other) == released               # params, grads, exp_avg, exp_avg_sq, step: all reused
    assert after.reused - before.reused >= len(released)
    assert same(kept, arrays_of(again))               # the same numbers, bit for bit


def test_memory_a_view_still_holds_is_never_handed_out(pool):
    session = Session(scenario())
    h = session.run()
    column = h.params["0.weight"][:, 1, 0]           # a strided view of the params rows
    row = h.grads["2.weight"][7]                      # one row of the grads rows
    exp_avg = h.state["0.bias"]["exp_avg"][3:9]
    expected = [column.copy(), row.copy(), exp_avg.copy()]
    held = {column.base.ctypes.data, row.base.ctypes.data, exp_avg.base.ctypes.data}
    del h, session
    for kind, lr in [("adam", 0.01), ("adam", 0.05), ("sgd", 0.1), ("adam", 0.02)]:  # other numbers, same sizes
        s = Session(scenario(kind, lr=lr, **({"momentum": 0.9} if kind == "sgd" else {})))
        s.run()
        assert not memory_of(s) & held
        s.run()
        assert not memory_of(s) & held
        del s
    assert same(expected, [column, row, exp_avg])


def test_the_pool_stays_under_its_cap():
    pool = MemoryPool(capacity=10_000, min_bytes=0)
    arrays = [pool.empty((750,), np.float32) for _ in range(5)]        # 3,000 bytes each
    del arrays
    stats = pool.stats()
    assert stats.free_bytes <= 10_000 and stats.free_blocks == 3 and stats.dropped == 2
    big = pool.empty((20_000,), np.uint8)                              # over the cap alone: never kept
    del big
    assert pool.stats().free_bytes <= 10_000 and pool.stats().dropped == 3
    pool.clear()
    assert pool.stats().free_bytes == 0
    Session(scenario()).run()
    assert POOL.stats().free_bytes <= POOL_BYTES


def test_memory_in_use_and_kept_free_stays_within_the_total():
    """A request no free block fits lets free blocks go first when they and the memory in use would
    exceed ``total`` (the document's History budget): a re-run of other sizes does not keep the last
    run's memory beside its own."""
    pool = MemoryPool(capacity=1 << 20, min_bytes=0, total=10_000)
    a, b = pool.empty((4_000,), np.uint8), pool.empty((3_000,), np.uint8)
    assert pool.stats().held_bytes == 7_000
    del a
    assert pool.stats().held_bytes == 3_000 and pool.stats().free_bytes == 4_000
    c = pool.empty((9_000,), np.uint8)              # no fit: 3,000 + 4,000 + 9,000 > 10,000
    stats = pool.stats()
    assert stats.free_bytes == 0 and stats.dropped == 1 and stats.held_bytes == 12_000
    del c
    d = pool.empty((1_500,), np.uint8)              # 9,000 free is over SLACK times: no fit, and
    stats = pool.stats()                            # 3,000 + 9,000 + 1,500 > 10,000: it goes too
    assert stats.free_bytes == 0 and stats.dropped == 2 and stats.held_bytes == 4_500
    e = pool.empty((1_000,), np.uint8)              # within the total: nothing dropped
    assert pool.stats().dropped == 2
    del b, d, e
    assert pool.stats().held_bytes == 0 and pool.stats().free_bytes == 5_500


def test_a_request_takes_the_smallest_block_that_fits():
    pool = MemoryPool(capacity=1 << 20, min_bytes=0)
    blocks = [pool.empty((n,), np.uint8) for n in (1000, 4000, 2000)]
    addresses = [b.ctypes.data for b in blocks]
    del blocks
    small = pool.empty((450,), np.float32)          # 1,800 bytes: the 2,000-byte block, not 4,000
    assert small.ctypes.data == addresses[2]
    tiny = pool.empty((100,), np.uint8)             # 1,000 bytes is over SLACK times: fresh memory
    assert tiny.ctypes.data not in addresses and 1000 > SLACK * 100
    assert pool.stats().reused == 1


def test_small_arrays_are_not_pooled():
    pool = MemoryPool(capacity=1 << 20, min_bytes=4096)
    a, b = pool.empty((10,), np.float64), pool.empty((512,), np.float64)
    del a, b
    assert pool.stats().free_blocks == 1 and pool.stats().allocated == 1


def test_memory_released_while_the_pool_is_locked_is_pooled_when_it_unlocks():
    pool = MemoryPool(capacity=1 << 20, min_bytes=0)
    a = pool.empty((64,), np.float64)
    pool._lock.acquire()            # as if a finalizer ran inside the pool's own critical section
    del a
    assert len(pool._returned) == 1 and not pool._free
    pool._unlock()
    assert not pool._returned and pool.stats().free_blocks == 1


def test_arrays_from_the_pool_are_plain_c_contiguous_and_pickle():
    import pickle
    pool = MemoryPool(capacity=1 << 20, min_bytes=0)
    a = pool.empty((3, 4, 5), np.float32)
    a[...] = np.arange(60).reshape(3, 4, 5)
    assert type(a) is np.ndarray and a.flags.c_contiguous and a.flags.writeable and a.dtype == np.float32
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a[:, 1])), a[:, 1])


def test_threads_allocating_and_releasing_at_once_never_share_memory():
    pool = MemoryPool(capacity=64 * 1024, min_bytes=0)
    failures = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        alive = []
        for i in range(400):
            a = pool.empty((rng.choice([100, 250, 500, 1000]),), np.int64)
            a.fill(seed * 100_000 + i)
            alive.append((a, seed * 100_000 + i))
            if len(alive) > 5 or rng.random() < 0.5:
                b, value = alive.pop(rng.randrange(len(alive)))
                if not (b == value).all():
                    failures.append((seed, i))
        for b, value in alive:
            if not (b == value).all():
                failures.append((seed, "end"))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = pool.stats()
    assert not failures
    assert stats.reused > 0 and stats.free_bytes <= pool.capacity and not pool._returned


def test_two_threads_running_sessions_record_the_same_numbers(pool):
    cases = {"adam": scenario("adam", steps=60), "sgd": scenario("sgd", steps=60, lr=0.1, momentum=0.9)}
    expected = {kind: [a.copy() for a in arrays_of(Session(sc).run())] for kind, sc in cases.items()}
    results, errors = {kind: [] for kind in cases}, []

    def work(kind: str) -> None:
        try:
            for _ in range(4):
                session = Session(cases[kind])           # a new Session each time, as the app does
                h = session.run()
                results[kind].append(same(expected[kind], arrays_of(h)))
                session.run()                            # `h` alive: fresh or pooled, never h's memory
                results[kind].append(same(expected[kind], arrays_of(h)))
        except Exception as exc:                         # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(kind,)) for kind in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(all(r) and len(r) == 8 for r in results.values())
    assert pool.stats().reused > 0 and pool.stats().free_bytes <= pool.capacity


def test_malloc_tuning_can_be_declined(monkeypatch):
    from gradviz.training import history_pool
    monkeypatch.setattr(history_pool, "_malloc_tuned", False)
    monkeypatch.setenv("GRADVIZ_MALLOC", "default")
    assert history_pool.tune_malloc() is False and history_pool._malloc_tuned is False


def _wait(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        time.sleep(0.005)
    return predicate()


def test_memory_beyond_the_cap_is_unmapped_in_a_thread_of_its_own():
    """Unmapping hundreds of MB took the UI thread 389 ms after an edit (a re-run dropping the last
    run's Histories): dropped blocks go back to the system in a thread that is not the caller's --
    the block's memory dies there (a finalizer on it says where)."""
    pool = MemoryPool(capacity=3 << 20, min_bytes=1 << 20)
    a, b = pool.empty((2 << 20,), np.uint8), pool.empty((2 << 20,), np.uint8)
    del a
    gc.collect()
    died_in = []
    weakref.finalize(next(iter(pool._free.values())), lambda: died_in.append(threading.current_thread()))
    del b                                       # over the cap: the older block is let go
    gc.collect()
    assert pool.stats().dropped == 1 and pool.stats().free_bytes == 2 << 20
    assert _wait(lambda: died_in), "the dropped block's memory was freed"
    assert died_in[0] is not threading.current_thread() and died_in[0].name == "gradviz-unmap"


def test_the_unmapping_thread_waits_for_the_caller_to_let_go():
    """The caller still holds the memory a moment after handing it over (a local, or the arguments
    of the finalizer that returned a block): the memory must still die in the unmapping thread, not
    in the caller when it drops the last reference (75 ms on an lr edit before)."""
    from gradviz.training import history_pool

    class Memory:
        def __del__(self):
            died_in.append(threading.current_thread())

    died_in = []
    memory = Memory()
    history_pool._let_go(memory)
    time.sleep(0.05)                             # the thread started, and found it held elsewhere
    assert not died_in
    del memory
    assert _wait(lambda: died_in)
    assert died_in[0] is not threading.current_thread() and died_in[0].name == "gradviz-unmap"
    spare = [Memory(), Memory()]                 # a list of blocks (MemoryPool.empty's spare)
    history_pool._let_go(spare)
    time.sleep(0.02)
    del spare
    assert _wait(lambda: len(died_in) == 3)
    assert all(t.name == "gradviz-unmap" for t in died_in)


def test_a_released_session_gives_its_memory_back_though_something_still_holds_it(pool):
    """The app drops a run's Session while a finished trace job's key or a closure may still hold
    it: ``release`` gives its History memory back to the pool at once (a re-run then reuses it);
    a History a view still holds keeps its numbers."""
    session = Session(scenario())
    history = session.run()
    kept = [a.copy() for a in arrays_of(history)]
    view_of_loss, loss = history.loss, history.loss.copy()      # (the loss is not pooled memory)
    released = memory_of(session)
    holder = [session]                                   # e.g. a job key (session, k)
    del history
    gc.collect()
    assert session.release() is True
    assert session.history.steps == 0 and len(session._checkpoints) == 1
    gc.collect()
    assert pool.stats().free_bytes > 0
    other = Session(scenario())
    again = other.run()
    assert memory_of(other) == released                  # the released memory, reused
    assert same(kept, arrays_of(again))
    assert np.array_equal(view_of_loss, loss, equal_nan=True)
    assert holder[0] is session
    # release keeps no buffer (a new empty one cost its rows' allocations: 60 ms for nine large
    # variants in the UI thread); the Session still runs again, as it would after a re-run
    assert session._buffer is None
    assert session.stop().steps == 0                     # stopping it again changes nothing
    assert session.release() is True and session.history.steps == 0      # nor releasing it again
    assert same(kept, arrays_of(session.run()))


def test_a_session_in_use_by_another_thread_is_not_released(pool):
    session = Session(scenario())
    session.run()
    busy, go = threading.Event(), threading.Event()

    def use():
        with session.lock:
            busy.set()
            go.wait(10)
    worker = threading.Thread(target=use)
    worker.start()
    busy.wait(10)
    assert session.release() is False and session.history.steps == 40
    go.set()
    worker.join()
    assert session.release() is True and session.history.steps == 0


def test_a_run_between_two_chunks_is_not_released_until_it_ends(pool):
    """A run's generator holds the lock only during a chunk; between chunks (a run thread sleeping
    its breather, or cancelled and about to stop) the Session is still its: released only once the
    generator has ended, so a cancelled run never writes into a released Session."""
    session = Session(scenario(steps=40))
    chunks = session.run_chunked(chunk=5)
    assert next(chunks) == (5, 40)
    assert session.release() is False and session.history.steps == 5
    session.stop("cancelled")
    chunks.close()
    assert session.release() is True and session.history.steps == 0
    assert session.run().steps == 40                   # a released Session runs again from the start


def test_a_released_sessions_history_shows_the_first_values_from_its_checkpoint(pool):
    """The empty History a release leaves holds the values before step 0 as the first checkpoint
    keeps them (no copy of the buffer's params row: 25 ms for nine large variants), equal to it."""
    session = Session(scenario())
    history = session.run()
    first = {n: a[0].copy() for n, a in history.params.items()}
    del history
    gc.collect()
    assert session.release() is True
    released = session.history
    assert released.steps == 0 and set(released.params) == set(first)
    for i, (name, value) in enumerate(first.items()):
        assert released.params[name].shape == (1,) + value.shape
        assert np.array_equal(released.params[name][0], value)
        assert np.shares_memory(released.params[name], session._checkpoints[0].params[i])
