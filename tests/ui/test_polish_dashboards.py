"""Issue 13 on the dashboards, on real widgets: plain axis numbers (no SI prefixes), legends in a
stable order whose labels sit on their swatches and whose entries hide a run in every tab, slide-
ready exports, a readable Series menu and Optimizer-state tab, and no plot of another scenario."""
from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import bundled_path, load
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS, original
from tests.ui.dashboard_rig import rosenbrock as rig_rosenbrock


def rosenbrock(steps: int = 200):
    return rig_rosenbrock(steps)


def tick_strings(axis) -> list[str]:
    """The tick labels the axis draws for its current range (what the user reads)."""
    lo, hi = axis.range
    size = axis.geometry().height() if axis.orientation in ("left", "right") else axis.geometry().width()
    return [text for spacing, values in axis.tickValues(lo, hi, size)
            for text in axis.tickStrings(values, axis.autoSIPrefixScale, spacing)]


def assert_plain_axis(axis, name: str) -> None:
    assert axis.autoSIPrefixScale == 1.0 and axis.labelUnitPrefix == ""
    assert axis.labelText == name
    assert "(x" not in axis.labelString(), axis.labelString()
    # the rotated name fits along its axis (not cut off at both ends)
    if axis.orientation == "left":
        width = QtGui.QFontMetricsF(axis.label.font()).horizontalAdvance(axis.labelText)
        assert width <= axis.geometry().height(), (axis.labelText, width, axis.geometry().height())


def settle(qtbot, dash) -> None:
    qtbot.wait(30)
    for p in dash.panels:
        p.view.viewport().repaint()


# -- item 2: axis labels -------------------------------------------------------------------------
def test_lr_10_loss_axis_reads_plain_numbers(rig, qtbot):
    scenario = load(bundled_path("01_tutorial_wx_b"))
    scenario.optimizer.hyper["lr"] = 10.0
    r = rig(scenario, grid=False)
    loss = r.dash.loss
    settle(qtbot, r.dash)
    assert loss.log_box.isChecked()                      # the loss explodes over decades: log y
    axis = loss.plot.getAxis("left")
    assert_plain_axis(axis, "loss")
    ticks = tick_strings(axis)
    assert ticks and not any("e+" in t or "x1e" in t for t in ticks)
    # the starting loss (4) lies inside the axis range and the ticks around it read 1 and 10
    first = float(r.doc.histories[0].loss[0])
    lo, hi = axis.range
    assert 10 ** lo <= first <= 10 ** hi
    assert "1" in ticks or "10" in ticks, ticks
    assert "10⁻²⁷" not in ticks


def test_float16_bias_axis_reads_half_not_500(rig, qtbot):
    r = rig("09_fp16_underflow", grid=False)
    r.dash.tabs.setCurrentWidget(r.dash.params)
    settle(qtbot, r.dash)
    first = r.dash.params.plot_of("0.weight")                # the first column names the y axis
    assert first.getAxis("left").labelText in ("value before step k", "value")
    axis = r.dash.params.plot_of("0.bias").getAxis("left")
    assert_plain_axis(axis, axis.labelText)
    ticks = tick_strings(axis)
    assert "0.5" in ticks and "500" not in ticks, ticks


def test_no_axis_of_any_panel_uses_an_si_prefix(rig, qtbot):
    r = rig("09_fp16_underflow")
    settle(qtbot, r.dash)
    axes = [p.getAxis(name) for panel in r.dash.panels for p in panel.plots() for name in ("left", "bottom")]
    axes.append(r.dash.space.colorbar.axis)
    for axis in axes:
        assert not axis.autoSIPrefix
        assert axis.autoSIPrefixScale == 1.0
        shown = re.sub(r"<[^>]+>", "", axis.labelString()).strip()
        assert shown == axis.labelText.strip(), shown          # no "(x0.001)", no "(k…)" unit prefix


def test_a_constant_lr_reads_from_zero_to_a_little_above_it(rig, qtbot):
    r = rig("09_fp16_underflow", grid=False)
    r.dash.tabs.setCurrentWidget(r.dash.schedule)
    settle(qtbot, r.dash)
    plot = r.dash.schedule.lr_plot
    lo, hi = plot.vb.viewRange()[1]
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.05 < hi <= 0.06
    ticks = tick_strings(plot.getAxis("left"))
    assert "0" in ticks and any(t.startswith("0.0") for t in ticks), ticks
    # the lr and the norm sit side by side, each with the full height of the panel
    assert abs(plot.vb.sceneBoundingRect().top() - r.dash.schedule.norm_plot.vb.sceneBoundingRect().top()) < 2


# -- item 6: legends ---------------------------------------------------------------------------
def legend_names(legend) -> list[str]:
    return [entry.name for entry in legend.entries]


def test_legends_keep_the_main_run_first_after_an_lr_edit(rig):
    r = rig(rosenbrock())
    names = [v.name for v in r.doc.scenario.variants()]
    for legend in (r.dash.loss.plot.legend_box, r.dash.space.legend, r.dash.schedule.lr_plot.legend_box):
        assert legend_names(legend) == names
    scenario = r.doc.editable_copy()
    scenario.optimizer.hyper["lr"] = 0.002
    r.doc.edit(scenario)
    r.doc.finish_now()
    r.dash.refresh()
    edited = [v.name for v in r.doc.scenario.variants()]
    # the main run is named for the lesson ("plain SGD, ..."): the edit keeps its name and its place
    assert r.doc.scenario.variants()[0].optimizer.hyper["lr"] == 0.002 and edited[0] == names[0]
    for legend in (r.dash.loss.plot.legend_box, r.dash.space.legend, r.dash.schedule.lr_plot.legend_box):
        assert legend_names(legend) == edited


def test_adam_and_adagrad_have_clearly_different_colours(rig):
    from ui.theme import variant_colour
    r = rig(rosenbrock(50))
    names = [v.name for v in r.doc.scenario.variants()]
    adam = QtGui.QColor(variant_colour(names.index("Adam")))
    adagrad = QtGui.QColor(variant_colour(names.index("Adagrad")))
    assert abs(adam.hueF() - adagrad.hueF()) > 0.25          # vermillion vs sky blue, not red vs brown
    colours = {variant_colour(i) for i in range(len(names))}
    assert len(colours) == len(names)


def row_centre(image: QtGui.QImage, rect: QtCore.QRect, wanted) -> float | None:
    """Mean y of the pixels in ``rect`` for which ``wanted(QColor)`` holds."""
    ys = []
    for y in range(rect.top(), rect.bottom() + 1):
        for x in range(rect.left(), rect.right() + 1):
            if 0 <= x < image.width() and 0 <= y < image.height() and wanted(image.pixelColor(x, y)):
                ys.append(y)
    return float(np.mean(ys)) if ys else None


def test_legend_labels_sit_on_their_swatches_in_a_tall_plot(rig, qtbot):
    r = rig(rosenbrock(), grid=False)
    r.window.resize(1400, 1000)                              # a tall Parameter space, legend beside it
    r.dash.tabs.setCurrentWidget(r.dash.space)
    settle(qtbot, r.dash)
    space = r.dash.space
    assert space.plot.vb.height() > 500
    image = space.view.grab().toImage()
    ratio = image.devicePixelRatio()
    for entry in space.legend.entries:
        colour = QtGui.QColor(entry.pen.color())
        swatch = space.view.mapFromScene(entry.mapRectToScene(entry.swatch_rect())).boundingRect()
        text = space.view.mapFromScene(entry.mapRectToScene(entry.text_rect())).boundingRect()
        scale = QtGui.QTransform.fromScale(ratio, ratio)
        swatch, text = scale.mapRect(swatch.adjusted(0, -6, 0, 6)), scale.mapRect(text)

        def is_swatch(c, colour=colour):
            return abs(c.red() - colour.red()) + abs(c.green() - colour.green()) + abs(c.blue() - colour.blue()) < 60

        def is_text(c):
            return c.lightness() < 140
        ys, yt = row_centre(image, swatch, is_swatch), row_centre(image, text, is_text)
        assert ys is not None and yt is not None, entry.name
        assert abs(ys - yt) <= 3 * ratio, (entry.name, ys, yt)


def click_legend_entry(qtbot, panel, legend, name: str) -> None:
    entry = next(e for e in legend.entries if e.name == name)
    panel.view.viewport().repaint()
    pos = panel.view.mapFromScene(entry.mapToScene(entry.text_rect().center()))
    qtbot.mouseClick(panel.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)


def test_clicking_a_legend_entry_hides_that_run_in_every_tab(rig, qtbot):
    r = rig(rosenbrock())
    adam = [v.name for v in r.doc.scenario.variants()].index("Adam")
    settle(qtbot, r.dash)
    click_legend_entry(qtbot, r.dash.loss, r.dash.loss.plot.legend_box, "Adam")
    assert not r.dash.loss.curve("loss", adam).isVisible()
    assert r.dash.loss.curve("loss", 0).isVisible()
    assert not r.dash.space.trajectories[adam].isVisible() and not r.dash.space.current[adam].isVisible()
    assert not r.dash.schedule.curve("lr", adam).isVisible()
    assert not r.dash.schedule.curve("after", adam).isVisible()
    for legend in (r.dash.loss.plot.legend_box, r.dash.space.legend, r.dash.schedule.lr_plot.legend_box):
        assert [e.name for e in legend.entries if e.hidden] == ["Adam"]
    # hidden stays hidden through a refresh; a click in another tab's legend shows it again
    r.dash.refresh()
    assert not r.dash.loss.curve("loss", adam).isVisible()
    click_legend_entry(qtbot, r.dash.space, r.dash.space.legend, "Adam")
    assert r.dash.loss.curve("loss", adam).isVisible() and r.dash.space.trajectories[adam].isVisible()
    assert not any(e.hidden for e in r.dash.loss.plot.legend_box.entries)


def test_clicking_a_run_in_the_parameters_legend_hides_it_in_every_small_plot(rig, qtbot):
    r = rig(rosenbrock(50))
    settle(qtbot, r.dash)
    adam = [v.name for v in r.doc.scenario.variants()].index("Adam")
    click_legend_entry(qtbot, r.dash.params, r.dash.params.runs_legend, "Adam")
    for label in ("x", "y"):
        assert not r.dash.params.curve("param", label, adam).isVisible()
        assert not r.dash.grads.curve("grad", label, adam).isVisible()
        assert not r.dash.state.curve("step_size", label, adam).isVisible()
        assert not r.dash.state.curve("exp_avg", label, adam).isVisible()
        assert r.dash.params.curve("param", label, 0).isVisible()
    assert not r.dash.loss.curve("loss", adam).isVisible()


# -- item 7: exports -----------------------------------------------------------------------------
def svg_paths_by_stroke(svg: str) -> dict[str, list[int]]:
    """stroke colour -> the number of drawing commands of each <path> drawn in it."""
    out: dict[str, list[int]] = {}
    for g, path in re.findall(r'<g ([^>]*)>\s*(<path[^>]*/>)', svg):
        stroke = re.search(r'stroke="([^"]+)"', g)
        d = re.search(r' d="([^"]*)"', path)
        if stroke and d:
            out.setdefault(stroke.group(1).lower(), []).append(len(re.findall(r"[ML]", d.group(1))))
    return out


def test_exported_parameter_space_svg_has_one_path_per_trajectory_title_and_axis_names(rig, tmp_path):
    from ui.dashboards import export_plot
    from ui.theme import variant_colour
    r = rig(rosenbrock())
    svg = export_plot(r.dash.space, tmp_path / "space.svg").read_text()
    paths = svg_paths_by_stroke(svg)
    for i, h in enumerate(r.doc.histories):
        long_paths = [n for n in paths.get(variant_colour(i).lower(), []) if n > 50]
        assert len(long_paths) == 1, (i, paths.get(variant_colour(i).lower()))
        assert long_paths[0] >= h.steps                # the whole trajectory, in one vector path
    assert len(re.findall("<image", svg)) < 10        # the landscape, the colour bar, one marker per run
    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert f"Parameter space — {r.doc.scenario.title}" in texts
    assert {"x", "y", "log₁₀ loss"} <= set(texts)
    assert {v.name for v in r.doc.scenario.variants()} <= set(texts)      # the legend


def test_exported_tutorial_plots_name_w_and_b_and_are_slide_sized(rig, tmp_path):
    from ui.dashboards import export_plot
    r = rig("01_tutorial_wx_b")
    before = r.dash.loss.view.size()
    svg = export_plot(r.dash.space, tmp_path / "space.svg").read_text()
    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    assert {"w", "b"} <= set(texts)
    png = export_plot(r.dash.loss, tmp_path / "loss.png")
    image = QtGui.QImage(str(png))
    assert image.width() >= 2000 and image.height() >= 1100
    loss_svg = export_plot(r.dash.loss, tmp_path / "loss.svg").read_text()
    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", loss_svg)]
    assert f"Loss — {r.doc.scenario.title}" in texts and {"loss", "optimizer step"} <= set(texts)
    assert r.dash.loss.view.size() == before          # laid out large for the export, then put back


def test_colour_bar_label_does_not_overlap_its_ticks(rig, qtbot, tmp_path):
    r = rig(rosenbrock())
    settle(qtbot, r.dash)
    axis = r.dash.space.colorbar.axis
    label = axis.label.mapRectToScene(axis.label.boundingRect())
    numbers = axis.mapRectToScene(QtCore.QRectF(0, 0, axis.textWidth + 8, axis.height()))
    assert label.left() >= numbers.left() + axis.textWidth


# -- item 9: the Series menu and the Optimizer-state tab ------------------------------------------
def test_series_menu_is_a_menu_of_checkable_entries_that_stays_open(rig, qtbot):
    r = rig("07_mlp_two_moons", grid=False)
    picker = r.dash.picker
    menu = picker.menu()
    labels = [s.label for s in r.dash.selection.series]
    assert sorted(a.text() for a in picker.actions_) == sorted(labels)
    assert all(a.isCheckable() for a in picker.actions_)
    assert sorted(a.text() for a in picker.actions_ if a.isChecked()) == sorted(r.dash.selection.labels)
    assert [a.text() for a in menu.actions() if a.isSeparator()]       # grouped under headings
    menu.popup(picker.mapToGlobal(QtCore.QPoint(0, picker.height())))
    qtbot.waitUntil(menu.isVisible)
    # a top-level entry (a tensor norm): a readable row; a click unticks it and the menu stays open
    norm = next(a for a in picker.actions_ if a.isChecked() and a.text().startswith("‖"))
    rect = menu.actionGeometry(norm)
    assert rect.height() >= 16
    qtbot.mouseMove(menu, rect.center())
    qtbot.mouseClick(menu, QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    assert not norm.isChecked() and norm.text() not in r.dash.selection.labels
    assert menu.isVisible()                                          # tick several in one visit
    # a tensor's elements live in a submenu of their own (not hundreds of boxes in one)
    assert len(menu.actions()) < 20
    element = next(a for a in picker.actions_ if "[" in a.text())
    sub = element.parent()
    assert isinstance(sub, QtWidgets.QMenu) and sub is not menu and sub.menuAction() in menu.actions()
    sub.popup(menu.mapToGlobal(menu.actionGeometry(sub.menuAction()).topRight()))
    qtbot.waitUntil(sub.isVisible)
    rect = sub.actionGeometry(element)
    qtbot.mouseMove(sub, rect.center())
    qtbot.mouseClick(sub, QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    assert element.isChecked() and element.text() in r.dash.selection.labels
    assert r.dash.params.curve("param", element.text()) is not None
    assert r.dash.params.curve("param", norm.text()) is None
    sub.close()
    menu.close()


@pytest.mark.parametrize("size", [(800, 600), None])
def test_optimizer_state_plots_are_readable_at_the_default_size(make_window, qtbot, size):
    window = make_window(bundled_path("09_fp16_underflow"))
    if size:
        window.resize(*size)
    qtbot.waitUntil(lambda: window.document.sessions and not window.document.running, timeout=RUN_TIMEOUT_MS)
    dash = window.dashboards
    window.dashboards_dock.show()
    dash.set_layout_mode("tabs")
    dash.tabs.setCurrentWidget(dash.state)
    qtbot.wait(50)
    dash.state.view.viewport().repaint()
    plots = list(dash.state.cells.values())
    assert len(plots) == 7             # (exp_avg, exp_avg_sq, step taken) x (0.weight, 0.bias), the scale
    for key, plot in dash.state.cells.items():
        assert plot.height() >= 140, (key, plot.height())
        assert plot.vb.height() >= 70, (key, plot.vb.height())
        title = plot.titleLabel.mapRectToScene(plot.titleLabel.boundingRect())
        assert title.bottom() <= plot.vb.sceneBoundingRect().top() + 1     # the name is above the curves
        assert plot.titleLabel.text.startswith(key[0].split("_")[0] if key != "scale" else "GradScaler")


# -- item 1: one scenario at a time ----------------------------------------------------------------
def test_show_pending_clears_every_plot_until_the_new_run_arrives(rig, qtbot):
    r = rig(rosenbrock(), grid=False)
    r.dash.tabs.setCurrentWidget(r.dash.space)
    qtbot.waitUntil(lambda: r.dash.space.landscape is not None, timeout=10_000)
    r.dash.show_pending("Running Rosenbrock race… 40%")
    assert r.dash.pending.isVisible() and r.dash.pending.text() == "Running Rosenbrock race… 40%"
    assert r.dash.pending.geometry() == r.dash.stack.rect()
    for i in range(len(r.doc.histories)):
        x, _y = r.dash.loss.curve("loss", i).getOriginalDataset()
        assert x is None or len(x) == 0
    assert r.dash.space.landscape is None and r.dash.space.image.image is None
    assert not r.dash.space.colorbar.isVisible() and not r.dash.space.isocurves
    assert r.dash.loss.plot.legend_box.entries == []
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.rerun()
    assert not r.dash.pending.isVisible()
    assert len(original(r.dash.loss.curve("loss", 0))[0]) == r.doc.histories[0].steps
    qtbot.waitUntil(lambda: r.dash.space.landscape is not None, timeout=10_000)


def test_parameter_space_never_draws_old_contours_under_new_axis_names(rig, qtbot):
    r = rig(rosenbrock(), grid=False)
    r.dash.tabs.setCurrentWidget(r.dash.space)
    qtbot.waitUntil(lambda: r.dash.space.landscape is not None, timeout=10_000)
    tutorial = load(bundled_path("01_tutorial_wx_b"))
    tutorial.loop.steps = 20_000                       # long enough to look at it while it runs
    seen = []

    def look(_done, _total):
        space = r.dash.space
        seen.append((space.axes(), space.landscape is not None, space.image.image is not None,
                     space.plot.getAxis("bottom").labelText))
    r.doc.runProgress.connect(look)
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.set_scenario(tutorial, tutorial.path)
    r.doc.runProgress.disconnect(look)
    assert seen
    # before the first live refresh (a turn of its own, after the progress pump's) the plot is empty:
    # no axes, no label; then the new axes and their names, never Rosenbrock's contours
    assert (("w", "b"), False, False, "w") in seen, seen
    for axes, has_landscape, has_image, bottom in seen:
        assert (axes, bottom) in (((None, None), ""), (("w", "b"), "w")), seen
        assert not has_landscape and not has_image
    qtbot.waitUntil(lambda: r.dash.space.landscape is not None, timeout=10_000)
    assert r.dash.space.landscape.xs is not None


# -- History.reduction, when the History has one ------------------------------------------------------
def test_a_decimated_history_says_so_under_the_time_series_titles(rig):
    r = rig("01_tutorial_wx_b")
    for panel in (r.dash.loss, r.dash.params, r.dash.grads):
        assert not panel.reduction_note.isVisibleTo(panel)        # a full History: nothing to say
    r.doc.histories[0].reduction = "parameters every 10th step (2,000 of 20,000 kept)"
    r.dash.refresh()
    for panel in (r.dash.loss, r.dash.params, r.dash.grads, r.dash.state):
        assert panel.reduction_note.isVisibleTo(panel)
        assert panel.reduction_note.text() == "parameters every 10th step (2,000 of 20,000 kept)"
