"""The controls dock on real widgets: typed values re-run the Session and the plots show what the core
computes; invalid values are refused at the widget; comparisons come and go with their curves."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6 import QtCore

from gradviz.scenario import bundled_path, load
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS, choose, click_checkbox, original, run_core, type_into


def test_typing_lr_replots_what_the_core_computes(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.lr_edit, "0.0375")
    assert r.doc.scenario.optimizer.hyper["lr"] == 0.0375
    assert r.doc.modified

    expected_scenario = load(bundled_path("01_tutorial_wx_b"))
    expected_scenario.optimizer.hyper["lr"] = 0.0375
    expected = run_core(expected_scenario)
    _, w = original(r.dash.params.curve("param", "w"))
    np.testing.assert_array_equal(w, expected.params["w"].astype(np.float64))
    _, loss = original(r.dash.loss.curve("loss", 0))
    np.testing.assert_array_equal(loss, expected.loss.astype(np.float64))
    xs, ys = original(r.dash.space.trajectories[0])
    np.testing.assert_array_equal(xs, expected.params[r.dash.space.axes()[0]].astype(np.float64))
    np.testing.assert_array_equal(ys, expected.params[r.dash.space.axes()[1]].astype(np.float64))
    # the slider followed the exact value
    from ui.controls import lr_to_tick
    assert r.controls.lr_slider.value() == lr_to_tick(0.0375)


def test_lr_slider_applies_a_log_scaled_value(rig, qtbot):
    from ui.controls import LR_TICKS, tick_to_lr
    r = rig("01_tutorial_wx_b")
    middle = LR_TICKS // 2
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.controls.lr_slider.setValue(middle)       # what a key press or a release at the middle does
    assert r.doc.scenario.optimizer.hyper["lr"] == tick_to_lr(middle) == 0.002
    assert 1e-3 < tick_to_lr(middle) < 1e-2        # middle of 1e-6 … 10 on a log scale


def test_zero_grad_never_makes_the_plotted_grad_norm_grow(rig, qtbot):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    scenario.optimizer.hyper["lr"] = 0.01
    r = rig(scenario)
    _, before = original(r.dash.grads.curve("gradnorm"))
    assert np.all(np.diff(before[:20]) < 0)          # zero_grad() each step: |grad| shrinks
    box = r.controls.zero_grad_box
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, box, "n")                      # keyboard search picks "never (…)"
    assert r.doc.scenario.loop.zero_grad == "never"
    _, after = original(r.dash.grads.curve("gradnorm"))
    assert np.all(np.diff(after[:5]) > 0)            # old grads stay in .grad: it keeps growing
    assert after.max() > 3 * before[0]
    expected = run_core(r.doc.scenario)
    np.testing.assert_allclose(after, np.hypot(expected.grads["w"], expected.grads["b"]), rtol=1e-6)
    assert not r.controls.set_to_none_box.isEnabled()


def test_accumulation_4_with_division_reproduces_the_batch_32_curve(rig, qtbot):
    scenario = load(bundled_path("03_gradient_accumulation"))
    scenario.comparisons = []
    scenario.loop.accumulation_steps = 1               # one batch of 32
    r = rig(scenario)
    _, batch32 = original(r.dash.loss.curve("loss", 0))
    _, b32 = original(r.dash.params.curve("param", "b"))
    assert r.dash.loss.curve("micro") is None
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.accumulation_box, "4")
    assert r.doc.scenario.loop.accumulation_steps == 4 and r.doc.scenario.loop.divide_loss
    _, accumulated = original(r.dash.loss.curve("loss", 0))
    _, b_acc = original(r.dash.params.curve("param", "b"))
    np.testing.assert_allclose(accumulated, batch32, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b_acc, b32, rtol=1e-5, atol=1e-7)
    micro = r.dash.loss.curve("micro")                 # the four micro-batch losses: one curve, 4 lines
    h = r.doc.sessions[0].history
    x, y = micro.xData, micro.yData
    assert len(x) == 4 * h.steps
    for j in range(4):
        np.testing.assert_array_equal(y[j * h.steps:(j + 1) * h.steps], np.asarray(h.micro_losses)[:, j])
    connect = micro.curve.opts["connect"]
    assert list(np.flatnonzero(~connect)) == [h.steps * j - 1 for j in range(1, 5)]   # lines not joined
    # faint: the run's colour at alpha 70 over the plot's background, drawn with an opaque pen (a
    # translucent one is stroked as one polygon: 46-115 ms per paint for 222 lines)
    from PySide6 import QtGui, QtWidgets

    from ui import theme as T
    from ui.theme import variant_colour

    def mixed():
        c, bg = QtGui.QColor(variant_colour(0)), QtGui.QColor(T.PLOT_BACKGROUND)
        return tuple(round(f * 70 / 255 + b * (1 - 70 / 255)) for f, b in
                     ((c.red(), bg.red()), (c.green(), bg.green()), (c.blue(), bg.blue())))

    def close(colour):                                  # (to the rounding of a channel)
        return colour.alpha() == 255 and all(abs(a - b) <= 1 for a, b in zip(colour.getRgb()[:3], mixed()))

    assert close(micro.opts["pen"].color())
    app = QtWidgets.QApplication.instance()
    try:                                                # a dark theme: mixed with the dark background
        T.apply(app, "dark")
        assert close(r.dash.loss.curve("micro").opts["pen"].color())
    finally:
        T.apply(app, "light")
    # without division the curve departs from batch 32
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, r.controls.divide_box)
    assert not r.doc.scenario.loop.divide_loss
    _, undivided = original(r.dash.params.curve("param", "b"))
    assert not np.allclose(undivided, b32, rtol=1e-3)


@pytest.mark.parametrize("field, text, words", [
    ("lr", "-0.1", "lr must be > 0"),
    ("lr", "0", "lr must be > 0"),
    ("lr", "fast", "not a number"),
    ("momentum", "-0.5", "momentum"),
    ("weight_decay", "-1", "weight_decay"),
])
def test_invalid_numbers_are_refused_at_the_widget(rig, qtbot, field, text, words):
    r = rig("01_tutorial_wx_b")
    before = copy.deepcopy(r.doc.scenario)
    edit = r.controls.fields[field]
    with qtbot.assertNotEmitted(r.doc.runStarted, wait=50):
        type_into(qtbot, edit, text)
    message = r.controls.error_text(field)
    assert words in message and message.startswith("Not applied")
    assert r.controls.errors[field].isVisible()
    assert edit.text() == text                          # what the user typed stays, outlined
    assert "border" in edit.styleSheet()
    assert r.doc.scenario == before and not r.doc.modified


def test_nesterov_without_momentum_is_refused_with_pytorchs_rule(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    box = r.controls.fields["nesterov"]
    with qtbot.assertNotEmitted(r.doc.runStarted, wait=50):
        click_checkbox(qtbot, box)
    assert not box.isChecked()                          # the toggle went back
    assert "nesterov" in r.controls.error_text("nesterov").lower()
    assert r.doc.scenario.optimizer.hyper["nesterov"] is False
    # with momentum it is accepted
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.fields["momentum"], "0.9")
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, r.controls.fields["nesterov"])
    assert r.doc.scenario.optimizer.hyper["nesterov"] is True
    assert r.controls.error_text("nesterov") == ""


def test_accumulation_that_does_not_divide_the_batch_is_refused(rig, qtbot):
    scenario = load(bundled_path("03_gradient_accumulation"))
    scenario.comparisons = []
    r = rig(scenario)
    with qtbot.assertNotEmitted(r.doc.runStarted, wait=50):
        type_into(qtbot, r.controls.accumulation_box, "3")
    assert "dividing the batch size (32)" in r.controls.error_text("accumulation_steps")
    assert r.doc.scenario.loop.accumulation_steps == 4


def test_kind_change_rebuilds_the_form_with_pytorch_defaults(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    assert "betas" not in r.controls.fields and "momentum" in r.controls.fields
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, r.controls.kind_box, "Adam")
    opt = r.doc.scenario.optimizer
    assert opt.kind == "adam" and opt.hyper["lr"] == 0.1 and opt.hyper["betas"] == (0.9, 0.999)
    assert set(r.controls.fields) == {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"}
    assert [e.text() for e in r.controls.fields["betas"]] == ["0.9", "0.999"]
    assert {"exp_avg", "exp_avg_sq"} <= set(r.dash.state.keys) and r.dash.state.plot_of("step_size", "w")
    # betas out of range are refused
    b1, _b2 = r.controls.fields["betas"]
    with qtbot.assertNotEmitted(r.doc.runStarted, wait=50):
        type_into(qtbot, b1, "1.5")
    assert "Not applied" in r.controls.error_text("betas")


def test_add_and_remove_a_comparison(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    n_loss = len([k for k in r.dash.loss.curves if k[1] == "loss"])
    n_legend = len(r.dash.loss.plot.legend_box.items)
    n_space = len(r.dash.space.legend.items)
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(r.controls.add_button, QtCore.Qt.MouseButton.LeftButton)
    sc = r.doc.scenario
    assert len(sc.comparisons) == 1 and sc.comparisons[0].name == "SGD(lr=0.1)"
    assert len([k for k in r.dash.loss.curves if k[1] == "loss"]) == n_loss + 1
    assert len(r.dash.loss.plot.legend_box.items) == n_legend + 1
    assert len(r.dash.space.legend.items) == n_space + 1
    assert len(r.dash.space.trajectories) == 2
    assert r.controls.comparison_list.count() == 1

    # try another lr on the main run: the comparison keeps the old curve
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.lr_edit, "0.02")
    _, main = original(r.dash.loss.curve("loss", 0))
    _, kept = original(r.dash.loss.curve("loss", 1))
    np.testing.assert_array_equal(kept, run_core(load(bundled_path("01_tutorial_wx_b"))).loss.astype(float))
    assert not np.array_equal(main, kept)

    r.controls.comparison_list.setCurrentRow(0)
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(r.controls.remove_button, QtCore.Qt.MouseButton.LeftButton)
    assert r.doc.scenario.comparisons == []
    assert len([k for k in r.dash.loss.curves if k[1] == "loss"]) == n_loss
    assert len(r.dash.loss.plot.legend_box.items) == n_legend
    assert len(r.dash.space.legend.items) == n_space
    assert r.controls.comparison_list.count() == 0


def test_editing_a_comparison_through_the_variant_selector(rig, qtbot):
    r = rig("02_forgot_zero_grad")
    main_lr = r.doc.scenario.optimizer.hyper["lr"]
    r.view_state.set_variant(1)                                    # the toolbar's choice (no toolbar here)
    assert "Comparison 1:" in r.controls.run_label.text()
    assert r.controls.zero_grad_box.currentData() == "before_backward"
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.lr_edit, "0.05")
    assert r.doc.scenario.comparisons[0].optimizer.hyper["lr"] == 0.05
    assert r.doc.scenario.optimizer.hyper["lr"] == main_lr          # the main run is untouched


def test_edits_mark_modified_and_save_writes_them(rig, qtbot, tmp_path):
    r = rig("01_tutorial_wx_b")
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.steps_box, "42")
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, r.controls.lr_edit, "0.03")
    assert r.doc.modified
    assert r.dash.loss.curve("loss", 0).getOriginalDataset()[1].shape == (42,)
    path = tmp_path / "edited.toml"
    r.doc.save(path)
    assert not r.doc.modified
    saved = load(path)
    assert saved.loop.steps == 42 and saved.optimizer.hyper["lr"] == 0.03


def test_precision_float16_enables_loss_scaling_and_plots_the_scale(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    assert not r.controls.scaling_box.isEnabled()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, r.controls.precision_box, "float16")
    assert r.controls.scaling_box.isEnabled()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, r.controls.scaling_box)
    assert r.doc.scenario.loop.loss_scaling
    assert "scale" in r.dash.state.cells
    h = r.doc.histories[0]
    _, scale = original(r.dash.state.curve("scale"))
    np.testing.assert_array_equal(scale, h.grad_scale.astype(float))
    # back to float32 switches the scaler off in the same edit (the loader's rule)
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, r.controls.precision_box, "float32")
    assert r.doc.scenario.loop.precision == "float32" and not r.doc.scenario.loop.loss_scaling


def test_micro_batch_lines_break_between_micro_batches_and_start_empty():
    """One curve for every micro-batch's loss: line j is micro-batch j's losses over the steps, not
    joined to line j + 1; before the first step (a run's first refresh) it is empty, not an error."""
    from ui.dashboards.time_series import micro_lines
    micro = np.arange(12.0).reshape(4, 3)              # 4 steps x 3 micro-batches
    x, y, connect = micro_lines(micro)
    assert list(x) == [0, 1, 2, 3] * 3 and list(y) == list(micro.T.reshape(-1))
    assert list(np.flatnonzero(~connect)) == [3, 7, 11]
    x, y, connect = micro_lines(np.empty((0, 222)))
    assert len(x) == len(y) == len(connect) == 0
