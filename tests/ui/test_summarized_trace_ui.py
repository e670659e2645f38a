"""The window shows a trace whose large arrays are summaries (issue 12, memory at the limits) as it
shows whole arrays: the summary threshold is lowered so that the two-moons MLP's activations and
gradients are summarised, and a user plays the iteration, clicks every node and reads the inspector."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtWidgets

from gradviz import summary
from gradviz.scenario import bundled_path
from gradviz.summary import ArraySummary
from gradviz.view.format import format_number
from tests.ui.conftest import finish, screenshot
from tests.ui.test_polish_inspector import click_node, end_of_backward, shown_labels


@pytest.fixture
def small_summaries(monkeypatch):
    monkeypatch.setattr(summary, "SUMMARY_FROM", 64)
    monkeypatch.setattr(summary, "HEAD_ELEMENTS", 32)


def test_playing_and_inspecting_a_summarised_trace(qtbot, make_window, small_summaries):
    window = make_window(bundled_path("07_mlp_two_moons"))
    finish(window)
    replay = window.replay
    summarised = [e.node for e in replay.events if type(getattr(e, "value", None)) is ArraySummary]
    assert summarised, "the lowered threshold summarises the hidden layer's values"
    for i in range(len(replay)):                           # every frame, as Play shows it
        window.player.seek(i)
        QtWidgets.QApplication.processEvents()
    window.graph.set_modules_collapsed(window.graph.collapsible_modules(), False)
    end_of_backward(window)
    frame = window.player.frame
    for nid in replay.nodes:                                # every node, clicked, fills the inspector
        click_node(qtbot, window, nid)
        assert window.inspector.title.text() == replay.node_name(nid)
    node = summarised[0]
    value = frame.nodes[node].value
    assert type(value) is ArraySummary
    click_node(qtbot, window, node)
    shown = " ".join(shown_labels(window.inspector))
    assert f"mean {format_number(value.finite_mean)}" in shown.replace("\u00a0", " ")
    assert "min" in shown and "max" in shown and "first: [" in shown
    heat = window.inspector.value_text.heat
    assert heat.isVisibleTo(window.inspector) and not heat.pixmap().isNull()
    assert f"μ {format_number(value.mean, 2)}" in window.graph.node_value_text(node)
    screenshot(window, "summarised_trace")


def test_the_heat_map_of_a_summary_is_the_arrays_own(qtbot, small_summaries):
    from ui import theme as T
    a = np.random.default_rng(0).standard_normal((3000, 40)).astype(np.float32)
    s = ArraySummary.of(a)
    whole, summarised = T.heat_image(a), T.heat_image(s)
    assert (whole.width(), whole.height()) == (summarised.width(), summarised.height()) == (40, 256)
    assert whole == summarised
