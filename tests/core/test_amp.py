"""gradviz.amp: GradScaler's scale schedule and skipped steps, and float16 underflow that is real."""
import pickle

import numpy as np
import pytest

import gradviz as gv
from gradviz import amp, trace
from gradviz.optim import SGD

# float16 overflow is what these tests provoke; numpy reports it as a RuntimeWarning
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

INF = float("inf")


# -- the pure scale update --------------------------------------------------------------------------
UPDATE_CASES = [
    # (scale, tracker, found_inf, growth_interval) -> (scale, tracker), growth 2, backoff 0.5
    ((1024.0, 0, False, 3), (1024.0, 1), "clean step: tracker counts"),
    ((1024.0, 2, False, 3), (2048.0, 0), "growth_interval clean steps: grow, reset"),
    ((1024.0, 2, True, 3), (512.0, 0), "inf: back off, reset"),
    ((1024.0, 0, True, 1), (512.0, 0), "inf wins over growth"),
    ((2.0 ** 127, 0, False, 1), (2.0 ** 127, 0), "growth to float32 inf is dropped, tracker resets"),
]


@pytest.mark.parametrize("args, expected, why", UPDATE_CASES, ids=[c[2] for c in UPDATE_CASES])
def test_amp_update_scale(args, expected, why):
    scale, tracker, found_inf, interval = args
    new_scale, new_tracker = amp.amp_update_scale(scale, tracker, found_inf, growth_factor=2.0,
                                                  backoff_factor=0.5, growth_interval=interval)
    assert (float(new_scale), new_tracker) == expected
    assert isinstance(new_scale, np.float32)


def test_amp_update_scale_rounds_to_float32():
    # float64 product, stored as float32 (PyTorch's kernel): 1000 * 0.3 is not a float32
    new_scale, _ = amp.amp_update_scale(1000.0, 0, True, growth_factor=2.0, backoff_factor=0.3,
                                        growth_interval=5)
    assert new_scale == np.float32(300.0) and new_scale.dtype == np.float32


# -- a constructed loop with inf inserted by hand ---------------------------------------------------
INF_PATTERN = [False, False, False, False, True, False, True, False, False, False]
# init 1024, growth_interval 3: grows after steps 0-2 and 7-9, backs off at 4 and 6
EXPECTED_SCALES = [1024, 1024, 2048, 2048, 1024, 1024, 512, 512, 512, 1024]


def run_manual_inf_loop(scaler, momentum=0.0):
    w = gv.tensor([0.5, -1.0], requires_grad=True)
    c = gv.tensor([0.25, 2.0])
    opt = SGD([w], lr=0.125, momentum=momentum)
    scales, skipped, params = [], [], []
    for has_inf in INF_PATTERN:
        opt.zero_grad()
        scaler.scale((w * c).sum()).backward()
        if has_inf:
            w.grad.data[1] = INF
        scaler.step(opt)
        skipped.append(scaler.last_step_skipped())
        scaler.update()
        scales.append(scaler.get_scale())
        params.append(w.detach().numpy().copy())
    return scales, skipped, params, opt, w


def test_scale_sequence_and_skipped_steps():
    scaler = amp.GradScaler(init_scale=1024.0, growth_interval=3)
    scales, skipped, params, _, _ = run_manual_inf_loop(scaler)
    assert scales == EXPECTED_SCALES
    assert skipped == INF_PATTERN
    before = np.array([0.5, -1.0], np.float32)
    for has_inf, after in zip(INF_PATTERN, params):
        # the unscaled grad is exactly c (powers of two), so each taken step moves by lr * c
        expected = before if has_inf else before - np.float32(0.125) * np.array([0.25, 2.0], np.float32)
        np.testing.assert_array_equal(after, expected)
        before = after


def test_skipped_first_step_creates_no_optimizer_state():
    """float16 overflow for real: scale 2**16 is inf in float16, so the first step is skipped."""
    w = gv.tensor([[0.5]], requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    scaler = amp.GradScaler()                        # init_scale=2**16
    with amp.autocast(dtype=gv.float16):
        out = gv.tensor([[1.0]]) @ w                 # float16
    loss = out.float().sum()
    scaler.scale(loss).backward()                    # d(loss*2**16)/d(out) = 65536 -> float16 inf
    assert np.isinf(w.grad.data).all()
    assert scaler.step(opt) is None and scaler.last_step_skipped()
    assert len(opt.state) == 0 and w.data[0, 0] == np.float32(0.5)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 15 and scaler._get_growth_tracker() == 0


def test_overflow_of_large_input_in_float16():
    """x = 60000 is a float16 number, but x * scale (scale 2) is not: the step is skipped."""
    w = gv.tensor([[0.5]], requires_grad=True)
    opt = SGD([w], lr=0.1)
    scaler = amp.GradScaler(init_scale=2.0, growth_interval=3)
    taken = []
    for x in [1.0, 60000.0, 1.0]:
        opt.zero_grad()
        with amp.autocast(dtype=gv.float16):
            loss = (gv.tensor([[x]]) @ w).float().sum()
        scaler.scale(loss).backward()
        scaler.step(opt)
        taken.append(not scaler.last_step_skipped())
        scaler.update()
    assert taken == [True, False, True]
    assert scaler.get_scale() == 1.0


# -- float16 underflow is real ------------------------------------------------------------------------
def underflow_grad(scaler):
    """d/dw of 1e-4 * (x @ w) with x = 1e-4 under autocast: the float16 product is ~1e-8 < 2**-25."""
    w = gv.tensor([[0.5]], requires_grad=True)
    opt = SGD([w], lr=1e6)                           # grad ~1e-8: a step that shows in float32
    with amp.autocast(dtype=gv.float16):
        out = gv.tensor([[1e-4]]) @ w
        loss = 1e-4 * out.float().sum()              # the loss in float32, like PyTorch's loss functions
    assert out.dtype == gv.float16 and loss.dtype == gv.float32
    (loss if scaler is None else scaler.scale(loss)).backward()
    return w, opt


def test_float16_gradient_underflows_to_exact_zero_without_scaling():
    w, _ = underflow_grad(None)
    assert w.grad.dtype == gv.float32
    assert w.grad.data[0, 0] == 0.0                  # not small: exactly zero


def test_grad_scaler_rescues_the_underflowing_gradient():
    scaler = amp.GradScaler(init_scale=2.0 ** 16)
    w, opt = underflow_grad(scaler)
    assert w.grad.data[0, 0] != 0.0
    scaler.unscale_(opt)
    # float32 reference without autocast: 1e-4 * 1e-4; float16 rounding of x and of the grad
    np.testing.assert_allclose(w.grad.data[0, 0], 1e-8, rtol=1e-3)
    scaler.step(opt)
    assert w.data[0, 0] != np.float32(0.5) and not scaler.last_step_skipped()


def test_explicit_half_underflows_too_without_autocast():
    w = gv.tensor(0.5, requires_grad=True)
    (1e-4 * (w.half() * gv.tensor(1e-4).half()).float()).backward()
    assert w.grad.item() == 0.0


# -- what autocast casts ------------------------------------------------------------------------------
def _binary(name):
    return lambda a, b: getattr(a, name)(b)


AUTOCAST_OPS = [
    ("matmul", lambda a, b: a @ b, gv.float16),
    ("add", _binary("add"), gv.float32), ("sub", _binary("sub"), gv.float32),
    ("mul", _binary("mul"), gv.float32), ("div", _binary("div"), gv.float32),
    ("pow", lambda a, b: a ** 2, gv.float32), ("exp", lambda a, b: a.exp(), gv.float32),
    ("tanh", lambda a, b: a.tanh(), gv.float32), ("sigmoid", lambda a, b: a.sigmoid(), gv.float32),
    ("relu", lambda a, b: a.relu(), gv.float32), ("sum", lambda a, b: a.sum(), gv.float32),
    ("mean", lambda a, b: a.mean(), gv.float32), ("log_softmax", lambda a, b: a.log_softmax(1), gv.float32),
]


@pytest.mark.parametrize("name, op, dtype", AUTOCAST_OPS, ids=[c[0] for c in AUTOCAST_OPS])
def test_only_matmul_is_cast(name, op, dtype):
    a, b = gv.rand(3, 3), gv.rand(3, 3)
    with amp.autocast(dtype=gv.float16):
        assert op(a, b).dtype == dtype
    assert op(a, b).dtype == gv.float32              # and nothing is cast outside


def test_float16_inputs_stay_float16_in_elementwise_ops():
    h = gv.rand(3, 3).half()
    with amp.autocast(dtype=gv.float16):
        assert (h.tanh() * h).sum().dtype == gv.float16


def test_float64_is_never_cast():
    a = gv.tensor(np.ones((2, 2)))
    with amp.autocast(dtype=gv.float16):
        assert (a @ a).dtype == gv.float64


def test_cast_goes_through_to_copy_and_is_cached_per_region():
    w = gv.rand(2, 2, requires_grad=True)
    x = gv.rand(1, 2)
    with amp.autocast(dtype=gv.float16):
        y1, y2 = x @ w, x @ w
        w16 = y1.grad_fn.next_functions[1][0]
        assert w16.name() == "ToCopyBackward0"
        assert y2.grad_fn.next_functions[1][0] is w16          # one cast node for both uses
        assert y1.grad_fn.next_functions[0][0] is None          # x needs no grad: no node
    with amp.autocast(dtype=gv.float16):
        assert (x @ w).grad_fn.next_functions[1][0] is not w16  # cache dropped on exit
    with amp.autocast(dtype=gv.float16):
        with gv.no_grad():
            x @ w                                               # a no-grad cast is not cached
        assert (x @ w).grad_fn is not None


def test_autocast_disabled_nested_and_restored_on_error():
    a = gv.rand(2, 2)
    with amp.autocast(dtype=gv.float16):
        with amp.autocast(enabled=False):
            assert (a @ a).dtype == gv.float32
        assert (a @ a).dtype == gv.float16
    with pytest.raises(ZeroDivisionError):
        with amp.autocast(dtype=gv.float16):
            1 / 0
    assert not amp.is_autocast_enabled() and (a @ a).dtype == gv.float32


def test_autocast_other_dtype_warns_and_disables():
    with pytest.warns(UserWarning, match="not supported"):
        ctx = amp.autocast(dtype=gv.float64)
    with ctx:
        assert (gv.rand(2, 2) @ gv.rand(2, 2)).dtype == gv.float32


def test_autocast_float32_casts_float16_arguments_up():
    @amp.autocast_float32
    def loss_fn(out, target):
        assert not amp.is_autocast_enabled()
        return ((out - target) ** 2).mean()

    w = gv.rand(2, 1, requires_grad=True)
    with amp.autocast(dtype=gv.float16):
        out = gv.rand(3, 2) @ w
        loss = loss_fn(out, gv.rand(3, 1))
        assert amp.is_autocast_enabled()
    assert out.dtype == gv.float16 and loss.dtype == gv.float32
    loss.backward()
    assert w.grad.dtype == gv.float32


# -- GradScaler API ----------------------------------------------------------------------------------
def scaled_backward(scaler, w):
    scaler.scale((w * 3.0).sum()).backward()


def test_scale_is_a_graph_op_and_keeps_containers():
    scaler = amp.GradScaler(init_scale=8.0)
    w = gv.tensor([1.0, 2.0], requires_grad=True)
    out = scaler.scale(w.sum())
    assert out.grad_fn.name() == "MulBackward0" and out.item() == 24.0
    out.backward()
    np.testing.assert_array_equal(w.grad.data, [8.0, 8.0])
    a, b = gv.tensor(1.0), gv.tensor(2.0)
    assert [t.item() for t in scaler.scale([a, b])] == [8.0, 16.0]
    nested = scaler.scale((a, [b]))
    assert isinstance(nested, tuple) and nested[1][0].item() == 16.0
    with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
        scaler.scale(3.0)


def test_unscale_twice_raises():
    scaler = amp.GradScaler(init_scale=4.0)
    w = gv.tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    scaled_backward(scaler, w)
    scaler.unscale_(opt)
    assert w.grad.item() == 3.0
    with pytest.raises(RuntimeError, match=r"^unscale_\(\) has already been called on this optimizer "
                                           r"since the last update\(\)\.$"):
        scaler.unscale_(opt)
    scaler.step(opt)                                 # uses the explicit unscale_, does not unscale again
    assert w.data[0] == np.float32(1.0) - np.float32(0.1) * np.float32(3.0)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step\(\)"):
        scaler.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)"):
        scaler.step(opt)
    scaler.update()
    scaled_backward(scaler, w)
    scaler.unscale_(opt)                             # allowed again after update()


def test_step_returns_optimizer_result_or_none():
    scaler = amp.GradScaler(init_scale=4.0)
    w = gv.tensor([1.0], requires_grad=True)

    class Returning(SGD):
        def step(self, closure=None):
            super().step()
            return "stepped"

    opt = Returning([w], lr=0.1)
    scaled_backward(scaler, w)
    assert scaler.step(opt) == "stepped"
    scaler.update()
    scaled_backward(scaler, w)
    w.grad.data[0] = np.nan                          # nan counts as inf
    assert scaler.step(opt) is None


def test_misuse_raises_like_pytorch():
    scaler = amp.GradScaler()
    w = gv.tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    with pytest.raises(AssertionError, match="Attempted update but _scale is None"):
        scaler.update()
    scaler.scale(w.sum())                            # no backward: no grads to check
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        scaler.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded for this optimizer"):
        scaler.step(opt)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        scaler.step(opt, closure=lambda: None)
    with pytest.raises(AssertionError, match="growth factor must be > 1.0"):
        amp.GradScaler(growth_factor=1.0)
    with pytest.raises(AssertionError, match="backoff factor must be < 1.0"):
        amp.GradScaler(backoff_factor=1.0)


def test_float16_master_gradients_are_refused():
    scaler = amp.GradScaler()
    w = gv.tensor([1.0], dtype=gv.float16, requires_grad=True)
    scaler.scale(w.float().sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        scaler.unscale_(SGD([w], lr=0.1))


def test_disabled_scaler_is_a_pass_through():
    scaler = amp.GradScaler(init_scale=1024.0, enabled=False)
    w = gv.tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.5)
    loss = (w * 3.0).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    assert scaler.unscale_(opt) is None and w.grad.item() == 3.0
    scaler.step(opt)
    assert w.item() == -0.5
    scaler.update()
    assert (scaler.get_scale(), scaler.state_dict(), scaler.is_enabled()) == (1.0, {}, False)
    scaler.load_state_dict({})                       # no-op
    assert not scaler.last_step_skipped()


def test_other_device_warns_and_disables():
    with pytest.warns(UserWarning, match="Disabling"):
        scaler = amp.GradScaler("cuda")
    assert not scaler.is_enabled()


def test_state_dict_round_trip_continues_the_same_schedule():
    scaler = amp.GradScaler(init_scale=1024.0, growth_interval=3)
    w = gv.tensor([1.0], requires_grad=True)
    opt = SGD([w], lr=0.0)
    for _ in range(2):
        scaled_backward(scaler, w)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
    sd = scaler.state_dict()
    assert sd == {"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                  "growth_interval": 3, "_growth_tracker": 2}
    lazy, live = amp.GradScaler(), amp.GradScaler(init_scale=7.0)
    live.scale(gv.tensor(1.0))                       # its scale exists: load_state_dict fills it
    for fresh in (lazy, live):
        fresh.load_state_dict(sd)
        assert fresh.state_dict() == sd
        scaled_backward(fresh, w)
        fresh.step(opt)
        fresh.update()                               # the third clean step grows the scale
        opt.zero_grad()
        assert fresh.get_scale() == 2048.0 and fresh._get_growth_tracker() == 0
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        amp.GradScaler().load_state_dict({})


def test_pickle_between_iterations():
    scaler = amp.GradScaler(init_scale=64.0)
    scaled_backward(scaler, gv.tensor([1.0], requires_grad=True))
    copy = pickle.loads(pickle.dumps(scaler))
    assert copy.get_scale() == 64.0 and copy._scale is None


def test_update_with_new_scale():
    scaler = amp.GradScaler(init_scale=64.0)
    scaler.scale(gv.tensor(1.0))
    scaler.update(3.0)
    assert scaler.get_scale() == 3.0
    scaler.update(gv.tensor(5.0))
    assert scaler.get_scale() == 5.0
    with pytest.raises(AssertionError, match="new_scale should be a float"):
        scaler.update(gv.tensor(5.0, requires_grad=True))


# -- trace events -------------------------------------------------------------------------------------
def test_trace_records_scaler_events_and_skipped_steps():
    scaler = amp.GradScaler(init_scale=1024.0, growth_interval=3)
    with trace.record() as rec:
        scales, skipped, _, _, _ = run_manual_inf_loop(scaler)
    scaler_events = [e for e in rec.events if isinstance(e, trace.ScalerEvent)]
    step_events = [e for e in rec.events if isinstance(e, trace.StepEvent)]
    befores = [1024.0] + scales[:-1]
    assert [(e.scale_before, e.scale_after, e.found_inf) for e in scaler_events] == \
        list(zip(befores, scales, INF_PATTERN))
    assert [e.skipped for e in step_events] == INF_PATTERN
    assert all(e.optimizer == "SGD" for e in step_events)
    assert all(e.updates == [] for e in step_events if e.skipped)
    assert all(len(e.updates) == 1 for e in step_events if not e.skipped)


def test_trace_sees_the_autocast_casts():
    w = gv.rand(2, 2, requires_grad=True)
    with trace.record() as rec, amp.autocast(dtype=gv.float16):
        x = gv.rand(1, 2)
        x @ w
    grad_fns = [e.grad_fn for e in rec.events if isinstance(e, trace.ForwardEvent)]
    assert grad_fns == ["ToCopyBackward0", "ToCopyBackward0", "MmBackward0"]
