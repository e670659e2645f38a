"""ui.player: the cursor over a Replay, driven through its public slots and a real QTimer."""
from __future__ import annotations

import time

import pytest
from PySide6 import QtCore

from gradviz.view.replay import Replay
from tests.core.test_replay import tutorial
from ui.player import MIN_TURN_MS, Player


@pytest.fixture
def replay():
    return Replay(tutorial(accumulation_steps=2)[0])


@pytest.fixture
def player(qtbot, replay):
    p = Player(replay)
    yield p
    p.pause()


def test_initial_state(player, replay):
    assert player.position == 0
    assert player.count == len(replay) == len(replay.events) + 1
    assert not player.playing
    assert player.frame.index == 0


def test_play_runs_to_the_end_and_stops(qtbot, player):
    player.set_speed(500)
    positions = []
    player.positionChanged.connect(positions.append)
    with qtbot.waitSignal(player.iterationEndReached, timeout=5000):
        with qtbot.waitSignal(player.playingChanged, check_params_cb=lambda on: on):
            player.play()
    assert player.position == player.count - 1
    assert not player.playing
    assert positions == sorted(positions) and positions[-1] == player.count - 1
    # playing at the end starts over
    with qtbot.waitSignal(player.positionChanged, check_params_cb=lambda i: i == 0):
        player.play()
    player.pause()


def test_steps_seeks_and_bounds(qtbot, player):
    seen = []
    player.positionChanged.connect(seen.append)
    player.step_forward()
    player.step_forward()
    player.step_back()
    assert player.position == 1 and seen == [1, 2, 1]
    player.seek(10)
    assert player.position == 10
    player.seek(10_000)
    assert player.position == player.count - 1
    player.step_forward()                     # already at the end: no signal
    assert seen[-1] == player.count - 1 and seen.count(player.count - 1) == 1
    player.to_start()
    assert player.position == 0
    player.step_back()
    assert player.position == 0
    player.to_end()
    assert player.position == player.count - 1


def test_phase_jumps(player, replay):
    starts = [pos for pos, _, _ in replay.phase_starts()]
    visited = []
    for _ in starts:
        player.next_phase()
        visited.append(player.position)
    assert visited == starts
    player.next_phase()
    assert player.position == player.count - 1
    player.seek(starts[3] + 2)
    player.prev_phase()
    assert player.position == starts[3]
    player.prev_phase()
    assert player.position == starts[2]
    assert player.frame.phase == replay.phase_starts()[2][1]


def test_speed_sets_the_timer(qtbot, player):
    player.set_speed(10)
    assert player._timer.interval() == 100 and player._per_tick == 1
    player.set_speed(240)                    # faster than the 16 ms tick: several events per tick
    assert player._per_tick == 4 and player._timer.interval() == round(1000 / 240 * 4)
    with pytest.raises(ValueError):
        player.set_speed(0)
    player.set_speed(20)
    t0 = time.perf_counter()
    with qtbot.waitSignal(player.iterationEndReached, timeout=10_000):
        player.play()
    elapsed = time.perf_counter() - t0
    expected = (player.count - 1) / 20
    assert 0.6 * expected < elapsed < 3 * expected


def test_toggle_and_set_replay(qtbot, player, replay):
    with qtbot.waitSignal(player.playingChanged):
        player.toggle()
    assert player.playing
    with qtbot.waitSignal(player.playingChanged):
        player.toggle()
    assert not player.playing
    player.seek(5)
    other = Replay(tutorial()[0])
    with qtbot.waitSignals([player.replayChanged, player.positionChanged]):
        player.set_replay(other)
    assert player.position == 0 and player.replay is other and player.count == len(other)


def test_a_slow_tick_leaves_the_loop_a_turn_before_the_next(qtbot, player):
    """A frame that takes longer than the tick's interval to show (the largest graphs): the next
    tick comes MIN_TURN_MS after it is done at least, so the window repaints between two seeks. The old
    repeating timer had the next tick due at once: two seeks in one turn of the event loop."""
    player.set_speed(60)                     # a 17 ms tick
    interval = player._timer.interval() / 1000
    spans = []

    def slow(_position):
        start = time.perf_counter()
        time.sleep(2 * interval)             # the graph's update, longer than the interval
        spans.append((start, time.perf_counter()))
    player.positionChanged.connect(slow)
    turns = []
    counter = QtCore.QTimer()
    counter.timeout.connect(lambda: turns.append(time.perf_counter()))
    counter.start(0)                         # a turn of the loop: what a repaint needs
    with qtbot.waitSignal(player.iterationEndReached, timeout=10_000):
        player.play()
    counter.stop()
    assert len(spans) >= 5
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start - end >= 0.8 * MIN_TURN_MS / 1000
        assert any(end < t < start for t in turns)
    assert player.position == player.count - 1 and not player.playing


def test_ticks_keep_the_cadence_and_catch_up_by_whole_intervals(qtbot, player):
    from ui import player as module

    player.set_speed(50)                     # 20 ms a frame
    player.play()
    due = player._due = time.perf_counter() - 0.041   # the loop was busy: this tick is 2 intervals late
    player._tick()
    assert player.position == 3              # its frame and the two it was late by
    assert player._due == pytest.approx(due + 3 * 0.02)          # the cadence, not the tick's end
    assert player._timer.interval() <= 20
    slow = player.positionChanged.connect(lambda _p: time.sleep(0.03))   # a seek longer than the interval
    due = player._due = time.perf_counter()
    player._tick()
    assert player._due == pytest.approx(due + 0.02)             # past already: the loop turns first
    assert player._timer.interval() == module.MIN_TURN_MS and player.position == 4
    player.positionChanged.disconnect(slow)
    player._due = time.perf_counter() - 10   # a stall: at most MAX_CATCH_UP more, then a new cadence
    player._tick()
    assert player.position == 4 + 1 + module.MAX_CATCH_UP
    assert player._due >= time.perf_counter() - 0.021
    player._due = time.perf_counter() + 0.5  # early: no skipping
    player._tick()
    assert player.position == 4 + 1 + module.MAX_CATCH_UP + 1
    player.pause()
