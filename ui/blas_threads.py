"""Leave a core to the UI thread: numpy's OpenBLAS computes a run's large matrix products on every core.

Measured on a 2-core machine with ``limit_data`` (100,000 points, 2-256-256-1) running in the window:
with OpenBLAS on both cores, the run thread and an OpenBLAS thread (which spins while it waits for
the next product) kept both cores busy; the UI thread got about 40% of a core during its turns, and
the event loop stopped for 50-100 ms a dozen times a minute (main-thread CPU time 23-37 ms in gaps
of 75-90 ms). With OpenBLAS on one core, those gaps were gone (the main thread on CPU for the whole
of its few 50 ms turns), and a training step was faster too: 1.87 s against 2.76 s (the two threads
also competed with each other).

So the app gives OpenBLAS one core fewer than the process may use (at least one):
:func:`leave_a_core` at startup. A user's own ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``,
``GOTO_NUM_THREADS``) is kept. A numpy built on another BLAS (MKL, Accelerate), or an OpenBLAS that
cannot be found, is left alone: this is a speed setting, never an error. The core (``gradviz/``)
does not touch threads: a script or the command line keeps numpy's defaults.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
# (setter, getter) pairs: numpy's wheels (scipy-openblas, 64-bit integers), then a plain OpenBLAS
SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
           ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
           ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
           ("openblas_set_num_threads", "openblas_get_num_threads"))


class OpenBlas:
    """numpy's OpenBLAS thread count (get / set), through the library numpy has loaded."""

    def __init__(self, library: ctypes.CDLL, setter: str, getter: str):
        self.library, self.path = library, getattr(library, "_name", "")
        self._set, self._get = getattr(library, setter), getattr(library, getter)
        self._set.argtypes, self._set.restype = [ctypes.c_int], None
        self._get.argtypes, self._get.restype = [], ctypes.c_int

    @property
    def threads(self) -> int:
        return int(self._get())

    @threads.setter
    def threads(self, count: int) -> None:
        self._set(int(count))


def _candidates() -> list[Path]:
    """Shared libraries whose name says OpenBLAS: those this process has loaded (Linux), then the
    ones numpy's wheel ships (``numpy.libs``, ``numpy/.dylibs``)."""
    found: list[Path] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                if "openblas" in path.lower() and Path(path) not in found:
                    found.append(Path(path))
    except OSError:
        pass
    import numpy
    here = Path(numpy.__file__).resolve().parent
    for folder in (here.parent / "numpy.libs", here / ".dylibs"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "openblas" in p.name.lower() and p not in found)
    return found


def find_openblas() -> OpenBlas | None:
    """numpy's OpenBLAS, or None (another BLAS, or a library without the thread functions)."""
    import numpy  # noqa: F401  (loads the BLAS numpy uses, so that it is the one found)
    for path in _candidates():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        for setter, getter in SYMBOLS:
            if hasattr(library, setter) and hasattr(library, getter):
                return OpenBlas(library, setter, getter)
    return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def leave_a_core(environ=os.environ, cores: int | None = None) -> tuple[int, int] | None:
    """Give numpy's OpenBLAS one core fewer than this process may use (at least 1), unless the user
    chose a count; returns (before, after), or None when nothing was changed."""
    if any(environ.get(name) for name in USER_SETTINGS):
        return None
    blas = find_openblas()
    if blas is None:
        return None
    before = blas.threads
    wanted = max(1, (usable_cores() if cores is None else cores) - 1)
    if before != wanted:
        blas.threads = wanted
    return before, blas.threads
