"""Clipping, schedulers and the GradScaler in the Session's loop, against the same loop in PyTorch.

The torch side follows docs/scenarios.md ("One optimizer step with clipping and a scheduler") by
hand: ``scaler.unscale_`` (unless the scaled grads are clipped), ``clip_grad_norm_``,
``scheduler.step()`` before or after ``optimizer.step()``. Every step's loss, parameters, grads,
learning rate and pre-clipping norm must agree (float64: to 1e-10; float32/float16: to float32
rounding). Replays (``trace_iteration``) after checkpoints must give the History's numbers.
"""
import warnings

import numpy as np
import pytest

from gradviz.scenario import validate
from gradviz.scenario.schema import OPTIMIZER_CLASSES, SCHEDULER_CLASSES, SchedulerSpec
from gradviz.training.session import Session, batch_order

from .test_session import line, mlp, optimizer

torch = pytest.importorskip("torch")


def schedule(kind, placement="after_step", **hyper):
    from gradviz.scenario.schema import SCHEDULER_DEFAULTS
    return SchedulerSpec(kind, dict(SCHEDULER_DEFAULTS[kind], **hyper), placement)


CASES = {
    "sgd-momentum-clip-steplr": mlp(optimizer("sgd", lr=0.5, momentum=0.9), clip_grad_norm=0.5,
                                    scheduler=schedule("step", step_size=5, gamma=0.5)),
    "adam-clip-cosine-before-step": mlp(optimizer("adam", lr=0.05), clip_grad_norm=0.2,
                                        scheduler=schedule("cosine", "before_step", T_max=20)),
    "line-onecycle-before-step": line(optimizer("sgd", lr=0.1, momentum=0.9),
                                      scheduler=schedule("onecycle", "before_step", max_lr=0.3)),
    "line-multistep-accumulation-clip": line(optimizer("rmsprop", lr=0.01, momentum=0.5), accumulation_steps=4,
                                             clip_grad_norm=0.05,
                                             scheduler=schedule("multistep", milestones=[5, 10, 10, 30])),
    "adamw-linear-float32": mlp(optimizer("adamw", lr=0.05), precision="float32", clip_grad_norm=0.1,
                                scheduler=schedule("linear", start_factor=0.1, total_iters=10)),
    "fp16-scaler-unscale-then-clip": mlp(optimizer("sgd", lr=0.5, momentum=0.9), precision="float16",
                                         loss_scaling=True, clip_grad_norm=0.1,
                                         scheduler=schedule("exponential", gamma=0.9)),
    "fp16-scaler-clip-scaled-grads": mlp(optimizer("sgd", lr=0.5, momentum=0.9), precision="float16",
                                         loss_scaling=True, clip_grad_norm=0.5, unscale_before_clip=False,
                                         scheduler=schedule("onecycle", max_lr=1.0, total_steps=40)),
    "fp16-overflowing-scaler-scheduler-first": mlp(optimizer("adam", lr=0.05), precision="float16",
                                                   loss_scaling=True, clip_grad_norm=1.0,
                                                   scaler=dict(init_scale=2.0 ** 24, growth_factor=2.0,
                                                               backoff_factor=0.5, growth_interval=3),
                                                   scheduler=schedule("step", "before_step", step_size=3)),
}
DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float32}


def torch_run(sc, initial):
    """The loop of docs/scenarios.md in PyTorch: per-step loss, params, grads, lr, clip norm."""
    loop = sc.loop
    dtype = DTYPES[loop.precision]
    names = list(initial)
    if sc.model.kind == "layers":
        sizes = sc.model.layers
        mods = []
        for i in range(len(sizes) - 1):
            mods.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dtype))
            if i < len(sizes) - 2:
                mods.append(torch.nn.Tanh())
        model = torch.nn.Sequential(*mods)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(initial[name]))
        params = dict(model.named_parameters())
        from gradviz.scenario.datasets import make_dataset
        x, y = make_dataset(sc.data.kind, sc.data.n, sc.data.noise, sc.seed, **sc.data.options)
        X, Y = torch.tensor(x, dtype=dtype).reshape(len(x), -1), torch.tensor(y, dtype=dtype).reshape(len(y), -1)
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits

        def forward(rows):
            return model(X[rows])
    else:
        params = {n: torch.tensor(v, dtype=dtype, requires_grad=True) for n, v in initial.items()}
        X = torch.tensor(sc.data.x, dtype=dtype)
        Y = torch.tensor(sc.data.y, dtype=dtype)
        loss_fn = torch.nn.functional.mse_loss

        def forward(rows):
            return params["w"] * X[rows] + params["b"]
    plist = [params[n] for n in names]
    opt = getattr(torch.optim, OPTIMIZER_CLASSES[sc.optimizer.kind])(plist, **sc.optimizer.hyper)
    spec = loop.scheduler
    hyper = dict(spec.hyper)
    if spec.kind == "onecycle" and hyper["total_steps"] is None:
        hyper["total_steps"] = loop.steps
    scheduler = getattr(torch.optim.lr_scheduler, SCHEDULER_CLASSES[spec.kind])(opt, **hyper)
    scaler = torch.amp.GradScaler("cpu", **loop.scaler) if loop.loss_scaling else None
    size = loop.batch_size or len(X)
    batches = batch_order(len(X), size, loop.shuffle, sc.seed)
    mb = size // loop.accumulation_steps
    out = {"loss": [], "params": {n: [initial[n]] for n in names}, "grads": {n: [] for n in names},
           "lr": [], "clip_norm": []}
    for _ in range(loop.steps):
        opt.zero_grad()
        idx = next(batches)
        total = 0.0
        for j in range(loop.accumulation_steps):
            rows = idx[j * mb:(j + 1) * mb]
            if loop.precision == "float16":
                with torch.autocast("cpu", dtype=torch.float16):
                    loss = loss_fn(forward(rows), Y[rows])
            else:
                loss = loss_fn(forward(rows), Y[rows])
            total += loss.item()
            if loop.accumulation_steps > 1:
                loss = loss / loop.accumulation_steps
            (scaler.scale(loss) if scaler else loss).backward()
        if scaler is not None and loop.unscale_before_clip:
            scaler.unscale_(opt)
        if loop.clip_grad_norm is not None:
            out["clip_norm"].append(torch.nn.utils.clip_grad_norm_(plist, loop.clip_grad_norm).item())
        if scaler is not None and not loop.unscale_before_clip:
            scaler.unscale_(opt)            # what scaler.step() does first; lets us record the grads
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if spec.placement == "before_step":
                scheduler.step()
            out["lr"].append(opt.param_groups[0]["lr"])
            for n in names:
                out["grads"][n].append(params[n].grad.detach().numpy().copy())
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            if spec.placement == "after_step":
                scheduler.step()
        for n in names:
            out["params"][n].append(params[n].detach().numpy().copy())
        out["loss"].append(total / loop.accumulation_steps)
    return out


@pytest.mark.parametrize("name", CASES)
def test_clipping_and_schedulers_match_the_same_loop_in_torch(name):
    torch.set_num_threads(1)
    sc = CASES[name]
    validate(sc)
    h = Session(sc).run()
    assert h.diverged_at is None and h.steps == sc.loop.steps
    ref = torch_run(sc, {n: h.params[n][0].copy() for n in h.param_names})
    tol = dict(rtol=1e-10, atol=1e-10) if sc.loop.precision == "float64" else dict(rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(h.lr, ref["lr"], rtol=1e-15, atol=0)
    if sc.loop.clip_grad_norm is None:
        assert h.clip_norm is None
    else:
        np.testing.assert_allclose(h.clip_norm, ref["clip_norm"], **tol)
        assert (h.clip_norm > sc.loop.clip_grad_norm).any()      # clipping did clip
    np.testing.assert_allclose(h.loss, ref["loss"], **tol)
    for n in h.param_names:
        np.testing.assert_allclose(h.grads[n], np.stack(ref["grads"][n]), err_msg=n, **tol)
        np.testing.assert_allclose(h.params[n], np.stack(ref["params"][n]), err_msg=n, **tol)
    assert len(set(h.lr.tolist())) > 1          # the schedule did change the learning rate


def test_clipping_scaled_gradients_shrinks_every_step_by_the_scale():
    """The mistake in numbers: the norm clip_grad_norm_ measures is the scale times the true one,
    so the step sees gradients of norm max_norm / scale instead of max_norm."""
    kw = dict(precision="float16", loss_scaling=True, clip_grad_norm=0.1, steps=10)
    right = Session(mlp(optimizer("sgd", lr=0.5), **kw)).run()
    wrong = Session(mlp(optimizer("sgd", lr=0.5), unscale_before_clip=False, **kw)).run()
    scale = wrong.grad_scale[0]
    np.testing.assert_allclose(wrong.clip_norm[0], scale * right.clip_norm[0], rtol=1e-3)
    np.testing.assert_allclose(wrong.grad_norm(), 0.1 / wrong.grad_scale, rtol=1e-3)
    np.testing.assert_allclose(right.grad_norm(), 0.1, rtol=1e-3)       # the true norms are above 0.1


def test_no_clipping_records_no_clip_norm_and_the_constant_lr():
    h = Session(line(optimizer("sgd", lr=0.1))).run()
    assert h.clip_norm is None
    np.testing.assert_array_equal(h.lr, np.full(h.steps, 0.1))
    assert "lr" in h.columns() and "clip_norm" not in h.columns()


@pytest.mark.parametrize("name", ["sgd-momentum-clip-steplr", "fp16-scaler-clip-scaled-grads",
                                  "fp16-overflowing-scaler-scheduler-first"])
def test_replays_after_checkpoints_are_exact_with_a_scheduler(name):
    """Checkpoints hold the scheduler's state: every traced iteration replays the recorded one."""
    sc = CASES[name]
    sc.loop.steps = 200 if sc.loop.scheduler.kind != "onecycle" else 40
    if sc.loop.scheduler.kind == "onecycle":
        sc.loop.scheduler.hyper["total_steps"] = 40
    session = Session(sc)
    h = session.run()
    assert len(session._checkpoints) > 4       # replays start from checkpoints, not step 0
    for k in (0, 1, 7, 63, 64, 65, h.steps - 1):
        if k >= h.steps:
            continue
        trace = session.trace_iteration(k)
        for n in h.param_names:
            np.testing.assert_array_equal(trace.params_before[n], h.params[n][k], err_msg=f"{n} @ {k}")
            np.testing.assert_array_equal(trace.params_after[n], h.params[n][k + 1], err_msg=f"{n} @ {k}")
    # and tracing leaves the History and a rerun alike
    again = Session(sc).run()
    np.testing.assert_array_equal(again.lr, h.lr)
    np.testing.assert_array_equal(again.clip_norm, h.clip_norm)
