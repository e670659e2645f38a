"""Every run side by side (issue 11), on the real window: Parameters, Gradients and Optimizer state
overlay every run in its colour (small multiples, a plot per series), the main run first in every
legend, a click on a run's legend entry hides it in every tab; one place chooses the current run
(the toolbar's Variant box): the graph, the plots' emphasis and the Controls' "Edit" label follow.

The plotted numbers are the recorded History's, element for element."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import bundled_path, load
from gradviz.view.series import finite, param_steps, row_steps
from tests.ui.conftest import finish, screenshot
from tests.ui.dashboard_rig import original
from tests.ui.dashboard_rig import rosenbrock as rig_rosenbrock
from tests.ui.test_one_variant import choose_in
from ui.theme import PALETTE, variant_colour

FP16 = "09_fp16_underflow"
Qt = QtCore.Qt


def show_tab(qtbot, window, panel) -> None:
    window.dashboards_dock.show()
    window.dashboards.set_layout_mode("tabs")
    window.dashboards.tabs.setCurrentWidget(panel)
    qtbot.wait(30)
    panel.view.viewport().repaint()


def click_legend_entry(qtbot, panel, legend, name: str) -> None:
    entry = next(e for e in legend.entries if e.name == name)
    panel.view.viewport().repaint()
    pos = panel.view.mapFromScene(entry.mapToScene(entry.text_rect().center()))
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def in_view(panel, plot) -> bool:
    """The plot's data area lies inside what the panel's scroll area shows (no scrolling needed)."""
    rect = panel.view.mapFromScene(plot.vb.sceneBoundingRect()).boundingRect()
    top_left = panel.view.mapTo(panel.scroll.viewport(), rect.topLeft())
    bottom_right = panel.view.mapTo(panel.scroll.viewport(), rect.bottomRight())
    visible = panel.scroll.viewport().rect().adjusted(-1, -1, 1, 1)
    return visible.contains(top_left) and visible.contains(bottom_right)


@pytest.mark.parametrize("size", [(1400, 860), (800, 600)])
def test_float16_lesson_shows_0_weight_of_every_run_at_once(qtbot, make_window, size):
    """Frozen without the scaler, learning with it and in float32: one plot, three runs, no switch."""
    window = make_window(bundled_path(FP16))
    window.resize(*size)
    finish(window)
    dash, histories = window.dashboards, window.document.histories
    names = [v.name for v in window.document.scenario.variants()]
    assert len(histories) == 3
    show_tab(qtbot, window, dash.params)
    weight = dash.params.plot_of("0.weight")
    assert weight is not None and "0.weight" in weight.titleLabel.text
    assert in_view(dash.params, weight) and in_view(dash.params, dash.params.plot_of("0.bias"))
    assert weight.vb.height() >= 60
    for i, h in enumerate(histories):
        curve = dash.params.curve("param", "0.weight", i)
        assert curve.isVisible() and curve.getViewBox() is weight.vb
        x, y = original(curve)
        np.testing.assert_array_equal(x, param_steps(h))
        np.testing.assert_array_equal(y, h.params["0.weight"].reshape(-1).astype(float))
        assert curve.opts["pen"].color().name() == variant_colour(i).lower()
    frozen, scaled, fp32 = (original(dash.params.curve("param", "0.weight", i))[1] for i in range(3))
    assert np.all(frozen == frozen[0])                           # no scaler: the weight never moves
    assert abs(scaled[-1] - scaled[0]) > 1 and abs(fp32[-1] - fp32[0]) > 1   # it learns with the scaler
    assert dash.params.runs_legend.names == names
    screenshot(window, f"runs_side_by_side_fp16_parameters_{size[0]}x{size[1]}")

    show_tab(qtbot, window, dash.grads)
    assert in_view(dash.grads, dash.grads.plot_of("0.weight"))
    for i, h in enumerate(histories):
        x, y = original(dash.grads.curve("grad", "0.weight", i))
        np.testing.assert_array_equal(x, row_steps(h))
        np.testing.assert_array_equal(y, h.grads["0.weight"].reshape(-1).astype(float))
        _x, norm = original(dash.grads.curve("gradnorm", i))
        np.testing.assert_allclose(norm, finite(h.grad_norm()))     # the skipped step's inf: a gap
    assert not np.any(original(dash.grads.curve("grad", "0.weight", 0))[1])    # underflowed to 0
    assert np.all(original(dash.grads.curve("grad", "0.weight", 2))[1] != 0)
    screenshot(window, f"runs_side_by_side_fp16_gradients_{size[0]}x{size[1]}")


def test_optimizer_state_shows_each_runs_adam_state_and_the_scalers_scale(qtbot, make_window):
    window = make_window(bundled_path(FP16))
    dash, histories = window.dashboards, window.document.histories
    show_tab(qtbot, window, dash.state)
    state = dash.state
    assert state.keys == ["exp_avg", "exp_avg_sq"]
    for key in ("exp_avg", "exp_avg_sq"):
        for label in ("0.weight", "0.bias"):
            plot = state.plot_of(key, label)
            assert key in plot.titleLabel.text and label in plot.titleLabel.text
            for i, h in enumerate(histories):
                curve = state.curve(key, label, i)
                assert curve.getViewBox() is plot.vb
                np.testing.assert_array_equal(original(curve)[1], h.state[label][key].reshape(-1).astype(float))
    # the scale: only the run with a GradScaler has one; its first step overflowed and was skipped
    scaled = 1
    assert [i for i in range(3) if state.curve("scale", i) is not None] == [scaled]
    np.testing.assert_array_equal(original(state.curve("scale", scaled))[1], histories[scaled].grad_scale.astype(float))
    assert 0.0 in state.skipped[scaled].getData()[0]
    assert not state.missing_note.isVisible()                  # every run is Adam: nothing left out
    screenshot(window, "runs_side_by_side_fp16_state")


def test_runs_with_other_optimizers_are_named_where_their_state_is_missing(rig, qtbot):
    r = rig(rig_rosenbrock(60), grid=False)
    variants = r.doc.scenario.variants()
    kinds = [v.optimizer.kind for v in variants]
    state = r.dash.state
    r.dash.tabs.setCurrentWidget(state)
    with_momentum = [i for i, v in enumerate(variants) if v.optimizer.hyper.get("momentum", 0)]
    adam = kinds.index("adam")
    for i in range(len(r.doc.histories)):
        assert (state.curve("momentum_buffer", "x", i) is not None) == (i in with_momentum)
        assert (state.curve("exp_avg", "x", i) is not None) == (i == adam)
        assert state.curve("step_size", "x", i) is not None            # every run takes steps
    note = state.missing_note
    assert note.isVisible()
    plain = plain_text(note.text())
    assert f"exp_avg (m), exp_avg_sq (v) only in ■ {variants[adam].name}" in plain
    plain_sgd = [v.name for v, k in zip(variants, kinds) if k == "sgd" and not v.optimizer.hyper.get("momentum", 0)]
    assert f"■ {plain_sgd[0]} keeps no optimizer state" in plain


def plain_text(html: str) -> str:
    """What a rich-text label reads as (non-breaking spaces as spaces)."""
    doc = QtGui.QTextDocument()
    doc.setHtml(html)
    return doc.toPlainText().replace("\xa0", " ")


def test_a_click_on_a_run_in_any_legend_hides_it_in_every_tab(qtbot, make_window):
    window = make_window(bundled_path(FP16))
    dash = window.dashboards
    names = [v.name for v in window.document.scenario.variants()]
    run = 2                                                        # float32

    def shown(i) -> dict:
        return {"loss": dash.loss.curve("loss", i).isVisible(),
                "parameters": dash.params.curve("param", "0.weight", i).isVisible(),
                "gradients": dash.grads.curve("grad", "0.weight", i).isVisible(),
                "gradnorm": dash.grads.curve("gradnorm", i).isVisible(),
                "state": dash.state.curve("exp_avg", "0.bias", i).isVisible(),
                "step": dash.state.curve("step_size", "0.weight", i).isVisible(),
                "space": dash.space.trajectories[i].isVisible() and dash.space.current[i].isVisible(),
                "lr": dash.schedule.curve("lr", i).isVisible()}
    show_tab(qtbot, window, dash.params)
    assert all(shown(run).values())
    click_legend_entry(qtbot, dash.params, dash.params.runs_legend, names[run])
    assert not any(shown(run).values()), shown(run)
    assert all(shown(0).values()) and all(shown(1).values())
    legends = [dash.loss.plot.legend_box, dash.params.runs_legend, dash.grads.runs_legend, dash.state.runs_legend,
               dash.space.legend, dash.schedule.lr_plot.legend_box]
    for legend in legends:
        assert [e.name for e in legend.entries if e.hidden] == [names[run]]
    screenshot(window, "runs_side_by_side_float32_hidden")
    # a live refresh keeps it hidden; a click in the Optimizer state legend shows it again
    for panel in dash.panels:
        panel.refresh()
    assert not any(shown(run).values())
    show_tab(qtbot, window, dash.state)
    click_legend_entry(qtbot, dash.state, dash.state.runs_legend, names[run])
    assert all(shown(run).values())
    assert not any(e.hidden for legend in legends for e in legend.entries)


@pytest.mark.parametrize("stem", [FP16, "10_adam_vs_adamw", "04_rosenbrock_race"])
def test_every_legend_lists_the_main_run_first_in_distinct_colour_blind_safe_colours(make_window, stem):
    window = make_window(bundled_path(stem))
    dash = window.dashboards
    names = [v.name for v in window.document.scenario.variants()]
    legends = {"loss": dash.loss.plot.legend_box, "parameters": dash.params.runs_legend,
               "gradients": dash.grads.runs_legend, "state": dash.state.runs_legend, "space": dash.space.legend,
               "schedule": dash.schedule.lr_plot.legend_box}
    for tab, legend in legends.items():
        assert legend.names == names, tab
        colours = [e.pen.color().name() for e in legend.entries]
        assert colours == [variant_colour(i).lower() for i in range(len(names))], tab
        assert len(set(colours)) == len(colours) and all(c.upper() in PALETTE for c in map(str.upper, colours))


def test_the_toolbar_is_the_one_place_that_chooses_the_current_run(qtbot, make_window):
    window = make_window(bundled_path(FP16))
    dash, controls = window.dashboards, window.controls
    variants = window.document.scenario.variants()
    names = [v.name for v in variants]
    # no other chooser: no combo box listing the runs in the dashboards or the Controls
    for widget in (dash, controls):
        for combo in widget.findChildren(QtWidgets.QComboBox):
            assert [combo.itemText(i) for i in range(combo.count())] != names, combo
    assert not hasattr(dash, "variant_box") and not hasattr(controls, "variant_box")
    assert isinstance(controls.run_label, QtWidgets.QLabel) and "toolbar" in controls.run_label.text()
    show_tab(qtbot, window, dash.params)
    for i in (1, 2, 0):
        choose_in(qtbot, window.variant_box, i)
        assert window.view_state.variant == i and window.variant == i
        # the graph animates this run (its session's trace), the Controls name and edit it
        assert window.replay is not None and window.session is window.document.sessions[i]
        text = plain_text(controls.run_label.text())
        assert f"■ {'Main run' if i == 0 else f'Comparison {i}'}: {names[i]}" in text
        assert controls.precision_box.currentData() == variants[i].loop.precision
        # the dashboards draw it thicker, everywhere (under the others: a run on top of it still shows)
        for panel, key in ((dash.params, ("param", "0.weight")), (dash.grads, ("grad", "0.bias")),
                           (dash.state, ("exp_avg", "0.weight")), (dash.loss, ("loss",))):
            curves = [panel.curve(*key, j) for j in range(3)]
            widths = [c.opts["pen"].widthF() for c in curves]
            assert widths[i] > max(w for j, w in enumerate(widths) if j != i), (panel.title, widths)
            if panel is not dash.loss:
                assert curves[i].zValue() < min(c.zValue() for j, c in enumerate(curves) if j != i)
        entries = dash.params.runs_legend.entries
        assert entries[i].pen.widthF() > max(e.pen.widthF() for j, e in enumerate(entries) if j != i)
    screenshot(window, "runs_side_by_side_toolbar_chooses")


def test_curves_are_made_once_and_only_set_data_on_refresh(qtbot, make_window):
    window = make_window(bundled_path(FP16))
    dash = window.dashboards
    panels = (dash.params, dash.grads, dash.state)
    before = [{k: id(c) for k, c in p.curves.items()} for p in panels]
    plots = [dict(p.cells) for p in panels]
    for p in panels:
        p.refresh()
    assert [{k: id(c) for k, c in p.curves.items()} for p in panels] == before
    assert [dict(p.cells) for p in panels] == plots
    # a run in progress: the same curves grow (live refresh), then the finished run
    scenario = load(bundled_path(FP16))
    scenario.loop.steps = 120
    for v in scenario.comparisons:
        v.loop.steps = 120
    window.document.edit(scenario)
    finish(window)
    assert len(original(dash.params.curve("param", "0.weight", 2))[1]) == 121
