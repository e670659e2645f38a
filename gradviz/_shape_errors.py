"""PyTorch's error messages for shapes that do not broadcast or multiply, and matmul's grad_fn choice."""
from __future__ import annotations

import numpy as np


def broadcast_error(sa: tuple, sb: tuple) -> str | None:
    """PyTorch's message when two shapes do not broadcast (it reports the last mismatching dim)."""
    n = max(len(sa), len(sb))
    for i in range(n - 1, -1, -1):
        da = sa[i - n + len(sa)] if i - n + len(sa) >= 0 else 1
        db = sb[i - n + len(sb)] if i - n + len(sb) >= 0 else 1
        if da != db and da != 1 and db != 1:
            return f"The size of tensor a ({da}) must match the size of tensor b ({db}) at non-singleton dimension {i}"
    return None


def matmul_shape_error(a, b) -> str | None:
    """PyTorch's message for shapes matmul cannot multiply; it names the op matmul dispatched to
    (dot, mv, mm on folded batches, bmm), so the sizes it shows are that op's."""
    sa, sb = a.shape, b.shape
    if len(sa) == len(sb) == 3 and sa[0] != sb[0]:            # ATen squeezes a batch of 1 needing grad
        if sa[0] == 1 and a.requires_grad:
            sa = sa[1:]
        elif sb[0] == 1 and b.requires_grad:
            sb = sb[1:]
    ka, kb = sa[-1], sb[0] if len(sb) == 1 else sb[-2]
    mm = "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})"
    mv = "size mismatch, got input ({0}), mat ({0}x{1}), vec ({2})"
    rows_a = int(np.prod(sa[:-1]))
    rows_b = int(np.prod(sb[:-2])) * sb[-1] if len(sb) >= 2 else 0
    strides = a._data.strides
    fold_a = len(sa) >= 3 and len(sb) <= 2 and (b.requires_grad or len(sa) < a.ndim or all(
        strides[i] == strides[i + 1] * sa[i + 1] for i in range(len(sa) - 2)))
    if len(sa) == len(sb) == 1:
        message = (f"inconsistent tensor size, expected tensor [{ka}] and src [{kb}] to have the same number "
                   f"of elements, but got {ka} and {kb} elements respectively")
    elif len(sa) == 2 and len(sb) == 1 or fold_a and len(sb) == 1:
        message = mv.format(rows_a, ka, kb)
    elif len(sa) <= 2 and len(sb) == 2 or fold_a:
        message = mm.format(rows_a, ka, kb, sb[1])
    elif len(sa) == 1 and a.requires_grad:                     # vector @ batch: an mv on b's transpose
        message = mv.format(rows_b, kb, ka)
    elif len(sa) == 2 and a.requires_grad:                     # matrix @ batch: an mm on b's transpose
        message = mm.format(rows_b, kb, ka, sa[0])
    else:
        message = broadcast_error(sa[:-2], sb[:-2] if len(sb) > 1 else ())
        batch = int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2] if len(sb) > 1 else ()))) if not message else 0
        if not message and ka != kb:
            message = (f"Expected size for first two dimensions of batch2 tensor to be: [{batch}, {ka}] but got: "
                       f"[{batch}, {kb}].")
    return message if ka != kb or message and message.startswith("The size") else None


def batched_matmul_kind(a, b) -> str:
    """Which op ends PyTorch's batched matmul, for its grad_fn name (ATen's ``_matmul_impl``).

    A matrix ``a`` that requires grad times a batch ``b`` is computed as one mm on ``b``'s
    transpose; the transposed result is then copied (CloneBackward0), unless it is already
    contiguous (a single row or column: TransposeBackward0).  A 3-D ``a`` with a broadcast batch
    of 1 is squeezed to a matrix first.  Every other case ends in a reshape (UnsafeViewBackward0).
    """
    a_ndim = a.ndim
    if a.ndim == b.ndim == 3 and a.shape[0] == 1 != b.shape[0] and a.requires_grad:
        a_ndim = 2
    if a_ndim == 2 and b.ndim >= 3 and a.requires_grad:
        return "fold_t" if a.shape[-2] > 1 and b.shape[-1] > 1 else "fold_t_vector"
    return "bmm"


def forward_or_shape_error(run_forward, rule, arrays, kwargs: dict, out_dtype):
    """``run_forward(rule, arrays, kwargs, out_dtype)``, with numpy's broadcasting ValueError of an
    elementwise op turned into torch's RuntimeError ("The size of tensor a (3) must match ...")."""
    try:
        return run_forward(rule, arrays, kwargs, out_dtype)
    except ValueError:
        message = rule.elementwise and broadcast_error(arrays[0].shape, arrays[1].shape)
        if message:
            raise RuntimeError(message) from None
        raise
