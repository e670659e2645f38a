"""The one table of op cases: test_ops_gradcheck.py and test_ops_torch.py both run every row.

A case is a function ``fn(L, *inputs)`` written once against the shared gradviz/PyTorch API
(``L`` is the ``gradviz`` or ``torch`` module) plus how to draw its float64 inputs.  Inputs are
drawn away from kinks (``abs``/``relu`` at 0, ``clamp`` at its bounds) so that finite differences
see a smooth function, and away from 0 where the op needs a positive input (``log``, ``sqrt``,
``x ** 0.5``, the base of ``x ** y``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable
    shapes: tuple                      # one shape per input tensor
    domain: tuple = ()                 # per input: "any" (default), "pos" (0.5..2), "away" (|x| >= 0.2)
    kinks: tuple = ()                  # values inputs must stay away from (clamp bounds)
    eps: float = 1e-6                  # finite-difference step
    rtol: float = 1e-6
    torch_name_xfail: str = ""         # reason, when gradviz's grad_fn name cannot match PyTorch's

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng([seed, sum(map(ord, self.id))])
        arrays = []
        for i, shape in enumerate(self.shapes):
            kind = self.domain[i] if i < len(self.domain) else "any"
            if kind == "pos":
                x = rng.uniform(0.5, 2.0, shape)
            elif kind == "away":
                x = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
            else:
                x = rng.uniform(-2.0, 2.0, shape)
            for k in self.kinks:
                x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
            arrays.append(np.asarray(x, dtype=np.float64))
        return arrays


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

def _c(id, fn, *shapes, **kw):
    return Case(id, fn, tuple(shapes), **kw)


CASES = [
    # -- binary elementwise, tensor and tensor, with broadcasting --------------------------------
    _c("add_bcast_3x1_1x4", lambda L, x, y: x + y, (3, 1), (1, 4)),
    _c("sub_2x3_3", lambda L, x, y: x - y, (2, 3), (3,)),
    _c("mul_2x3_3", lambda L, x, y: x * y, (2, 3), (3,)),
    _c("mul_scalar_tensor_2x2", lambda L, x, y: x * y, (), (2, 2)),
    _c("div_bcast_3x1_1x4", lambda L, x, y: x / y, (3, 1), (1, 4), domain=("any", "away")),
    _c("div_same", lambda L, x, y: x / y, (2, 3), (2, 3), domain=("any", "away")),
    _c("pow_tensor_tensor", lambda L, x, y: x ** y, (2, 3), (2, 3), domain=("pos", "any")),
    _c("pow_tensor_bcast", lambda L, x, y: x ** y, (2, 3), (3,), domain=("pos", "any")),
    _c("method_add_mul", lambda L, x, y: x.add(y).mul(y).sub(x).div(y), (2, 3), (2, 3), domain=("any", "away")),
    # -- Python scalars on both sides ---------------------------------------------------------------
    _c("add_scalar", lambda L, x: x + 2, (2, 3)),
    _c("radd_scalar", lambda L, x: 2 + x, (2, 3)),
    _c("sub_scalar", lambda L, x: x - 2, (2, 3)),
    _c("rsub_scalar", lambda L, x: 2 - x, (2, 3)),
    _c("mul_scalar", lambda L, x: x * 2.5, (2, 3)),
    _c("rmul_scalar", lambda L, x: 2.5 * x, (2, 3)),
    _c("div_scalar", lambda L, x: x / 4, (2, 3)),
    _c("rdiv_scalar", lambda L, x: 2 / x, (2, 3), domain=("away",)),
    _c("pow_2", lambda L, x: x ** 2, (2, 3)),
    _c("pow_3", lambda L, x: x ** 3, (2, 3)),
    _c("pow_half", lambda L, x: x ** 0.5, (2, 3), domain=("pos",)),
    _c("pow_neg", lambda L, x: x ** -1.5, (2, 3), domain=("pos",)),
    _c("pow_0", lambda L, x: x ** 0 * x, (2, 3)),
    _c("rpow_scalar", lambda L, x: 2 ** x, (2, 3)),
    _c("neg", lambda L, x: -x, (2, 3)),
    # -- unary ---------------------------------------------------------------------------------------
    _c("exp", lambda L, x: x.exp(), (2, 3)),
    _c("log", lambda L, x: x.log(), (2, 3), domain=("pos",)),
    _c("sqrt", lambda L, x: x.sqrt(), (2, 3), domain=("pos",)),
    _c("abs", lambda L, x: x.abs(), (2, 3), domain=("away",)),
    _c("tanh", lambda L, x: x.tanh(), (2, 3)),
    _c("sigmoid", lambda L, x: x.sigmoid(), (2, 3)),
    _c("relu", lambda L, x: x.relu(), (2, 3), domain=("away",)),
    _c("functional_tanh", lambda L, x: L.tanh(x), (2, 3)),
    _c("functional_exp", lambda L, x: L.exp(x), (2, 3)),
    _c("clamp_min", lambda L, x: x.clamp(min=-0.3), (3, 4), kinks=(-0.3,)),
    _c("clamp_max", lambda L, x: x.clamp(max=0.4), (3, 4), kinks=(0.4,)),
    _c("clamp_both", lambda L, x: x.clamp(-0.3, 0.4), (3, 4), kinks=(-0.3, 0.4)),
    _c("clamp_min_method", lambda L, x: x.clamp_min(0.1), (3, 4), kinks=(0.1,)),
    # -- casts (float32 rounding: a larger step and tolerance for finite differences) ---------------
    _c("to_float32", lambda L, x: x.to(L.float32) * 3, (2, 3), eps=1e-2, rtol=1e-4),
    _c("float_method", lambda L, x: x.float(), (2, 3), eps=1e-2, rtol=1e-4),
    _c("to_float32_and_back", lambda L, x: x.to(L.float32).to(L.float64), (2, 3), eps=1e-2, rtol=1e-4),
    # -- reductions -----------------------------------------------------------------------------------
    _c("sum_all", lambda L, x: x.sum(), (3, 4)),
    _c("sum_dim0", lambda L, x: x.sum(0), (3, 4)),
    _c("sum_dim_neg1", lambda L, x: x.sum(-1), (3, 4)),
    _c("sum_keepdim", lambda L, x: x.sum(1, keepdim=True), (3, 4)),
    _c("sum_tuple_dims", lambda L, x: x.sum((0, 2)), (2, 3, 4)),
    _c("sum_tuple_keepdim", lambda L, x: x.sum((0, -1), keepdim=True), (2, 3, 4)),
    _c("functional_sum", lambda L, x: L.sum(x, 1), (3, 4)),
    _c("mean_all", lambda L, x: x.mean(), (3, 4)),
    _c("mean_dim1", lambda L, x: x.mean(1), (3, 4)),
    _c("mean_keepdim", lambda L, x: x.mean(0, keepdim=True), (3, 4)),
    _c("mean_tuple_dims", lambda L, x: x.mean((1, 2)), (2, 3, 4)),
    _c("max_all", lambda L, x: x.max(), (3, 4)),
    _c("max_dim0", lambda L, x: x.max(0).values, (3, 4)),
    _c("max_dim1_keepdim", lambda L, x: x.max(1, keepdim=True).values, (3, 4)),
    _c("max_dim_neg1_3d", lambda L, x: x.max(-1)[0], (2, 3, 4)),
    # -- matmul ---------------------------------------------------------------------------------------
    _c("matmul_1d_1d", lambda L, a, b: a @ b, (3,), (3,)),
    _c("matmul_2d_1d", lambda L, a, b: a @ b, (2, 3), (3,)),
    _c("matmul_1d_2d", lambda L, a, b: a @ b, (3,), (3, 5)),
    _c("matmul_2d_2d", lambda L, a, b: a @ b, (2, 3), (3, 5)),
    _c("matmul_batched_2d", lambda L, a, b: a @ b, (4, 2, 3), (3, 5)),
    _c("matmul_batched_batched", lambda L, a, b: a @ b, (4, 2, 3), (4, 3, 5)),
    _c("matmul_batch_broadcast", lambda L, a, b: a @ b, (1, 2, 3), (4, 3, 5)),
    _c("matmul_batch_broadcast_rhs", lambda L, a, b: a @ b, (4, 2, 3), (1, 3, 5)),
    _c("matmul_2d_batched", lambda L, a, b: a @ b, (2, 3), (4, 3, 5)),
    _c("matmul_1d_batched", lambda L, a, b: a @ b, (3,), (4, 3, 5)),
    _c("matmul_batched_1d", lambda L, a, b: a @ b, (4, 2, 3), (3,)),
    _c("matmul_4d_3d", lambda L, a, b: a @ b, (2, 1, 2, 3), (4, 3, 5)),
    _c("matmul_method", lambda L, a, b: a.matmul(b), (2, 3), (3, 5)),
    # -- shape -----------------------------------------------------------------------------------------
    _c("reshape", lambda L, x: x.reshape(4, 3), (3, 4)),
    _c("reshape_tuple_neg1", lambda L, x: x.reshape((2, -1)), (3, 4)),
    _c("view", lambda L, x: x.view(2, 6), (3, 4)),
    _c("reshape_copies_transpose", lambda L, x: x.T.reshape(12), (3, 4)),
    _c("reshape_views_strided", lambda L, x: x[:, 1:].reshape(3, 1, 3), (3, 4)),
    _c("unsqueeze0", lambda L, x: x.unsqueeze(0), (3, 4)),
    _c("unsqueeze_neg1", lambda L, x: x.unsqueeze(-1), (3, 4)),
    _c("squeeze_all", lambda L, x: x.squeeze(), (3, 1, 4)),
    _c("squeeze_dim", lambda L, x: x.squeeze(1), (3, 1, 4)),
    _c("flatten", lambda L, x: x.flatten(), (2, 3, 2)),
    _c("transpose", lambda L, x: x.transpose(0, 1), (3, 4)),
    _c("transpose_3d", lambda L, x: x.transpose(0, 2), (2, 3, 4)),
    _c("T", lambda L, x: x.T, (3, 4)),
    _c("permute", lambda L, x: x.permute(2, 0, 1), (2, 3, 4)),
    _c("permute_tuple", lambda L, x: x.permute((1, 0)), (3, 4)),
    # -- indexing --------------------------------------------------------------------------------------
    _c("index_int", lambda L, x: x[1], (3, 4)),
    _c("index_neg_int", lambda L, x: x[-1], (3, 4)),
    _c("index_slice", lambda L, x: x[1:], (3, 4)),
    _c("index_step", lambda L, x: x[::2], (3, 4)),
    _c("index_slices", lambda L, x: x[1:, :2], (3, 4)),
    _c("index_full_then_slice", lambda L, x: x[:, 1:3], (3, 4)),
    _c("index_int_slice", lambda L, x: x[0, 1:], (3, 4)),
    _c("index_slice_int", lambda L, x: x[1:, 2], (3, 4)),
    _c("index_int_int", lambda L, x: x[2, 1], (3, 4)),
    _c("index_ellipsis_int", lambda L, x: x[..., 0], (2, 3, 4)),
    _c("index_none", lambda L, x: x[None], (3, 4)),
    _c("index_array_repeated", lambda L, x: x[[0, 2, 0, 0]], (3, 4)),
    _c("index_tensor_repeated", lambda L, x: x[L.tensor([2, 2, 1])], (3, 4)),
    _c("index_0d_tensor", lambda L, x: x[L.tensor(1)], (3, 4)),
    _c("index_two_arrays", lambda L, x: x[[0, 1, 0], [1, 3, 1]], (3, 4)),
    _c("index_mask", lambda L, x: x[L.tensor(MASK)], (3, 4)),
    _c("index_mask_from_compare", lambda L, x: x[x > 0], (3, 4), domain=("away",)),
    # -- softmax ---------------------------------------------------------------------------------------
    *[_c(f"softmax_dim{d}", lambda L, x, d=d: x.softmax(d), (3, 4)) for d in (0, 1, -1)],
    *[_c(f"log_softmax_dim{d}", lambda L, x, d=d: x.log_softmax(d), (3, 4)) for d in (0, 1, -1)],
    _c("functional_softmax", lambda L, x: L.softmax(x, 1), (3, 4)),
    _c("functional_log_softmax", lambda L, x: L.nn.functional.log_softmax(x, dim=0), (3, 4)),
    # -- losses: one fused node each (l1 is Sub, Abs, Mean in PyTorch too) ---------------------------
    *[_c(f"mse_loss_{r}", lambda L, x, y, r=r: L.nn.functional.mse_loss(x, y, reduction=r), (3, 4), (3, 4))
      for r in ("mean", "sum", "none")],
    *[_c(f"l1_loss_{r}", lambda L, x, y, r=r: L.nn.functional.l1_loss(x, y, reduction=r), (3, 4), (3, 4),
         domain=("any", "any")) for r in ("mean", "sum", "none")],
    *[_c(f"bce_with_logits_{r}", lambda L, x, y, r=r: L.nn.functional.binary_cross_entropy_with_logits(
        x, y, reduction=r), (3, 4), (3, 4)) for r in ("mean", "sum", "none")],
    *[_c(f"cross_entropy_{r}", lambda L, x, r=r: L.nn.functional.cross_entropy(
        x, L.tensor([2, 0, 3, 3, 1]), reduction=r), (5, 4)) for r in ("mean", "sum", "none")],
    _c("nll_loss_after_log_softmax", lambda L, x: L.nn.functional.nll_loss(
        x.log_softmax(1), L.tensor([1, 0, 2])), (3, 4)),
    _c("mse_loss_mlp", lambda L, x, w, y: L.nn.functional.mse_loss((x @ w).tanh(), y), (6, 3), (3, 2), (6, 2)),
    # -- compositions: gradients meet (x used twice, a diamond) ---------------------------------------
    _c("x_times_x", lambda L, x: x * x, (2, 3)),
    _c("diamond", lambda L, x: x.exp() * x.tanh() + x, (2, 3)),
    _c("mlp_layer", lambda L, x, w, b: (x @ w.T + b).tanh(), (5, 3), (4, 3), (4,)),
    _c("mse", lambda L, w, b, x: ((w * x + b - 1.5) ** 2).mean(), (), (), (8,)),
]

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case ids"
