"""The app leaves a core to the UI thread: numpy's OpenBLAS gets one core fewer than the process may use
(ui/blas_threads.py; on 2 cores, OpenBLAS on both starved the UI thread during a large run)."""
from __future__ import annotations

import numpy as np
import pytest

from ui import app as app_module
from ui import blas_threads
from ui.blas_threads import USER_SETTINGS, find_openblas, leave_a_core, usable_cores

BLAS = find_openblas()
needs_openblas = pytest.mark.skipif(BLAS is None, reason="numpy is not built on OpenBLAS here")


@pytest.fixture
def restore_threads():
    before = BLAS.threads
    yield
    BLAS.threads = before


@needs_openblas
@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 3), (8, 7)])
def test_openblas_gets_one_core_fewer_and_at_least_one(restore_threads, cores, expected):
    assert leave_a_core({}, cores=cores)[1] == expected
    assert BLAS.threads == expected
    a = np.random.default_rng(0).standard_normal((300, 300))
    assert np.array_equal(a @ a, a @ a)          # the library still computes after the change


@needs_openblas
@pytest.mark.parametrize("name", USER_SETTINGS)
def test_a_users_own_thread_count_is_kept(restore_threads, name):
    BLAS.threads = 2
    assert leave_a_core({name: "2"}, cores=8) is None
    assert BLAS.threads == 2


def test_without_openblas_nothing_changes(monkeypatch):
    monkeypatch.setattr(blas_threads, "find_openblas", lambda: None)
    assert leave_a_core({}, cores=8) is None


@needs_openblas
def test_the_window_leaves_a_core(qtbot, monkeypatch, restore_threads):
    for name in USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(app_module, "_blas_capped", False)
    monkeypatch.setattr(blas_threads, "usable_cores", lambda: 5)
    BLAS.threads = 1
    window = app_module.make_window()
    qtbot.addWidget(window)
    assert BLAS.threads == 4


def test_usable_cores_counts_this_process_cores():
    assert 1 <= usable_cores()
