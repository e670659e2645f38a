"""Everything the app derives from a trace works when the trace keeps large arrays as summaries
(issue 12, memory at the limits).

Every bundled scenario is traced twice: as it is, and with the summary threshold lowered so that
nearly every array is summarised (``SUMMARY_FROM = 4`` elements, ``HEAD_ELEMENTS = 8``). Every frame,
every event's formulas, every node's formulas (at the default element and at one below the rows
kept), every edge's formula and every description are made from the summarised trace without an
error, and they say what the whole trace says: the same events, descriptions, formula titles and
results, and only numbers the whole trace also shows.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from gradviz import summary
from gradviz.scenario import bundled_path
from gradviz.scenario.loader import load
from gradviz.summary import ArraySummary, grid_indices
from gradviz.training.session import Session
from gradviz.view.format import brief, format_array, format_head, format_stats, format_value
from gradviz.view.formulas import edge_formula, formulas_for_frame
from gradviz.view.replay import Replay

STEMS = ["03_gradient_accumulation", "07_mlp_two_moons", "09_fp16_underflow", "11_bfloat16_vs_float16",
         "12_clipping_scaled_gradients"]
NUMBER = re.compile(r"−?\d+(?:\.\d+)?(?:e[−+]?\d+)?")


def traces(stem: str, monkeypatch) -> tuple[Replay, Replay]:
    scenario = load(bundled_path(stem))
    whole = Replay(Session(scenario).trace_iteration(1))
    with monkeypatch.context() as m:
        m.setattr(summary, "SUMMARY_FROM", 4)
        m.setattr(summary, "HEAD_ELEMENTS", 8)
        small = Replay(Session(scenario).trace_iteration(1))
    return whole, small


def summaries(replay) -> list[ArraySummary]:
    out = []
    for e in replay.events:
        for v in vars(e).values():
            out += [a for a in (v if isinstance(v, (tuple, list)) else (v,)) if type(a) is ArraySummary]
    return out


def same_formulas(whole, small) -> None:
    assert len(small) == len(whole)
    for a, b in zip(whole, small):
        if "a trace keeps the first" in b.title:     # an element below the rows kept: moved up (tested below)
            continue
        assert a.title == b.title
        assert (a.value is None) == (b.value is None) and (a.value is None or a.value == b.value
                                                           or math.isnan(a.value) and math.isnan(b.value))
        assert set(NUMBER.findall(b.plain)) <= set(NUMBER.findall(a.plain)), (a.plain, b.plain)


@pytest.mark.parametrize("stem", STEMS)
def test_a_summarised_trace_shows_what_the_whole_one_shows(stem, monkeypatch):
    whole, small = traces(stem, monkeypatch)
    assert summaries(small), "the lowered threshold summarises the scenario's arrays"
    assert len(small) == len(whole)
    for i in range(len(whole)):
        fw, fs = whole.frame(i), small.frame(i)
        assert fs.description == fw.description
        same_formulas(formulas_for_frame(whole, fw), formulas_for_frame(small, fs))
        for nid in whole.nodes:
            same_formulas(formulas_for_frame(whole, fw, node=nid), formulas_for_frame(small, fs, node=nid))
            for src in whole.nodes[nid].inputs:
                a, b = edge_formula(whole, fw, src, nid), edge_formula(small, fs, src, nid)
                assert (a is None) == (b is None)
            ns_w, ns_s = fw.nodes.get(nid), fs.nodes.get(nid)
            if ns_w is None:
                continue
            for x, y in ((ns_w.value, ns_s.value), (ns_w.grad, ns_s.grad), (ns_w.grad_badge, ns_s.grad_badge)):
                if type(y) is ArraySummary:
                    check_summary_of(np.asarray(x), y)
                else:
                    assert format_value(x) == format_value(y)


def check_summary_of(a: np.ndarray, s: ArraySummary) -> None:
    assert s.shape == a.shape and s.dtype == a.dtype
    with np.errstate(all="ignore"):
        mean = np.asarray(a, dtype=np.float64).mean()
    assert s.mean == pytest.approx(mean, rel=1e-9, abs=1e-12, nan_ok=True)
    assert np.array_equal(s.head, a[:s.head_rows], equal_nan=True)
    folded = a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])
    assert np.array_equal(s.grid, folded[np.ix_(grid_indices(folded.shape[0]), grid_indices(folded.shape[1]))],
                          equal_nan=True)
    # the texts of a large array are those of the array itself
    assert format_array(s).split(" · ")[0] == format_array(a, max_elems=0).split(" · ")[0]
    count = min(12, s.head.size)          # (the lowered HEAD_ELEMENTS may keep fewer than 12)
    assert format_head(s, count) == format_head(a, count)
    if np.isfinite(np.asarray(a, dtype=np.float64)).all():
        assert format_stats(s) == format_stats(a) or np.allclose(
            [float(t) for t in NUMBER.findall(format_stats(s).replace("−", "-"))],
            [float(t) for t in NUMBER.findall(format_stats(a).replace("−", "-"))], rtol=1e-3)
    assert brief(s).startswith("(mean ")


def test_an_element_below_the_rows_kept_moves_up_and_the_title_says_so(monkeypatch):
    whole, small = traces("07_mlp_two_moons", monkeypatch)
    frame = small.frame(-1)
    nid = next(n for n, info in small.nodes.items() if info.op == "addmm")
    value = frame.nodes[nid].value
    assert type(value) is ArraySummary and value.shape[0] > value.head_rows
    below = (value.shape[0] - 1, 0)
    (forward, *_rest) = formulas_for_frame(small, frame, node=nid, element=below)
    kept = (value.head_rows - 1, 0)
    assert f"element [{kept[0]},0]" in forward.title
    assert "keeps the first" in forward.title and f"of this array's {value.shape[0]:,} rows" in forward.title
    (reference, *_rest) = formulas_for_frame(whole, whole.frame(-1), node=nid, element=kept)
    assert forward.value == reference.value


def test_formulas_whose_terms_were_not_kept_say_how_many_there_are(monkeypatch):
    """∂L/∂W of a Linear sums over every point; a summarised gradient keeps the first terms."""
    whole, small = traces("07_mlp_two_moons", monkeypatch)
    for replay in (whole, small):
        frame = replay.frame(-1)
        nid = next(n for n, info in replay.nodes.items() if info.op == "addmm")
        weight = replay.nodes[nid].inputs[1]
        edge = edge_formula(replay, frame, weight, nid)
        assert edge is not None and re.search(r"… \(\d+ terms\)", edge.plain), edge.plain
