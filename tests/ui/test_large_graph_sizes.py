"""A large graph's boxes are sized for any value (``sizing.WIDEST_HEAT_NODES``): a number's room and
a ``.grad`` badge's room come from the widest number of their dtype, not from this iteration's
values, so changing the iteration never makes a box grow and the graph is not laid out again (a
relayout of the most micro-batches file took 40-55 ms of turns). The badge of a leaf read by every
micro-batch is sized from four stand-ins, not from each of its accumulations."""
from __future__ import annotations

from tests.ui.conftest import finish
from tests.ui.micro_batches import micro_batch_toml
from ui.graph import sizing, text

MICRO_BATCHES = 48          # 7 nodes each: over WIDEST_HEAT_NODES

SCENARIO = micro_batch_toml(MICRO_BATCHES, steps=12, lr=2.5, noise=0.0)   # values: 0.4097 ... 5.061e+11


def test_changing_the_iteration_of_a_large_graph_keeps_every_box_and_place(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "many.toml"
    path.write_text(SCENARIO)
    window = make_window(path)
    view = window.graph
    assert len(view.replay.nodes) > sizing.WIDEST_HEAT_NODES
    relayouts = []
    real = type(view)._apply_grown
    monkeypatch.setattr(type(view), "_apply_grown", lambda self, *a, **k: (relayouts.append(a), real(self, *a, **k)))
    before = {key: (gfx.spec, gfx.xy) for key, gfx in view.node_items.items()}
    scalars = [key for key, gfx in view.node_items.items() if gfx.spec.kind in ("op", "param") and not gfx.spec.heat]
    assert len(scalars) > 3 * MICRO_BATCHES
    for k in (11, 6, 1):
        window.iteration_box.setValue(k)
        finish(window)
        qtbot.waitUntil(lambda: view._spec_job is None or view._spec_job.done(), timeout=10000)
        view.wait_built()                     # (a relayout of grown boxes, placed now)
        assert window.replay.iteration == k
        assert relayouts == []
        assert {key: (gfx.spec, gfx.xy) for key, gfx in view.node_items.items()} == before
    metrics, w = view.metrics, view.replay.param_nodes["w"]
    widest = 2 + len(text.value_text(sizing._widest(view.replay.contents(w), "float32").values[0]))
    for key in scalars:                       # room for the widest number, whatever this iteration shows
        assert view.node_items[key].spec.width >= sizing.PAD + widest * metrics.char_w


def test_a_badge_with_many_accumulations_is_sized_from_four_stand_ins(qtbot, make_window, tmp_path, monkeypatch):
    path = tmp_path / "many.toml"
    path.write_text(SCENARIO)
    window = make_window(path)
    view = window.graph
    w = view.replay.param_nodes["w"]
    assert len(view.replay.contents(w).accumulations) == MICRO_BATCHES
    calls = []
    real = text.badge_text
    monkeypatch.setattr(text, "badge_text", lambda *a, **k: (calls.append(a), real(*a, **k))[1])
    spec = sizing.make_specs(view.replay, view.folded, view.metrics, keys=[w])[w]
    assert 1 <= len(calls) <= 4 and spec.badge
    assert spec == view.node_items[w].spec or spec.layout_w >= view.node_items[w].spec.layout_w
