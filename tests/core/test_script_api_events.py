"""Events a script's own calls produce (manual updates, one tensor's grad zeroed, backward calls,
clipping, schedulers) and the replay frames and sentences they become."""
import numpy as np

import gradviz
import gradviz.nn.utils
from gradviz import trace
from gradviz.optim import lr_scheduler
from gradviz.view.replay import Replay


def _tutorial_step(update):
    w = gradviz.tensor([1.0], requires_grad=True)
    w.name = "w"
    x, y = gradviz.tensor([2.0]), gradviz.tensor([4.0])
    with trace.record() as rec:
        loss = ((w * x - y) ** 2).mean()
        loss.backward()
        update(w)
    return w, rec


def _kinds(rec):
    return [type(e).__name__ for e in rec.events]


def test_manual_updates_under_no_grad_are_recorded_with_before_and_after():
    cases = {
        "-=": lambda w: w.__isub__(0.1 * w.grad),
        "sub_": lambda w: w.sub_(w.grad, alpha=0.1),
        "add_": lambda w: w.add_(-0.1 * w.grad),
        "copy_": lambda w: w.copy_(w - 0.1 * w.grad),
        "[]=": lambda w: w.__setitem__(0, 1.8),
    }
    for op, update in cases.items():
        def step(w, update=update):
            with gradviz.no_grad():
                update(w)
        w, rec = _tutorial_step(step)
        events = [e for e in rec.events if isinstance(e, trace.ManualUpdateEvent)]
        assert len(events) == 1, op
        (e,) = events
        assert e.op == op and e.node == rec.find(w)
        assert e.before.tolist() == [1.0] and e.after.tolist() == w.tolist()
        np.testing.assert_allclose(e.after, [1.8], rtol=1e-6)


def test_updates_through_data_are_manual_updates_even_with_grad_mode_on():
    w, rec = _tutorial_step(lambda w: w.data.sub_(0.1 * w.grad.data))
    (e,) = [e for e in rec.events if isinstance(e, trace.ManualUpdateEvent)]
    assert e.op == "sub_" and e.node == rec.find(w)
    w2, rec2 = _tutorial_step(lambda w: setattr(w, "data", w.data - 0.1 * w.grad))
    (e2,) = [e for e in rec2.events if isinstance(e, trace.ManualUpdateEvent)]
    assert e2.op == "data =" and e2.before.tolist() == [1.0] and np.allclose(e2.after, 1.8)


def test_in_place_ops_that_are_not_manual_updates_record_nothing_extra():
    x = gradviz.tensor([1.0, 2.0])
    w = gradviz.tensor([1.0], requires_grad=True)
    with trace.record() as rec:
        x.add_(1.0)                      # not a parameter
        with gradviz.no_grad():
            y = w * 2
            y.mul_(3)                    # not a leaf requiring grad
    assert not any(isinstance(e, (trace.ManualUpdateEvent, trace.ZeroGradEvent)) for e in rec.events)
    with gradviz.no_grad():
        w.sub_(0.5)                      # no recorder: nothing to tell, nothing fails
    assert w.tolist() == [0.5]


def test_zeroing_one_tensors_grad_is_a_zero_grad_event():
    w, rec = _tutorial_step(lambda w: setattr(w, "grad", None))
    (z,) = [e for e in rec.events if isinstance(e, trace.ZeroGradEvent)]
    assert z.set_to_none and [c.node for c in z.cleared] == [rec.find(w)] and z.cleared[0].before.tolist() == [-8.0]
    w, rec = _tutorial_step(lambda w: w.grad.zero_())
    (z,) = [e for e in rec.events if isinstance(e, trace.ZeroGradEvent)]
    assert not z.set_to_none and z.cleared[0].before.tolist() == [-8.0] and w.grad.tolist() == [0.0]


def test_optimizer_and_module_zero_grad_emit_one_event_each():
    model = gradviz.nn.Linear(2, 1)
    opt = gradviz.optim.SGD(model.parameters(), lr=0.1)
    model(gradviz.ones(3, 2)).sum().backward()
    with trace.record() as rec:
        opt.zero_grad()
    assert _kinds(rec) == ["ZeroGradEvent"] and len(rec.events[0].cleared) == 2
    model(gradviz.ones(3, 2)).sum().backward()
    with trace.record() as rec:
        model.zero_grad()
    assert _kinds(rec) == ["ZeroGradEvent"] and model.weight.grad is None


def test_grad_assignment_checks_shape_and_dtype_like_torch():
    w = gradviz.tensor([1.0, 2.0], requires_grad=True)
    for bad, message in ((gradviz.zeros(3), "different size"), (gradviz.zeros(2, dtype=gradviz.float64),
                                                                 "different type")):
        try:
            w.grad = bad
        except RuntimeError as err:
            assert message in str(err)
        else:
            raise AssertionError("no error")


def _replay(step):
    """A replay of one manual iteration: forward, backward, then ``step(w, rec)``."""
    w = gradviz.tensor([1.0], requires_grad=True)
    w.name = "w"
    x, y = gradviz.tensor([2.0]), gradviz.tensor([4.0])
    with trace.record() as rec:
        loss = ((w * x - y) ** 2).mean()
        rec.add(trace.BackwardCallEvent(rec.node_id(loss), loss._data.copy()))
        loss.backward()
        step(w)
    nid = rec.find(w)
    tr = trace.Trace(0, rec.nodes, rec.events, {"w": nid}, rec.find(loss), {"w": None}, {"w": np.array([1.0])},
                     {"w": w.numpy().copy() if not w.requires_grad else w.detach().numpy().copy()})
    return Replay(tr), nid


def test_replay_frames_for_a_manual_update_and_a_zeroed_grad():
    def step(w):
        with gradviz.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
    replay, w = _replay(step)
    kinds = [f.event_kind for f in replay]
    assert kinds[1] == "forward" and "backward_call" in kinds and kinds[-2:] == ["manual_update", "zero_grad"]
    call = replay[kinds.index("backward_call")]
    assert call.description == "loss.backward() called on loss = 4.0."
    update = replay[len(replay) - 2]
    assert update.description == "w -= …: w [1.0] → [1.8] (a manual update, outside autograd)."
    assert update.nodes[w].value.tolist() == [np.float32(1.8)] and update.nodes[w].param_before.tolist() == [1.0]
    assert update.nodes[w].stepped and w in update.active_nodes
    assert replay[len(replay) - 1].nodes[w].grad_badge is None
    assert replay.contents(w).steps[0][0].tolist() == [1.0]


def test_replay_frames_for_clipping_and_a_scheduler():
    def step(w):
        gradviz.nn.utils.clip_grad_norm_([w], 1.0)
        opt = gradviz.optim.SGD([w], lr=0.1)
        sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
        opt.step()
        sched.step()
    replay, w = _replay(step)
    frames = {f.event_kind: f for f in replay}
    clip = frames["clip"]
    assert clip.description == "clip_grad_norm_(max_norm=1.0): ‖g‖ = 8.0 > 1.0, grads × 0.125."
    np.testing.assert_allclose(clip.nodes[w].grad_badge, [-1.0], rtol=1e-6)
    assert frames["scheduler"].description == "StepLR.step(): lr 0.1 → 0.01, epoch 1."
    assert frames["step"].nodes[w].value.tolist() == [np.float32(1.1)]


def test_clip_value_and_unchanged_norm_sentences():
    from gradviz.view.phases import clip_sentence, scheduler_sentence
    assert clip_sentence(trace.ClipEvent("norm", 10.0, 2.0, 3.5, 1.0)) == \
        "clip_grad_norm_(max_norm=10.0): ‖g‖ = 3.5 ≤ 10.0: grads unchanged."
    assert clip_sentence(trace.ClipEvent("value", 0.5)) == "clip_grad_value_(clip_value=0.5): every .grad clamped " \
        "to [−0.5, 0.5]."
    assert scheduler_sentence(trace.SchedulerEvent("LinearLR", [0.1, 0.2], [0.1, 0.2], 3)) == \
        "LinearLR.step(): lr [0.1, 0.2] → [0.1, 0.2] (unchanged), epoch 3."
