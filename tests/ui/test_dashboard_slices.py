"""The dashboards never hold the event loop long (issue 12): the small multiples are made a few per
turn (placeholders until then), kept across refreshes, a hidden tab waits until shown, the Data
tab draws at most ``MAX_POINTS`` points, the series picker makes a tensor's entries when opened.
``finish_pending()`` gives the complete state at once."""
from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from gradviz.scenario import bundled_path, load
from gradviz.view.series import param_steps
from tests.ui.dashboard_rig import rosenbrock


def mlp(steps: int = 30, n: int = 200):
    scenario = load(bundled_path("07_mlp_two_moons"))
    scenario.loop.steps = steps
    scenario.data.n = n
    return scenario


def element_labels(dash, count: int) -> list[str]:
    return [s.label for s in dash.selection.series if s.kind == "element"][:count]


def record_turns(monkeypatch, panel) -> list[int]:
    """The plots ``panel`` makes in each turn of the event loop (each ``Slices`` job call)."""
    made: list[int] = []
    work = panel._work_slice

    def recorded(deadline):
        before = len(panel._plots)           # made new or taken from the spares
        more = work(deadline)
        made.append(len(panel._plots) - before)
        return more
    monkeypatch.setattr(panel, "_work_slice", recorded)
    return made


def test_many_small_plots_are_made_a_few_per_turn_and_all_arrive(rig, qtbot, monkeypatch):
    from ui.dashboards.time_series import PLOTS_PER_TURN, CellPlaceholder

    r = rig(mlp(), grid=False)
    dash, params = r.dash, r.dash.params
    dash.tabs.setCurrentWidget(params)
    qtbot.waitUntil(lambda: params.pending == 0, timeout=10_000)
    labels = element_labels(dash, 14)
    turns = record_turns(monkeypatch, params)
    dash.selection.set_labels(labels)
    # the refresh itself makes no plot: the new cells show placeholders, made over the next turns
    assert len(params._made_cells()) < len(labels)
    assert any(isinstance(item, CellPlaceholder) and item.isVisible() for item in params.view.ci.items)
    qtbot.waitUntil(lambda: params.pending == 0, timeout=20_000)
    assert len(turns) > 1 and max(turns) <= PLOTS_PER_TURN
    assert not any(isinstance(item, CellPlaceholder) and item.isVisible() for item in params.view.ci.items)
    assert list(params.cells) == labels
    h = r.doc.histories[0]
    for label in labels:
        series = next(s for s in dash.selection.series if s.label == label)
        x, y = params.curve("param", label, 0).getOriginalDataset()
        np.testing.assert_array_equal(x, param_steps(h))
        np.testing.assert_allclose(y, series.of(h.params[series.param]))


def test_finish_pending_completes_every_tab_at_once(rig):
    r = rig(mlp(), grid=False)
    dash = r.dash
    dash.selection.set_labels(element_labels(dash, 10))
    state = dash.state
    assert not state.isVisible() and state._deferred           # a hidden tab waits until it is shown
    dash.finish_pending()
    assert state.pending == 0 and not state._deferred
    plots = state._made_cells()
    assert len(plots) == len(state._order) > 10
    h = r.doc.histories[0]
    label = element_labels(dash, 1)[0]
    series = next(s for s in dash.selection.series if s.label == label)
    _x, y = state.curve("exp_avg", label, 0).getOriginalDataset()
    np.testing.assert_allclose(y, series.of(h.state[series.param]["exp_avg"]))


def test_plots_are_kept_and_reused_rather_than_made_again(rig, qtbot):
    r = rig(mlp(), grid=True)
    dash, params = r.dash, r.dash.params
    labels = element_labels(dash, 6)
    dash.selection.set_labels(labels[:5])
    dash.finish_pending()
    kept = {label: id(plot) for label, plot in params.cells.items()}
    dash.selection.set_labels(labels)                            # one more series: one more plot
    dash.finish_pending()
    assert all(id(params.cells[label]) == i for label, i in kept.items())
    made = params.plots_made
    dash.selection.set_labels(labels[1:])                       # one gone ...
    dash.finish_pending()
    assert labels[0] not in params.cells and params._spare_plots
    dash.selection.set_labels(labels[1:] + [element_labels(dash, 7)[6]])     # ... one new: the spare reused
    dash.finish_pending()
    assert params.plots_made == made and len(params.cells) == 6
    assert [p.cell_title for p in params.cells.values()] == list(params.cells)
    before = {label: id(plot) for label, plot in params.cells.items()}
    with qtbot.waitSignal(r.doc.runFinished, timeout=30_000):
        r.doc.rerun()                                             # a re-run refills the same plots
    dash.finish_pending()
    assert {label: id(plot) for label, plot in params.cells.items()} == before and params.plots_made == made
    assert len(params.curves) == 6 * len(r.doc.histories)


def test_the_data_tab_draws_at_most_max_points(rig):
    from ui.dashboards.data_view import MAX_POINTS

    r = rig(mlp(steps=5, n=3 * MAX_POINTS), grid=True)
    view = r.dash.data
    fit = view.fit
    assert len(fit.x) == 3 * MAX_POINTS
    xs, ys = view.points.getData()
    assert MAX_POINTS // 2 < len(xs) <= MAX_POINTS + 1
    drawn = fit.x[view.drawn_rows]
    np.testing.assert_array_equal(np.c_[xs, ys], drawn)
    # rings: exactly the drawn points the model gets wrong
    correct = fit.points(view.iteration).correct
    rings = np.array(view.wrong.getData()).T.reshape(-1, 2)
    np.testing.assert_array_equal(rings, drawn[~correct[view.drawn_rows]])
    # the accuracy counts every point; the header says how many are drawn
    text = view.info.text()
    assert f"{correct.mean():.0%}" in text and f"of {3 * MAX_POINTS:,} points drawn" in text


def test_the_series_picker_makes_a_tensors_entries_when_its_submenu_opens(rig, qtbot):
    r = rig(mlp(), grid=True)
    picker = r.dash.picker
    every = [s.label for s in r.dash.selection.series]
    assert len(picker._actions) < len(every)                  # the elements wait for their submenus
    sub = next(a.menu() for a in picker.menu_.actions() if a.menu() is not None)
    sub.aboutToShow.emit()
    assert len(picker._actions) > len([s for s in r.dash.selection.series if s.kind != "element"])
    assert sorted(a.text() for a in picker.actions_) == sorted(every)
    assert picker.checked_labels() == [label for label in picker._grouped if label in r.dash.selection.labels]
    chosen = element_labels(r.dash, 1)[0]
    next(a for a in picker.actions_ if a.text() == chosen).setChecked(True)
    assert chosen in r.dash.selection.labels


def test_a_refresh_of_a_hidden_tab_waits_until_it_is_shown(rig, qtbot):
    r = rig(rosenbrock(60), grid=False)
    dash = r.dash
    grads = dash.grads
    before = grads.refreshes
    dash.refresh()
    assert grads.refreshes == before and grads._deferred
    dash.tabs.setCurrentWidget(grads)
    qtbot.waitUntil(lambda: grads.refreshes == before + 1 and grads.pending == 0, timeout=10_000)
    assert isinstance(grads, QtWidgets.QWidget) and grads.isVisible()


def test_cells_queued_then_taken_away_before_they_are_made_are_forgotten(rig, qtbot):
    """A selection changed again before the first one's plots were made (the monkey test did it): the
    queue kept the cells that went away, and making one raised StopIteration in the event loop."""
    r = rig(mlp(), grid=False)
    dash, params = r.dash, r.dash.params
    dash.tabs.setCurrentWidget(params)
    qtbot.waitUntil(lambda: params.pending == 0, timeout=10_000)
    labels = element_labels(dash, 14)
    dash.selection.set_labels(labels)
    assert params.pending > 4                               # queued, not made yet
    dash.selection.set_labels(labels[:2])                   # most of them gone before their turn
    assert params.pending <= 2
    qtbot.waitUntil(lambda: params.pending == 0, timeout=20_000)
    assert list(params.cells) == labels[:2]
    assert all(key in params._plots for key in params.cells)
