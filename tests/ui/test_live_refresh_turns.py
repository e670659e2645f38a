"""A live refresh of the dashboards while a run is in progress (issue 12): in a turn of the event loop
of its own, not in the progress pump's (which updates the progress bar and the graph's caption), and
with an x axis that spans the steps the run will make, so that the axis is not laid out again at each
refresh. On limit_data (100,000 points) the pump's turn with the loss plot's refresh and repaint in it
took 45-68 ms; apart, neither goes over 30 ms."""
from __future__ import annotations

from tests.ui.dashboard_rig import RUN_TIMEOUT_MS

STEPS = 40_000


def points(curve) -> int:
    """The points a curve draws (0 for no curve, or one not given data yet)."""
    x = curve.getOriginalDataset()[0] if curve is not None else None
    return 0 if x is None else len(x)


def test_a_live_refresh_is_a_turn_of_its_own_and_the_axis_spans_the_whole_run(rig, qtbot, monkeypatch):
    r = rig("01_tutorial_wx_b")
    loss = r.dash.loss
    in_pump = []
    seen = []          # (x range's right end, points drawn, running) at each refresh
    publish, refresh = r.doc._publish, loss.refresh

    def pump(*args):
        in_pump.append(True)
        try:
            publish(*args)
        finally:
            in_pump.pop()

    def recorded():
        if r.doc.running:                  # (the refresh at the end is the pump's: runFinished)
            assert not in_pump, "a live refresh ran inside the progress pump's turn"
        refresh()
        drawn = points(loss.curve("loss", 0))
        seen.append((loss.plots()[0].viewRange()[0][1], drawn, r.doc.running))

    monkeypatch.setattr(r.doc, "_publish", pump)
    monkeypatch.setattr(loss, "refresh", recorded)
    scenario = r.doc.editable_copy()
    scenario.loop.steps = STEPS
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.edit(scenario)
    live = [(right, drawn) for right, drawn, running in seen if running and 0 < drawn < STEPS]
    assert live, f"no live refresh showed a partial run: {seen}"
    for right, drawn in live:
        assert right >= STEPS - 1, (right, drawn)          # the whole run's steps, not the ones done
    assert not seen[-1][2] and seen[-1][1] == STEPS


def test_a_cancelled_run_fits_its_axis_to_the_steps_it_made(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    loss = r.dash.loss
    scenario = r.doc.editable_copy()
    scenario.loop.steps = 100_000
    old = points(loss.curve("loss", 0))                     # the tutorial's run, until the new one shows
    r.doc.edit(scenario)
    qtbot.waitUntil(lambda: r.doc.running and points(loss.curve("loss", 0)) not in (0, old),
                    timeout=RUN_TIMEOUT_MS)
    assert loss.plots()[0].viewRange()[0][1] >= 100_000 - 1
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.cancel()
    done = r.doc.histories[0].steps
    assert 0 < done < 100_000
    right = loss.plots()[0].viewRange()[0][1]
    assert done - 1 <= right <= done * 1.05 + 1, (right, done)
