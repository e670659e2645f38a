"""A frame's description is made when first read, with the text it had when made at once; the frames
hold their replay weakly (no reference cycle), and the states ``_advance`` derives are the same as
``dataclasses.replace`` gives."""
from __future__ import annotations

import dataclasses
import gc
import weakref

import pytest

from gradviz.scenario import bundled_path
from gradviz.scenario.loader import load
from gradviz.training.session import Session
from gradviz.view import replay as R
from gradviz.view.replay import EdgeState, NodeState, Replay


def trace_of(stem: str):
    return Session(load(bundled_path(stem))).trace_iteration(0)


@pytest.mark.parametrize("stem", ["01_tutorial_wx_b", "07_mlp_two_moons", "03_gradient_accumulation"])
def test_descriptions_are_the_eager_texts(stem):
    trace = trace_of(stem)
    replay = Replay(trace)
    kinds = set()
    for i in range(len(replay)):
        frame = replay.frame(i)
        kinds.add(frame.event_kind)
        text = frame.description
        assert isinstance(text, str) and text
        if frame.event_kind == "forward":
            assert text == replay._forward_description(frame.event)
        elif frame.event_kind == "backward":
            assert text == replay._backward_description(frame.event)
        assert frame.description is text                    # made once, then kept
    assert {"forward", "backward"} <= kinds


def test_frames_do_not_keep_their_replay_alive_through_a_cycle():
    trace = trace_of("07_mlp_two_moons")
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        replay = Replay(trace)
        for i in range(len(replay)):
            replay.frame(i)                 # frames with descriptions not made yet, in its caches
        frame = replay.frame(len(replay) - 1)
        gone = weakref.ref(replay)
        del replay
        assert gone() is None               # freed by reference counting, not by the cycle collector
        assert isinstance(frame.description, str) and frame.description
    finally:
        if was:
            gc.enable()


def test_replace_matches_dataclasses_replace():
    ns = NodeState(state="forward", grad_badge=None, cleared="none", stepped=True)
    for changes in ({"state": "forward_done"}, {"value": 3.0, "grad": None}, {"stepped": False, "cleared": ""}):
        assert R._replace(ns, **changes) == dataclasses.replace(ns, **changes)
    es = EdgeState("backward", 1.5)
    assert R._replace(es, state="backward_done") == EdgeState("backward_done", 1.5)
    assert ns.state == "forward" and es.state == "backward"            # the originals are untouched
    with pytest.raises(TypeError, match="no field 'colour'"):
        R._replace(ns, colour="red")


def test_keyframes_made_ahead_bound_a_jump_and_give_the_same_frames(monkeypatch):
    """A worker makes every keyframe before the window gets the Replay: a jump on the timeline then
    walks at most KEYFRAME_EVERY events (made on demand, a jump to the end of a 3,001-event trace
    walked them all: 75-81 ms on the UI thread)."""
    from gradviz.scenario import loads
    toml = ('[scenario]\ntitle = "deep"\nseed = 0\n[model]\nlayers = [2, 8, 8, 8, 1]\nactivation = "tanh"\n'
            '[data]\nkind = "moons"\nn = 64\n[loss]\nkind = "mse"\n[optimizer]\nkind = "sgd"\nlr = 0.05\n'
            'momentum = 0.9\n[loop]\nsteps = 2\naccumulation_steps = 8\n')
    trace = Session(loads(toml)).trace_iteration(1)
    lazy, ahead = Replay(trace), Replay(trace)
    ahead.make_keyframes()
    walked = []
    advance = Replay._advance
    monkeypatch.setattr(Replay, "_advance", lambda self, f: walked.append(self) or advance(self, f))
    n = len(ahead)
    assert n > 4 * Replay.KEYFRAME_EVERY
    for i in (n - 2, n // 2, 1, n - 40, 3 * Replay.KEYFRAME_EVERY + 5):
        walked.clear()
        frame = ahead.frame(i)
        assert len(walked) < Replay.KEYFRAME_EVERY, (i, len(walked))
        expected = lazy.frame(i)
        assert frame.index == expected.index == i
        assert frame.nodes == expected.nodes and frame.edges == expected.edges
        assert frame.description == expected.description
