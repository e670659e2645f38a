"""The Session's loop against the same loop written directly in PyTorch (float64).

Each case copies gradviz's initial parameters into torch, feeds the same batches (``batch_order``)
and follows docs/contracts.md's step by hand; the whole trajectory (loss, every parameter and
every gradient at every step) must agree to 1e-10.
"""
import numpy as np
import pytest

from gradviz.scenario import expr
from gradviz.scenario.datasets import make_dataset
from gradviz.scenario.schema import OPTIMIZER_CLASSES
from gradviz.training.session import Session, batch_order

from .test_session import line, mlp, optimizer, rosenbrock, tanh_expr

torch = pytest.importorskip("torch")
TOL = 1e-10

TORCH_FUNCTIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "exp": torch.exp,
                   "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "sum": torch.sum, "mean": torch.mean}
TORCH_LOSSES = {"mse": torch.nn.functional.mse_loss, "l1": torch.nn.functional.l1_loss,
                "bce_with_logits": torch.nn.functional.binary_cross_entropy_with_logits,
                "cross_entropy": torch.nn.functional.cross_entropy}
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}

CASES = {
    "expression-shuffled-momentum": tanh_expr(batch_size=16, shuffle=True, steps=60),
    "mlp-bce-adam": mlp(steps=60),
    "mlp-accumulation-4": mlp(optimizer("rmsprop", lr=0.01, momentum=0.5), batch_size=32, shuffle=True,
                              accumulation_steps=4, steps=60),
    "line-accumulation-4-no-divide": line(optimizer("sgd", lr=0.02, nesterov=True, momentum=0.9),
                                          accumulation_steps=4, divide_loss=False, steps=60),
    "line-zero-grad-never": line(optimizer(lr=0.002), zero_grad="never", steps=60),
    "mlp-after-step-adamw": mlp(optimizer("adamw", lr=0.02, amsgrad=True), zero_grad="after_step",
                                set_to_none=False, steps=60),
    "mlp-cross-entropy-shuffled": mlp(optimizer("sgd", lr=0.1, momentum=0.9), loss="cross_entropy",
                                      layers=(2, 6, 3), activation="relu", data="blobs", batch_size=32,
                                      shuffle=True, steps=60),
    "mlp-l1-sum-adagrad": mlp(optimizer("adagrad", lr=0.05), loss="l1", activation="sigmoid", steps=60),
    "rosenbrock-adam": rosenbrock(steps=60),
}
CASES["mlp-l1-sum-adagrad"].loss.reduction = "sum"


def data_of(sc):
    if sc.data.kind == "inline":
        return np.asarray(sc.data.x, dtype=np.float64), np.asarray(sc.data.y, dtype=np.float64)
    return make_dataset(sc.data.kind, sc.data.n, sc.data.noise, sc.seed, **sc.data.options)


def torch_run(sc, initial):
    """The contract's loop, written plainly in PyTorch; returns per-step loss, params, grads."""
    loop = sc.loop
    names = list(initial)
    if sc.model.kind == "layers":
        sizes = sc.model.layers
        mods = []
        for i in range(len(sizes) - 1):
            mods.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float64))
            if i < len(sizes) - 2:
                mods.append(ACTIVATIONS[sc.model.activation]())
        model = torch.nn.Sequential(*mods)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(initial[name]))
        params = dict(model.named_parameters())
    else:
        params = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in initial.items()}
        ast = expr.parse(sc.model.expression)
    opt = getattr(torch.optim, OPTIMIZER_CLASSES[sc.optimizer.kind])(list(params.values()), **sc.optimizer.hyper)
    loss_fn = TORCH_LOSSES[sc.loss.kind]

    if sc.model.kind == "objective":
        batches = None
    else:
        x, y = data_of(sc)
        y = y.reshape(-1).astype(np.int64) if sc.loss.kind == "cross_entropy" else y
        if sc.model.kind == "layers":
            x = x.reshape(len(x), -1)
            y = y if sc.loss.kind == "cross_entropy" else y.reshape(len(y), -1)
        else:
            y = y.reshape(-1)
        X, Y = torch.from_numpy(x), torch.from_numpy(y)
        size = loop.batch_size or len(x)
        batches = batch_order(len(x), size, loop.shuffle, sc.seed)
        mb = size // loop.accumulation_steps

    def forward(rows):
        if sc.model.kind == "layers":
            return model(X[rows])
        env = dict(params)
        if sc.model.kind == "expression":
            cols = X[rows]
            if cols.ndim == 1:
                env["x"] = cols
            else:
                env.update({f"x{i + 1}": cols[:, i] for i in range(cols.shape[1])})
        return expr.evaluate(ast, env, functions=TORCH_FUNCTIONS)

    out = {"loss": [], "params": {n: [initial[n]] for n in names}, "grads": {n: [] for n in names}}
    for _ in range(loop.steps):
        if loop.zero_grad == "before_backward":
            opt.zero_grad(set_to_none=loop.set_to_none)
        idx = next(batches) if batches is not None else None
        total = 0.0
        for j in range(loop.accumulation_steps):
            rows = idx[j * mb:(j + 1) * mb] if idx is not None else None
            pred = forward(rows)
            loss = pred if sc.model.kind == "objective" else loss_fn(pred, Y[rows], reduction=sc.loss.reduction)
            total += loss.item()
            if loop.divide_loss and loop.accumulation_steps > 1:
                loss = loss / loop.accumulation_steps
            loss.backward()
        for n in names:
            out["grads"][n].append(params[n].grad.detach().numpy().copy())
        opt.step()
        for n in names:
            out["params"][n].append(params[n].detach().numpy().copy())
        if loop.zero_grad == "after_step":
            opt.zero_grad(set_to_none=loop.set_to_none)
        out["loss"].append(total / loop.accumulation_steps)
    return out


@pytest.mark.parametrize("name", CASES)
def test_session_matches_the_same_loop_in_torch(name):
    torch.set_num_threads(1)
    sc = CASES[name]
    h = Session(sc).run()
    assert h.diverged_at is None and h.steps == sc.loop.steps
    ref = torch_run(sc, {n: h.params[n][0].copy() for n in h.param_names})
    np.testing.assert_allclose(h.loss, ref["loss"], rtol=TOL, atol=TOL)
    for n in h.param_names:
        np.testing.assert_allclose(h.params[n], np.stack(ref["params"][n]), rtol=TOL, atol=TOL, err_msg=n)
        np.testing.assert_allclose(h.grads[n], np.stack(ref["grads"][n]), rtol=TOL, atol=TOL, err_msg=n)
