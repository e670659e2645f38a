"""Clipping and scheduler controls on real widgets, and the "LR and clipping" plot: what the controls
set re-runs the core, and the plot shows the learning rate and the gradient norm before and after
clipping that the History holds, for every run."""
from __future__ import annotations

import numpy as np

from gradviz.scenario import bundled_path, load
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS, choose, click_checkbox, original, run_core, type_into


def curve_y(panel, *key):
    curve = panel.curve(*key)
    assert curve is not None, key
    return original(curve)[1]


def test_clipping_toggle_and_max_norm_rerun_and_plot_both_norms(rig, qtbot):
    scenario = load(bundled_path("07_mlp_two_moons"))
    scenario.loop.steps = 40
    r = rig(scenario)
    sched = r.controls.schedule
    assert not sched.clip_box.isChecked() and not sched.max_norm_edit.isEnabled()
    assert r.dash.schedule.curve("before", 0) is None          # nothing clipped: no "before" curve
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, sched.clip_box)
    assert r.doc.scenario.loop.clip_grad_norm == 1.0 and sched.max_norm_edit.isEnabled()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, sched.max_norm_edit, "0.05")
    assert r.doc.scenario.loop.clip_grad_norm == 0.05 and r.doc.modified
    expected = run_core(r.doc.scenario)
    before = curve_y(r.dash.schedule, "before", 0)
    after = curve_y(r.dash.schedule, "after", 0)
    np.testing.assert_array_equal(before, expected.clip_norm.astype(np.float64))
    np.testing.assert_allclose(after, expected.grad_norm(), rtol=1e-12)
    clipped = before > 0.05
    assert clipped.any()
    np.testing.assert_allclose(after[clipped], 0.05, rtol=1e-4)      # what step() saw: max_norm
    np.testing.assert_allclose(after[~clipped], before[~clipped], rtol=1e-6)   # float64 vs float32 sums
    # a refused max_norm stays in its field with the reason; nothing is applied
    type_into(qtbot, sched.max_norm_edit, "-1")
    assert "Not applied" in r.controls.error_text("clip_grad_norm")
    assert r.doc.scenario.loop.clip_grad_norm == 0.05 and sched.clip_box.isChecked()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, sched.clip_box)
    assert r.doc.scenario.loop.clip_grad_norm is None
    assert r.dash.schedule.curve("before", 0) is None


def test_scheduler_kind_argument_and_placement_replot_the_learning_rate(rig, qtbot):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    scenario.optimizer.hyper["lr"] = 0.01
    scenario.loop.steps = 40
    r = rig(scenario)
    sched = r.controls.schedule
    np.testing.assert_array_equal(curve_y(r.dash.schedule, "lr", 0), np.full(40, 0.01))
    assert not sched.argument_edit.isEnabled() and not sched.placement_box.isEnabled()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, sched.kind_box, "StepLR")
    spec = r.doc.scenario.loop.scheduler
    assert spec.kind == "step" and spec.hyper["step_size"] == 10 and spec.placement == "after_step"
    assert sched.argument_label.text() == "step_size" and sched.argument_edit.text() == "10"
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        type_into(qtbot, sched.argument_edit, "5")
    lr = curve_y(r.dash.schedule, "lr", 0)
    np.testing.assert_allclose(lr, 0.01 * 0.1 ** (np.arange(40) // 5), rtol=1e-12)
    np.testing.assert_array_equal(lr, run_core(r.doc.scenario).lr)
    # the mistake: the same schedule one step early
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, sched.placement_box, "before")
    assert r.doc.scenario.loop.scheduler.placement == "before_step"
    early = curve_y(r.dash.schedule, "lr", 0)
    np.testing.assert_allclose(early, 0.01 * 0.1 ** ((np.arange(40) + 1) // 5), rtol=1e-12)
    # a refused argument is explained and not applied
    type_into(qtbot, sched.argument_edit, "0")
    assert "step_size" in r.controls.error_text("scheduler_argument")
    assert r.doc.scenario.loop.scheduler.hyper["step_size"] == 5
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        choose(qtbot, sched.kind_box, "none")
    assert r.doc.scenario.loop.scheduler is None


def test_unscale_toggle_needs_loss_scaling_and_clipping(rig, qtbot):
    r = rig("12_clipping_scaled_gradients")
    sched = r.controls.schedule
    assert sched.unscale_box.isEnabled() and sched.unscale_box.isChecked()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        click_checkbox(qtbot, sched.unscale_box)
    assert r.doc.scenario.loop.unscale_before_clip is False
    after = curve_y(r.dash.schedule, "after", 0)
    np.testing.assert_allclose(after, 0.1 / 65536, rtol=1e-3)        # clipped while scaled
    assert r.dash.schedule.log_box.isChecked()                       # norms span decades


def test_the_lessons_show_their_mistakes_in_the_plot(rig, qtbot):
    r = rig("13_scheduler_before_step", grid=False)
    r.dash.tabs.setCurrentWidget(r.dash.schedule)
    right, early = curve_y(r.dash.schedule, "lr", 0), curve_y(r.dash.schedule, "lr", 1)
    np.testing.assert_array_equal(early[:-1], right[1:])           # one step early
    assert right[0] == 0.1 and 0.1 not in early                     # the first value never used
    loss = curve_y(r.dash.loss, "loss", 1)
    assert loss[-1] > 0.3 and curve_y(r.dash.loss, "loss", 0)[-1] == 0.0
    r = rig("12_clipping_scaled_gradients")
    before = [curve_y(r.dash.schedule, "before", i) for i in (0, 2)]
    assert r.dash.schedule.curve("before", 1) is None               # "no clipping" measures nothing
    assert abs(before[1][0] / before[0][0] / 65536 - 1) < 1e-3      # the scaled norm: 65536 times
