"""A process-wide pool of released History memory (``POOL``): the big arrays of a History go back to
it once nothing refers to them any more, and the next run, of any scenario, takes its arrays from
it instead of fresh memory.

Why: a History of a large model is hundreds of MB written once, row by row, and fresh memory costs
a page fault per 4 KiB the first time it is written (about 0.5-0.7 ms per MB on the development
machine: at 85k parameters as much again as the optimizer step). Memory a finished run released is
already paged in.

Why it is safe: :meth:`MemoryPool.empty` hands out an array whose base is a small owner object
(``_Block``) exposing the memory through ``__array_interface__``. numpy's base chain stops at a
base that is not an array, so the array and every view of it (slices, reshapes, views of views)
keep the owner alive; a ``weakref.finalize`` on the owner returns the memory to the pool only when
the owner dies, i.e. when no array of that memory exists any more. Memory a History, a plot or any
view still holds is never handed out. The pool itself holds only blocks nobody refers to.

Fresh blocks are anonymous ``mmap`` memory, off malloc's heap: page-aligned, no huge-page hint
(see :func:`empty`). Pooled memory never goes through ``free()``, which used to raise glibc's malloc
thresholds as a side effect: :func:`tune_malloc` sets them once, up front.

Bounds: at most ``capacity`` bytes (``POOL_BYTES``) are kept, the oldest dropped first, and free
blocks are let go before fresh memory is taken so that the pool's memory in use and kept free stays
within ``total`` (``TOTAL_BYTES``, the document's History budget): a run that cannot reuse what the
last one released does not add to it (the process's peak stays the budget's); an array
smaller than ``min_bytes`` is allocated plainly; a pooled block serves a request of at least
``1 / SLACK`` of its size, the smallest that fits.
Thread-safe: runs allocate in worker threads and a History may die in any thread (a finalizer only
queues the memory; it is moved into the pool under the lock).
"""
from __future__ import annotations

import bisect
import ctypes
import math
import mmap
import os
import queue
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

try:                                    # numpy's switch of its MADV_HUGEPAGE hint (private, hence optional)
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:                     # numpy < 2
    try:
        from numpy.core.multiarray import _set_madvise_hugepage
    except ImportError:
        _set_madvise_hugepage = None

POOL_BYTES = 1024 ** 3        # released memory kept at most
TOTAL_BYTES = 3 * 1024 ** 3 // 2   # pooled memory in use and kept free together: history.DOCUMENT_HISTORY_BUDGET
MIN_BYTES = 1024 ** 2         # smaller arrays are not pooled
SLACK = 2                     # a block serves requests of at least half its size


def empty(shape: tuple, dtype) -> np.ndarray:
    """``np.empty`` without numpy's MADV_HUGEPAGE hint (Linux, arrays of 4 MiB or more): History rows
    are written once, row by row, and with the kernel's usual ``defrag = madvise`` a huge-page fault
    may stall on compaction: measured, fresh 4 KiB pages cost about 0.45 ms per MB written, huge
    pages 0.1 to 2.5 ms per MB (about 1 ms typical in these runs)."""
    if _set_madvise_hugepage is None:
        return np.empty(shape, dtype=dtype)
    previous = _set_madvise_hugepage(False)
    try:
        return np.empty(shape, dtype=dtype)
    finally:
        _set_madvise_hugepage(previous)


# glibc's malloc: the thresholds its dynamic rule reaches once a program frees one array of 16 MiB or
# more (an mmap'd chunk), set up front. Before the pool a History freed that way raised them; pooled
# memory never goes through free(), and with the start values (mmap from 128 KiB, trim above 128 KiB
# free at the heap's top) a step's temporaries of a few hundred KB were mapped, or the heap trimmed,
# and faulted in again every step (measured: a 2-64-64-1 model on 2,000 points, 2.4 ms a step more;
# a run's 64 checkpoints, 8-20% of a run at 33k-85k parameters).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_THRESHOLDS = {_M_MMAP_THRESHOLD: 16 * 1024 ** 2, _M_TRIM_THRESHOLD: 32 * 1024 ** 2}
_malloc_tuned = False


def tune_malloc() -> bool:
    """Set glibc's malloc thresholds to ``MALLOC_THRESHOLDS`` (once; True when set). Elsewhere (no
    glibc, or ``GRADVIZ_MALLOC=default`` in the environment) nothing changes."""
    global _malloc_tuned
    if _malloc_tuned or os.environ.get("GRADVIZ_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):   # glibc only
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in MALLOC_THRESHOLDS.items())


def _fresh(nbytes: int) -> np.ndarray:
    """``nbytes`` of fresh memory off malloc's heap: private anonymous ``mmap`` where there is one
    (mmap's default, MAP_SHARED, is shared memory, whose page faults cost ~40% more); elsewhere
    (Windows) :func:`empty`."""
    if not hasattr(mmap, "MAP_PRIVATE"):
        return empty((nbytes,), np.uint8)
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), dtype=np.uint8)


_UNMAP: queue.SimpleQueue = queue.SimpleQueue()   # memory to give back, for the unmapping thread
_unmapper: threading.Thread | None = None
_unmapper_lock = threading.Lock()
SOLE_WAIT_S = 2.0            # how long the unmapping thread waits for the other holders to let go


def _let_go(memory) -> None:
    """Give ``memory`` (an array, or a list of them) back to the system in a thread of its own:
    unmapping a few hundred MB takes tens to hundreds of ms (without the GIL), which the thread that
    dropped a History (the UI thread, after an edit) should not wait for. The caller lets go of its
    own references; the thread drops the memory only once it holds the last one (``_unmap``)."""
    global _unmapper
    _UNMAP.put(memory)
    with _unmapper_lock:
        if _unmapper is None or not _unmapper.is_alive():
            _unmapper = threading.Thread(target=_unmap, name="gradviz-unmap", daemon=True)
            _unmapper.start()


def _unmap() -> None:
    """The unmapping thread. It waits until its reference is the last (the caller's local, or the
    arguments of the finalizer that returned a block, go a moment after ``_let_go``): handing the
    memory to a thread that ended at once used to leave the last reference, and so the unmapping
    (75 ms measured on an lr edit), to the caller."""
    while True:
        item = _UNMAP.get()
        deadline = time.monotonic() + SOLE_WAIT_S
        while sys.getrefcount(item) > 2 and time.monotonic() < deadline:    # item, and the call's argument
            time.sleep(0.001)
        del item


class _Block:
    """The owner of one pooled allocation: the base of the arrays made of it (see the module
    docstring); ``memory`` is the plain uint8 array that holds the bytes."""
    __slots__ = ("memory", "__array_interface__", "__weakref__")


@dataclass(frozen=True)
class PoolStats:
    """``free_bytes`` in ``free_blocks`` blocks ready for reuse (at most ``capacity``); counts since
    the pool was made: arrays made of pooled memory (``reused``) or of fresh memory (``allocated``,
    ``fresh_bytes`` in all: mmap memory tracemalloc does not see), blocks that came back
    (``returned``) and blocks let go to respect the caps (``dropped``); ``held_bytes``: pooled
    arrays' memory still in use."""
    free_bytes: int
    free_blocks: int
    capacity: int
    reused: int
    allocated: int
    returned: int
    dropped: int
    fresh_bytes: int
    held_bytes: int = 0


class MemoryPool:
    """Released History memory, reused by the next arrays of a fitting size (module docstring)."""

    def __init__(self, capacity: int = POOL_BYTES, min_bytes: int = MIN_BYTES, total: int = TOTAL_BYTES):
        self.capacity, self.min_bytes, self.total = int(capacity), int(min_bytes), int(total)
        self._held = 0                                               # bytes of pooled arrays alive
        self._lock = threading.Lock()
        self._free: OrderedDict[int, np.ndarray] = OrderedDict()   # by id, oldest first
        self._by_size: dict[int, dict[int, np.ndarray]] = {}        # nbytes -> {id: block memory}
        self._sizes: list[int] = []                                  # the keys of _by_size, sorted
        self._bytes = 0
        self._returned: deque[np.ndarray] = deque()  # from finalizers, not yet in _free (append is atomic)
        self._reused = self._allocated = self._count_returned = self._dropped = self._fresh_bytes = 0

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``, of pooled memory when a
        block fits; its memory returns to the pool once neither it nor any view of it is alive.
        Smaller than ``min_bytes``: a plain :func:`empty` array."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes == 0 or nbytes < self.min_bytes:
            return empty(shape, dtype)
        spare: list[np.ndarray] = []
        with self._locked():
            memory = self._take(nbytes)
            if memory is None:
                self._allocated += 1
                self._fresh_bytes += nbytes
                while self._free and self._held + self._bytes + nbytes > self.total:
                    spare.append(self._drop_oldest())        # nobody reuses them: not kept beside
            else:
                self._reused += 1
            self._held += nbytes if memory is None else memory.nbytes
        if spare:
            _let_go(spare)
            del spare
        if memory is None:            # anonymous memory, off the heap (module docstring)
            tune_malloc()
            memory = _fresh(nbytes)
        block = _Block()
        block.memory = memory
        block.__array_interface__ = {"data": (memory.ctypes.data, False), "shape": (nbytes,),
                                     "typestr": "|u1", "version": 3}
        weakref.finalize(block, self._release, memory).atexit = False
        # the uint8 array's base is the block; the typed view's base is that array (numpy collapses
        # views of views to it, never past the block)
        return np.asarray(block).view(dtype).reshape(shape)

    def stats(self) -> PoolStats:
        with self._locked():
            return PoolStats(self._bytes, len(self._free), self.capacity, self._reused, self._allocated,
                             self._count_returned, self._dropped, self._fresh_bytes, self._held)

    def clear(self) -> None:
        """Let every free block go (memory nobody refers to is given back to the system)."""
        with self._locked():
            self._dropped += len(self._free)
            free = list(self._free.values())
            self._free, self._by_size, self._sizes, self._bytes = OrderedDict(), {}, [], 0
        if free:
            _let_go(free)

    # -- inside the lock ---------------------------------------------------------------------------
    def _take(self, nbytes: int) -> np.ndarray | None:
        """The smallest free block of at least ``nbytes`` (at most ``SLACK`` times), out of the pool."""
        i = bisect.bisect_left(self._sizes, nbytes)
        if i == len(self._sizes) or self._sizes[i] > nbytes * SLACK:
            return None
        key, memory = self._by_size[self._sizes[i]].popitem()
        self._forget(key, memory)
        return memory

    def _drop_oldest(self) -> np.ndarray:
        """The oldest free block, out of the pool and counted as dropped (the caller lets it go)."""
        key, old = next(iter(self._free.items()))
        del self._by_size[old.nbytes][key]
        self._forget(key, old)
        self._dropped += 1
        return old

    def _forget(self, key: int, memory: np.ndarray) -> None:
        """``memory`` (``id`` ``key``) leaves the pool (already out of its size's dict)."""
        del self._free[key]
        size = memory.nbytes
        if not self._by_size[size]:
            del self._by_size[size]
            del self._sizes[bisect.bisect_left(self._sizes, size)]
        self._bytes -= size

    def _drain(self) -> None:
        """Move the memory finalizers queued into the pool, oldest blocks dropped beyond the cap."""
        while self._returned:
            memory = self._returned.popleft()
            self._held -= memory.nbytes
            if memory.nbytes > self.capacity:
                self._dropped += 1
                _let_go(memory)
                del memory
                continue
            while self._bytes + memory.nbytes > self.capacity:          # the oldest go first
                old = self._drop_oldest()
                _let_go(old)
                del old
            size = memory.nbytes
            if size not in self._by_size:
                self._by_size[size] = {}
                bisect.insort(self._sizes, size)
            self._by_size[size][id(memory)] = self._free[id(memory)] = memory
            self._bytes += size
            self._count_returned += 1

    @contextmanager
    def _locked(self):
        self._lock.acquire()
        try:
            self._drain()
            yield
        finally:
            self._unlock()

    def _unlock(self) -> None:
        # a finalizer that ran while the lock was held (in this thread or another) left its memory
        # queued: drain again after releasing if the lock is free and something is queued
        while True:
            self._drain()
            self._lock.release()
            if not self._returned or not self._lock.acquire(blocking=False):
                return

    def _release(self, memory: np.ndarray) -> None:
        """A block died (weakref.finalize, any thread, maybe while this thread holds the lock)."""
        self._returned.append(memory)
        if self._lock.acquire(blocking=False):
            self._unlock()


POOL = MemoryPool()
