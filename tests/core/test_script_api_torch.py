"""What training scripts use, against torch 2.13: DataLoader batches and random streams, gradient
clipping, learning-rate schedulers, grad mode, default dtype, linspace, state_dict, devices."""
import copy
import math
import warnings

import numpy as np
import pytest

import gradviz
import gradviz.nn.utils
from gradviz.optim import lr_scheduler as glrs
from gradviz.utils import data as gdata

torch = pytest.importorskip("torch")
tdata = pytest.importorskip("torch.utils.data")
tlrs = torch.optim.lr_scheduler

X = np.arange(26, dtype=np.float32).reshape(13, 2) / 7
Y = np.arange(13) % 3


# -- DataLoader ---------------------------------------------------------------------------------------
LOADERS = [dict(batch_size=4), dict(batch_size=4, shuffle=True), dict(batch_size=5, shuffle=True, drop_last=True),
           dict(batch_size=13, shuffle=True), dict(batch_size=1, shuffle=True), dict(batch_size=None)]


def _epochs(L, data, kw, generator, epochs=3):
    L.manual_seed(7)
    gen = None if generator is None else L.Generator().manual_seed(generator)
    loader = data.DataLoader(data.TensorDataset(L.tensor(X), L.tensor(Y)), generator=gen, **kw)
    out = [len(loader)]
    for _ in range(epochs):
        out.append([(b[0].tolist(), b[1].tolist(), str(b[0].dtype).split(".")[-1], type(b).__name__) for b in loader])
    out.append(L.randn(3).tolist())          # the global stream after the epochs
    return out


@pytest.mark.parametrize("generator", [None, 5])
@pytest.mark.parametrize("kw", LOADERS, ids=[str(k) for k in LOADERS])
def test_dataloader_batches_and_random_stream_match_torch(kw, generator):
    assert _epochs(gradviz, gdata, kw, generator) == _epochs(torch, tdata, kw, generator)


def test_dataloader_batches_are_leaves_outside_the_trace():
    loader = gdata.DataLoader(gdata.TensorDataset(gradviz.tensor(X), gradviz.tensor(Y)), batch_size=4)
    with gradviz.trace.record() as rec:
        xb, yb = next(iter(loader))
    assert rec.events == [] and xb.grad_fn is None and xb.shape == (4, 2)


def test_breaking_out_of_an_epoch_leaves_the_stream_where_torch_leaves_it():
    def run(L, data):
        L.manual_seed(3)
        loader = data.DataLoader(data.TensorDataset(L.tensor(X)), batch_size=2, shuffle=True)
        firsts = []
        for _ in range(2):
            for (xb,) in loader:
                firsts.append(xb.tolist())
                break
        return firsts, L.rand(2).tolist()
    assert run(gradviz, gdata) == run(torch, tdata)


def test_default_collate_and_random_split_match_torch():
    class Pairs:
        def __init__(self, data): self.data = data
        def __len__(self): return 6
        def __getitem__(self, i): return {"x": float(i) / 3, "n": i, "v": self.data.tensor([i, 2 * i])}

    def run(L, data):
        L.manual_seed(1)
        out = [(b["x"].tolist(), str(b["x"].dtype), b["n"].tolist(), b["v"].tolist())
               for b in data.DataLoader(Pairs(L), batch_size=4, shuffle=True)]
        parts = data.random_split(data.TensorDataset(L.tensor(X)), [0.5, 0.3, 0.2])
        out.append([[int(round(p[i][0][0].item() * 7)) for i in range(len(p))] for p in parts])
        out.append([b[0].shape[0] for b in data.DataLoader(parts[0], batch_size=3)])
        return [[str(v).replace("torch.", "") for v in o] if isinstance(o, tuple) else o for o in out]
    assert run(gradviz, gdata) == run(torch, tdata)


# -- clipping ---------------------------------------------------------------------------------------------
def _grads(L, dtype, scale):
    rng = np.random.default_rng(4)
    params = []
    for shape in ((3, 5), (5,), (17,), (1,)):
        p = L.tensor(rng.standard_normal(shape), dtype=getattr(L, dtype), requires_grad=True)
        p.grad = L.tensor(rng.standard_normal(shape) * scale, dtype=getattr(L, dtype))
        params.append(p)
    params.append(L.tensor([1.0], dtype=getattr(L, dtype), requires_grad=True))     # no .grad: skipped
    return params


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("max_norm,norm_type,scale", [(1.0, 2.0, 3.0), (100.0, 2.0, 1.0), (0.5, math.inf, 2.0),
                                                      (2.0, 1.0, 1.0), (1.0, 3.0, 1.0)])
def test_clip_grad_norm_matches_torch(dtype, max_norm, norm_type, scale):
    ours, ref = _grads(gradviz, dtype, scale), _grads(torch, dtype, scale)
    total = gradviz.nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type=norm_type)
    assert total.dtype == np.dtype(dtype) and total.shape == ()
    exact = norm_type in (2.0, math.inf)      # other orders: numpy's power and sum, not torch's kernel
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(total.item(), t_total.item(), **tol)
    for p, tp in zip(ours, ref):
        if tp.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), **tol)


def test_clip_grad_value_and_errors_match_torch():
    ours, ref = _grads(gradviz, "float32", 2.0), _grads(torch, "float32", 2.0)
    assert gradviz.nn.utils.clip_grad_value_(ours, 0.7) is None and torch.nn.utils.clip_grad_value_(ref, 0.7) is None
    for p, tp in zip(ours, ref):
        assert (p.grad is None) == (tp.grad is None)
        if tp.grad is not None:
            assert p.grad.tolist() == tp.grad.tolist()
    for L in (gradviz, torch):
        p = L.tensor([1.0], requires_grad=True)
        p.grad = L.tensor([float("inf")])
        with pytest.raises(RuntimeError) as err:
            L.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
        msg = str(err.value)
        assert L.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    assert "non-finite" in msg


def test_clipping_emits_clip_events():
    params = _grads(gradviz, "float32", 3.0)
    before = [None if p.grad is None else p.grad.numpy().copy() for p in params]
    with gradviz.trace.record() as rec:
        total = gradviz.nn.utils.clip_grad_norm_(params, 1.0)
        gradviz.nn.utils.clip_grad_value_(params, 0.01)
    norm_event, value_event = rec.events
    assert isinstance(norm_event, gradviz.trace.ClipEvent) and norm_event.kind == "norm"
    assert norm_event.total_norm == total.item() and 0 < norm_event.clip_coef < 1 and norm_event.limit == 1.0
    assert len(norm_event.grads) == 4 and np.array_equal(norm_event.grads[0].before, before[0])
    assert np.allclose(norm_event.grads[0].after, before[0] * norm_event.clip_coef)
    assert value_event.kind == "value" and np.abs(value_event.grads[1].after).max() <= 0.01


# -- schedulers -------------------------------------------------------------------------------------------
SCHEDULERS = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.5),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=17, eta_min=0.001),
    "LinearLR": lambda M, o: M.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=13),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, max_lr=0.8, total_steps=51),
    "OneCycleLR-linear-3phase": lambda M, o: M.OneCycleLR(o, max_lr=[0.8, 0.4], total_steps=51,
                                                            anneal_strategy="linear", three_phase=True),
    "LambdaLR": lambda M, o: M.LambdaLR(o, lambda epoch: 0.95 ** epoch / (1 + epoch % 3)),
    "ConstantLR": lambda M, o: M.ConstantLR(o, factor=0.5, total_iters=4),
}


def _lr_run(L, M, name, optimizer, steps=50):
    w = L.tensor([1.0, -2.0], requires_grad=True)
    b = L.tensor([0.5], requires_grad=True)
    groups = [{"params": [w]}, {"params": [b], "lr": 0.05}] if "3phase" in name else [w, b]
    kwargs = dict(lr=0.1, momentum=0.9) if optimizer == "SGD" else dict(lr=0.1)
    opt = getattr(L.optim, optimizer)(groups, **kwargs)
    sched = SCHEDULERS[name](M, opt)
    seen = [list(sched.get_last_lr())]
    extra = []
    for _ in range(steps):
        (w * w).sum().add(b.sum()).backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        seen.append(list(sched.get_last_lr()))
        extra.append([g.get("momentum", g.get("betas")) for g in opt.param_groups])
    state = {k: v for k, v in sched.state_dict().items() if k not in ("lr_lambdas", "_schedule_phases")}
    return seen, extra, w.tolist(), state


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_lr_sequence_equals_torch(name, optimizer):
    ours = _lr_run(gradviz, glrs, name, optimizer)
    ref = _lr_run(torch, tlrs, name, optimizer)
    assert ours[0] == ref[0]                       # every lr, exactly (same formulas, same order)
    assert ours[1] == [[tuple(m) if isinstance(m, tuple) else m for m in row] for row in ref[1]]
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-6)
    ref_state = {k: v for k, v in ref[3].items() if k in ours[3]}
    assert set(ours[3]) <= set(ref[3]) and ours[3] == ref_state


def test_closed_form_step_with_epoch_warns_and_matches_torch():
    def run(L, M):
        opt = L.optim.SGD([L.tensor([1.0], requires_grad=True)], lr=0.2)
        sched = M.CosineAnnealingLR(opt, T_max=10)
        opt.step()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sched.step(7)
        return sched.get_last_lr(), sched.last_epoch, [str(c.message)[:40] for c in caught]
    assert run(gradviz, glrs) == run(torch, tlrs)


def test_scheduler_step_before_optimizer_step_warns_like_torch():
    def run(L, M, order):
        w = L.tensor([1.0], requires_grad=True)
        opt = L.optim.SGD([w], lr=0.1)
        sched = M.StepLR(opt, step_size=1, gamma=0.5)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                (w * w).sum().backward()
                if order == "scheduler first":
                    sched.step()
                    opt.step()
                else:
                    opt.step()
                    sched.step()
        return [(c.category.__name__, str(c.message)) for c in caught], sched.get_last_lr(), w.tolist()
    for order in ("scheduler first", "optimizer first"):
        ours, ref = run(gradviz, glrs, order), run(torch, tlrs, order)
        assert ours[0] == ref[0] and ours[1] == ref[1]
        np.testing.assert_allclose(ours[2], ref[2], rtol=1e-6)
    assert "before `optimizer.step()`" in run(gradviz, glrs, "scheduler first")[0][0][1]


def test_scheduler_emits_scheduler_events_but_not_for_its_constructor():
    opt = gradviz.optim.SGD([gradviz.tensor([1.0], requires_grad=True)], lr=0.1)
    with gradviz.trace.record() as rec:
        sched = glrs.StepLR(opt, step_size=1, gamma=0.1)
        assert rec.events == []
        opt.step()
        sched.step()
    (step, event) = rec.events
    assert isinstance(event, gradviz.trace.SchedulerEvent)
    assert (event.scheduler, event.lr_before, event.epoch) == ("StepLR", [0.1], 1)
    assert event.lr_after == pytest.approx([0.01])


# -- grad mode, dtypes, factories, modules --------------------------------------------------------------
def test_set_grad_enabled_as_function_context_manager_and_decorator():
    results = []
    for L in (gradviz, torch):
        x = L.tensor([1.0], requires_grad=True)
        with L.set_grad_enabled(False):
            inside = (x * 2).requires_grad
        after = L.is_grad_enabled()
        L.set_grad_enabled(False)
        called = (x * 2).requires_grad
        L.set_grad_enabled(True)

        @L.set_grad_enabled(False)
        def f(x=x):
            return (x * 2).requires_grad
        with L.inference_mode():
            inference = (x * 2).requires_grad
        results.append((inside, after, called, L.is_grad_enabled(), f(), L.is_grad_enabled(), inference))
    assert results[0] == results[1]


def test_default_dtype_changes_new_tensors_like_torch():
    results = []
    for L in (gradviz, torch):
        L.set_default_dtype(L.float64)
        try:
            got = [str(v.dtype).split(".")[-1] for v in (L.tensor([1.0]), L.zeros(2), L.randn(2), L.ones(1),
                                                         L.arange(0.0, 1.0, 0.5), L.linspace(0, 1, 3),
                                                         L.tensor([1]), L.tensor([1]) / 2, L.nn.Linear(2, 1).weight)]
            got.append(repr(L.tensor([0.1, 2.0])))
            got.append(str(L.get_default_dtype()).split(".")[-1])
        finally:
            L.set_default_dtype(L.float32)
        with pytest.raises(TypeError):
            L.set_default_dtype(L.int64)
        results.append(got)
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-1, 1, 100), (-3.3, 7.1, 37), (0, 2 * math.pi, 50),
                                             (3, -2, 7), (0.5, 0.75, 2), (1, 5, 1), (0, 1, 0), (-100, 1e-3, 3001)])
def test_linspace_has_torch_bits(start, end, steps, dtype):
    ours = gradviz.linspace(start, end, steps, dtype=getattr(gradviz, dtype))
    ref = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
    assert ours.dtype == np.dtype(dtype) and np.array_equal(ours.numpy(), ref.numpy())


def test_state_dict_prints_like_torch_and_shares_storage():
    texts = []
    for L in (gradviz, torch):
        L.manual_seed(0)
        model = L.nn.Sequential(L.nn.Linear(2, 3), L.nn.ReLU(), L.nn.Linear(3, 1))
        sd = model.state_dict()
        snapshot = copy.deepcopy(sd)
        with L.no_grad():
            model[0].bias.add_(1.0)
        texts.append((repr(sd), repr(snapshot), repr(model), repr(model.load_state_dict(snapshot)),
                      model[0].bias.tolist(), list(sd)))
    assert texts[0] == texts[1]


def test_load_state_dict_errors_name_the_keys():
    for L in (gradviz, torch):
        model = L.nn.Linear(2, 1)
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict({"weight": L.zeros(1, 3)})
        lines = str(err.value).splitlines()
        if L is gradviz:
            ours = lines
    assert ours == lines


def test_devices_are_the_cpu():
    x = gradviz.tensor([1.0, 2.0], requires_grad=True)
    model = gradviz.nn.Linear(2, 1)
    assert x.cuda() is x and x.cpu() is x and x.to("cuda") is x and x.to(gradviz.device("cuda:0")) is x
    assert x.to("cpu", gradviz.float64).dtype == np.float64
    assert x.to(device="cuda", dtype=gradviz.float16).dtype == np.float16
    assert model.to("cuda") is model and model.cuda() is model and model.cpu() is model
    assert model.to(gradviz.float64).weight.dtype == np.float64
    assert repr(x.device) == "device(type='cpu')" and str(gradviz.device("cuda:1")) == "cuda:1"
    assert gradviz.device("cpu") == gradviz.device("cpu") != "cpu" and x.is_cuda is False
    assert (torch.device("cpu") == "cpu") is False       # torch compares devices only with devices
    assert gradviz.zeros(2, device="cuda").tolist() == [0.0, 0.0]


def test_from_numpy_shares_memory_like_torch():
    a = np.array([1.0, 2.0])
    t = gradviz.from_numpy(a)
    a[0] = 5.0
    assert t.tolist() == [5.0, 2.0] and t.dtype == np.float64
    assert gradviz.from_numpy(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    with pytest.raises(TypeError):
        gradviz.from_numpy([1.0])


def test_new_modules_and_losses_match_torch():
    rng = np.random.default_rng(0)
    x, logits = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    target, probs = np.array([2, 0, 1, 1]), rng.uniform(0.1, 0.9, (4, 3))
    outs = []
    for L in (gradviz, torch):
        nn = L.nn
        inp = L.tensor(x, requires_grad=True)
        mods = nn.ModuleList([nn.Identity(), nn.LeakyReLU(0.2), nn.Softmax(dim=1), nn.LogSoftmax(dim=1)])
        vals = [m(inp).tolist() for m in mods]
        vals.append(nn.Flatten()(L.tensor(x).reshape(2, 2, 3)).tolist())
        vals.append(nn.NLLLoss()(inp.log_softmax(1), L.tensor(target)).item())
        vals.append(nn.BCELoss(reduction="sum")(inp.sigmoid(), L.tensor(probs)).item())
        vals.append(nn.CrossEntropyLoss(reduction="none")(L.tensor(logits), L.tensor(target)).tolist())
        vals.append(nn.MSELoss(size_average=False)(inp, L.tensor(x) * 2).item())
        outs.append((vals, repr(mods), len(mods)))
    for ours, ref in zip(outs[0][0], outs[1][0]):
        np.testing.assert_allclose(np.array(ours), np.array(ref), rtol=1e-12)
    assert outs[0][1:] == outs[1][1:]


# -- nn.Linear on inputs that are not a 2-D batch ------------------------------------------------------
@pytest.mark.parametrize("shape", [(2,), (4, 3, 2), (1, 1, 2)])
def test_linear_on_any_batch_shape_is_one_addmm_viewed_back_as_in_torch(shape):
    """torch flattens the batch, runs one addmm and views the result back (ViewBackward0), so the
    node names, the values and the autocast dtype are those of a 2-D batch."""
    gradviz.manual_seed(0)
    torch.manual_seed(0)
    g_lin, t_lin = gradviz.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    x = np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    gx, tx = gradviz.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_out, t_out = g_lin(gx), t_lin(tx)
    assert g_out.shape == tuple(t_out.shape) and g_out.grad_fn.name() == t_out.grad_fn.name() == "ViewBackward0"
    # BLAS rounding order: torch's addmm and numpy's matmul add the products in another order (1 ulp)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-6, atol=1e-7)
    g_out.sum().backward()
    t_out.sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g_lin.weight.grad.numpy(), t_lin.weight.grad.numpy(), rtol=1e-6, atol=1e-7)
    with gradviz.autocast("cpu", dtype=gradviz.bfloat16), torch.autocast("cpu", dtype=torch.bfloat16):
        assert str(g_lin(gx).dtype) == "bfloat16" and t_lin(tx).dtype == torch.bfloat16
    with pytest.raises(RuntimeError) as t_err:
        t_lin(torch.ones(*shape[:-1], 5))
    with pytest.raises(RuntimeError) as g_err:
        g_lin(gradviz.ones(*shape[:-1], 5))
    assert str(g_err.value) == str(t_err.value)


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"])
def test_tensor_type_names_and_converts_as_torch(name):
    g_dtype = np.dtype(gradviz.bfloat16) if name == "bfloat16" else np.dtype(name)
    g, t = gradviz.zeros(2, dtype=g_dtype), torch.zeros(2, dtype=getattr(torch, name))
    assert g.type() == t.type()
    x, tx = gradviz.tensor([1.5, -2.0]), torch.tensor([1.5, -2.0])
    assert repr(x.type(t.type())) == repr(tx.type(t.type()))       # by legacy name
    assert str(x.type(g_dtype).dtype) == str(tx.type(getattr(torch, name)).dtype).removeprefix("torch.")


@pytest.mark.parametrize("name", ["int8", "int16", "int32", "int64", "uint8"])
def test_a_numpy_int_array_keeps_its_dtype_as_in_torch(name):
    a = np.array([1, 2, 3], dtype=name)
    assert str(gradviz.tensor(a).dtype) == str(torch.tensor(a).dtype).removeprefix("torch.") == name
    assert str(gradviz.tensor([1, 2]).dtype) == "int64"                 # Python ints: int64, as torch
