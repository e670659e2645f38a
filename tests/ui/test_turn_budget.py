"""One budget per event-loop turn, shared by the window's deferred work (ui/turn_budget.py, issue 12)."""
from __future__ import annotations

import time

from PySide6 import QtCore

from ui import turn_budget
from ui.dashboards.panel import Slices
from ui.turn_budget import TURN_S, TurnBudget


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slices_of_one_turn_share_its_budget():
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: True)
    assert TURN_S == 0.008
    assert turn.deadline(0.006) == 100.006                     # the turn's first work: a whole slice
    clock.now += 0.004                                         # (it took 4 ms)
    assert turn.deadline(0.006) == 100.0 + TURN_S              # the next one: what the turn has left
    clock.now += 0.006
    assert turn.deadline(0.006) < clock.now                    # none left: a job does its least
    assert turn.deadline(60.0) == clock.now + 60.0 - 0.010     # a longer slice asked: its own length
    turn.end_turn()                                            # the loop came back
    assert turn.deadline(0.006) == clock.now + 0.006


def test_unsliced_work_counts_to_the_turn():
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: True)
    turn.begin()                                               # the player's tick
    clock.now += 0.020
    assert turn.deadline(0.006) == 100.0 + TURN_S              # past: the tick took the turn's budget


def test_a_turn_that_never_ended_starts_anew():
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: True)
    turn.begin()
    clock.now += turn_budget.STALE_S + 0.001
    assert turn.deadline(0.010) == clock.now + 0.010


def test_outside_an_event_loop_every_slice_is_whole():
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: False)           # direct calls and processEvents (tests)
    turn.begin()
    clock.now += 0.050
    assert turn.deadline(0.010) == clock.now + 0.010


def _fresh(turn) -> None:
    """The application's ``TURN`` as no earlier test left it: no turn open, its end-of-turn timer
    stopped, no player's tick coming (a test that ended inside a turn, or while playing, leaves them
    so until an event loop runs)."""
    turn.end_turn()
    turn.tick_at = None
    if turn._timer is not None:
        turn._timer.stop()


def test_the_loop_coming_back_ends_the_turn(qtbot, monkeypatch):
    """In a running event loop, the dashboards' slice that comes after a long tick in the same pass of
    the loop gets what is left of the turn; once the loop came back, a whole one."""
    deadlines = []
    turn = turn_budget.TURN
    _fresh(turn)
    monkeypatch.setattr(turn_budget, "STALE_S", 60.0)         # a loaded machine: the tick's turn stays one
    slices = Slices()

    def job(deadline):
        deadlines.append((deadline, time.perf_counter()))
        return len(deadlines) < 2

    def tick():                                                # a 30-ms tick
        turn.begin()
        busy = time.perf_counter() + 0.030
        while time.perf_counter() < busy:
            pass

    def first_pass():                                          # both due in the next pass, the tick first
        QtCore.QTimer.singleShot(0, tick)
        slices.add("job", job)
        QtCore.QTimer.singleShot(300, loop.quit)

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(0, first_pass)
    loop.exec()
    assert len(deadlines) == 2
    (first, at_first), (second, at_second) = deadlines
    assert first <= at_first                                   # the tick used the turn: nothing left
    assert second - at_second > 0.5 * turn_budget.TURN_S      # the next turn: a slice of its own


def _in_a_spent_turn(work):
    """Run ``work()`` in a pass of a running event loop after 30 ms of unsliced work (a tick, a new
    trace); -> what it returned."""
    out = []

    def spent_then_work():
        stale = turn_budget.STALE_S
        turn_budget.STALE_S = 60.0             # a loaded machine may take 0.5 s over work(): still this turn
        try:
            turn_budget.TURN.begin()
            busy = time.perf_counter() + 0.030
            while time.perf_counter() < busy:
                pass
            out.append(work())
        except Exception as exc:               # (raised in the test, not lost in the event loop)
            out.append(exc)
        finally:
            turn_budget.STALE_S = stale
            loop.quit()

    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(0, spent_then_work)
    loop.exec()
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]


def test_a_frame_update_in_a_spent_turn_waits_for_the_next_one(qtbot, make_window, tmp_path):
    """The graph's update after a turn's budget went to other work does none of its O(boxes) passes
    then (on the most micro-batches file they took 5-10 ms of a 40-50 ms turn); the next turn draws it."""
    from tests.ui.test_large_graph_sizes import SCENARIO
    path = tmp_path / "many.toml"
    path.write_text(SCENARIO)
    window = make_window(path)
    view, player = window.graph, window.player
    target = player.count - 1
    shown_before = dict(view._shown_nodes), dict(view._shown_edges)

    def move():
        player.seek(target)
        return (dict(view._shown_nodes), dict(view._shown_edges)), view._more.isActive()

    assert _in_a_spent_turn(move) == (shown_before, True)          # nothing drawn (or marked) then
    frame = view.replay.frame(target)
    qtbot.waitUntil(lambda: all(view._shown_nodes.get(n) is ns for n, ns in frame.nodes.items()), timeout=5000)
    assert view.caption.isVisible()


def test_sizing_slices_share_the_turn(qtbot, make_window, tmp_path):
    """A new iteration's sizing (``SpecJob``) in a turn already spent sizes one chunk, not its own 8 ms."""
    from tests.ui.test_large_graph_sizes import SCENARIO
    path = tmp_path / "many.toml"
    path.write_text(SCENARIO)
    window = make_window(path)
    from ui.graph.scene_update import SpecJob
    job = SpecJob(window.graph)
    assert len(job.keys) > 300
    assert _in_a_spent_turn(lambda: (job.run(), job.at, job.timer.isActive())[1:]) == (4, True)
    job.cancel()


def test_a_large_graph_built_in_a_spent_turn_is_shown_in_the_next(qtbot, make_window, tmp_path):
    """The build's last slice does not also show the graph (its first frame's text, the fit: 10-20 ms)
    when the turn is already spent: that waits for a turn of its own, once."""
    from tests.ui.test_large_graph_sizes import SCENARIO
    path = tmp_path / "many.toml"
    path.write_text(SCENARIO)
    window = make_window(path)
    view = window.graph

    def build_to_the_end():
        view._rebuild()
        job = view._build_job
        while job.stage != "done":
            job.run()                          # one step a call: the turn is spent
            if job.stage == "layout":
                job.layout_job.ended.wait(10)
        return job.deferred, view._build_job is job, job.timer.isActive()

    assert _in_a_spent_turn(build_to_the_end) == (True, True, True)
    qtbot.waitUntil(lambda: view._build_job is None, timeout=5000)
    assert len(view.node_items) == len(view.folded.keys) and not view.pending_label.isVisible()


def test_a_slice_ends_when_the_players_tick_is_due():
    """A slice that begins before the player's tick in the same pass of the loop makes room for it:
    it ends at the tick's time, or after BEFORE_TICK_S when the tick is due already."""
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: True)
    turn.tick_at = 100.003                                     # the tick fires in 3 ms
    assert turn.deadline(0.010) == 100.003
    turn.end_turn()
    clock.now = 100.004                                        # due (1 ms ago): the least slice
    assert turn.deadline(0.010) == clock.now + turn_budget.BEFORE_TICK_S
    turn.end_turn()
    turn.tick_at = 100.050                                     # far off: the whole slice
    assert turn.deadline(0.006) == clock.now + 0.006
    turn.end_turn()
    turn.tick_at = clock.now - turn_budget.TICK_LATE_S - 0.001  # long overdue (a player gone): ignored
    assert turn.deadline(0.006) == clock.now + 0.006
    turn.end_turn()
    turn.tick_at = None                                        # not playing
    assert turn.deadline(0.006) == clock.now + 0.006


def test_outside_an_event_loop_the_tick_does_not_cut_slices():
    clock = FakeClock()
    turn = TurnBudget(clock, in_loop=lambda: False)
    turn.tick_at = clock.now
    assert turn.deadline(0.010) == clock.now + 0.010
    assert turn.tick_due()


def test_the_player_tells_the_turn_when_its_tick_comes(qtbot):
    """Playing, ``TURN.tick_at`` is when the player's timer fires; within its own tick it is None (its
    frame update's slices are not cut short); paused, None."""
    from gradviz.scenario import DEFAULT_SCENARIO, bundled_path
    from gradviz.scenario.loader import load
    from gradviz.training.session import Session
    from gradviz.view.replay import Replay
    from ui.player import Player

    turn = turn_budget.TURN
    _fresh(turn)
    player = Player()
    player.set_replay(Replay(Session(load(bundled_path(DEFAULT_SCENARIO))).trace_iteration(0)))
    player.set_speed(50.0)
    seen = []
    player.positionChanged.connect(lambda _: seen.append(turn.tick_at))
    before = time.perf_counter()
    player.play()
    assert turn.tick_at is not None and before < turn.tick_at <= time.perf_counter() + player._interval + 0.001
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)
    assert seen[:3] == [None, None, None]                      # during its ticks
    assert turn.tick_at is not None and turn.tick_at > time.perf_counter() - 0.05
    player.pause()
    assert turn.tick_at is None
    _fresh(turn)                                               # (its ticks' turn: closed for the next test)
