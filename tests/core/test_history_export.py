"""History exports stream: CSV in chunks of rows, JSON a few columns at a time, so the memory an
export needs is bounded (``EXPORT_CHUNK_VALUES``) whatever the run's size; the files are the same
as the whole table written at once."""
from __future__ import annotations

import copy
import csv
import json
import math

import numpy as np
import pytest

from gradviz.scenario import bundled_path, load
from gradviz.training import history as history_module
from gradviz.training.session import Session


@pytest.fixture(scope="module", params=["full", "reduced"])
def history(request):
    sc = load(bundled_path("07_mlp_two_moons"))
    sc.loop.steps = 40
    if request.param == "full":
        return Session(sc).run()
    need = Session(copy.deepcopy(sc)).run()
    budget = sum(a.nbytes for a in need.params.values()) * 4      # far less than the full History
    h = Session(sc, history_budget=budget).run()
    assert h.stride > 1
    return h


def reference_rows(h):
    cols = h.columns()
    return list(cols), np.column_stack(list(cols.values()))


@pytest.mark.parametrize("chunk", [7, 1000, 2_000_000])
def test_csv_in_chunks_is_the_whole_table(history, tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(history_module, "EXPORT_CHUNK_VALUES", chunk)
    path = tmp_path / "h.csv"
    history.to_csv(path)
    with path.open() as f:
        rows = list(csv.reader(f))
    names, table = reference_rows(history)
    assert rows[0] == names == history.column_names()
    got = np.array([[float(v) for v in row] for row in rows[1:]])
    assert got.shape == table.shape == (history.steps, len(names))
    np.testing.assert_array_equal(got, table)          # %.17g round-trips float64 exactly


@pytest.mark.parametrize("chunk", [7, 2_000_000])
def test_json_a_few_columns_at_a_time_is_the_whole_document(history, tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(history_module, "EXPORT_CHUNK_VALUES", chunk)
    path = tmp_path / "h.json"
    history.to_json(path)
    doc = json.loads(path.read_text())
    assert list(doc) == ["variant", "param_names", "steps", "accumulation_steps", "diverged_at", "message",
                         "stride", "reduction", "shapes", "final", "columns"]
    assert doc["steps"] == history.steps and doc["stride"] == history.stride
    names, table = reference_rows(history)
    assert list(doc["columns"]) == names
    for i, name in enumerate(names):
        expected = [None if not math.isfinite(v) else v for v in table[:, i].tolist()]
        assert doc["columns"][name] == expected, name
    for name in history.param_names:
        assert doc["final"][name] == np.asarray(history.params[name][-1], np.float64).ravel().tolist()
