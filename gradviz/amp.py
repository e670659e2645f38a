r"""Mixed precision: ``autocast`` runs matmuls in float16 or bfloat16, ``GradScaler`` keeps float16's gradients alive.

This is ``torch.amp`` on the CPU (PyTorch 2.13), computed in numpy float16, so gradient underflow
and overflow are real, not simulated::

    scaler = gradviz.amp.GradScaler()                     # init_scale=2**16, float32 scale
    for x, y in data:
        optimizer.zero_grad()
        with gradviz.amp.autocast(dtype=gradviz.float16): # autocast("cpu") alone means bfloat16, as in torch
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()                     # loss * scale
        scaler.step(optimizer)                            # unscale_, then step unless inf/nan
        scaler.update()                                   # back off on inf/nan, grow after a run

**autocast, the one mechanism.**  While ``autocast()`` is active, :func:`gradviz._tensor.apply_op`
hands each op's inputs to :func:`_autocast_inputs` first.  Ops in :data:`FLOAT16_OPS` have
their float32 inputs cast to float16 by the differentiable ``.to()`` op (``ToCopyBackward0``),
so the op runs in float16, its backward runs in float16 (a product below float16's smallest
subnormal, :math:`2^{-24} \approx 6\times10^{-8}`, becomes exactly 0), and the gradient reaches
the float32 master parameter through ``ToCopyBackward0``.  This is PyTorch's CPU autocast, which
we measured op by op under ``torch.autocast("cpu", dtype=torch.float16)``:

- cast to float16: ``matmul`` (``@``, ``mm``, ``mv``, ``dot``, ``bmm``) and ``addmm`` (``nn.Linear``
  on a batch); PyTorch's list also has ``conv*`` and ``baddbmm``, which gradviz does not have;
- everything else is *not* cast: elementwise ops (``add``, ``mul``, ``tanh``, ``exp``, ...),
  reductions (``sum``, ``mean``) and ``softmax``/``log_softmax`` run in the dtype of their inputs
  (float16 in, float16 out; float32 in, float32 out);
- PyTorch's losses (``mse_loss``, ``cross_entropy``, ``nll_loss``, ``l1_loss``, ...) are in its
  float32 list: they cast float16 inputs up.  gradviz builds losses from primitives, so a loss
  function marks itself with :func:`autocast_float32`, which does exactly that.

``dtype=bfloat16`` (the default, as ``torch.autocast("cpu")``'s) casts the same ops: PyTorch's CPU
autocast has one lower-precision list for both dtypes.  bfloat16 keeps float32's exponent range, so
its gradients do not underflow and need no ``GradScaler``; it has 8 significant bits to float16's 11.
Either way each op computes in float32 and rounds once (``gradviz._dtypes``).

float64 tensors are never cast (PyTorch's rule).  Within one ``autocast`` region the float16
copy of a leaf parameter is cached, so a weight used twice has one ``ToCopyBackward0`` node, as in
PyTorch; the cache is dropped when the outermost region exits.

**GradScaler** follows ``torch.amp.GradScaler`` line by line: the scale is a float32 scalar
created on the first ``scale()``; ``unscale_`` multiplies the gradients in place by
``float32(1 / float64(scale))`` and records whether any was inf/nan; ``step`` skips
``optimizer.step()`` when one was; ``update`` applies :func:`amp_update_scale`.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import threading
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import numpy as np

from . import trace
from ._dtypes import bfloat16, is_low_precision
from ._tensor import Tensor, autocast_hook, float16, float32, from_array, is_grad_enabled, set_autocast_hook

__all__ = ["GradScaler", "OptState", "autocast", "autocast_float32", "amp_update_scale",
           "is_autocast_enabled", "FLOAT16_OPS"]

# -- autocast ---------------------------------------------------------------------------------------
FLOAT16_OPS = frozenset({"matmul", "addmm"})     # gradviz op names (``Rule.short``) autocast runs in float16/bfloat16


class _State(threading.local):
    """This thread's autocast state (thread-local, as PyTorch's: a new thread starts outside any
    autocast region; the hook itself is ``gradviz._tensor``'s, also per thread)."""
    nesting = 0                  # autocast regions entered and not yet left
    cache_enabled = True

    def __init__(self):
        self.cast_cache: dict[tuple, tuple[Tensor, Tensor]] = {}   # (id(leaf), dtype) -> (leaf, its low-precision copy)


_state = _State()


def is_autocast_enabled() -> bool:
    return autocast_hook() is not None


def _cast_to(t: Tensor, dtype: np.dtype) -> Tensor:
    if t.dtype != float32 and not is_low_precision(t.dtype):    # float64 and ints are never cast
        return t
    if t.dtype == dtype:
        return t
    state = _state
    cacheable = state.cache_enabled and t.requires_grad and t.is_leaf and is_grad_enabled()
    if cacheable:
        hit = state.cast_cache.get((id(t), dtype))
        if hit is not None and hit[0] is t:
            return hit[1]
    out = t.to(dtype)
    if cacheable:
        state.cast_cache[(id(t), dtype)] = (t, out)    # keeping t alive keeps id(t) unique
    return out


def _autocast_inputs(dtype: np.dtype, short: str, inputs: tuple) -> tuple:
    """The autocast hook (``gradviz._tensor.set_autocast_hook``) while autocast is active."""
    if short not in FLOAT16_OPS:
        return inputs
    return tuple(_cast_to(t, dtype) for t in inputs)


class autocast(contextlib.ContextDecorator):
    """Context manager / decorator: ops in :data:`FLOAT16_OPS` run in ``dtype`` inside it.

    Same arguments as ``torch.autocast``.  Only ``device_type="cpu"`` exists; ``dtype`` is
    bfloat16 (the default, as PyTorch's CPU autocast) or float16; another dtype warns and disables
    autocast, as PyTorch does.  ``enabled=False`` turns autocast off inside an enclosing region.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None):
        if device_type != "cpu":
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device = device_type
        self.fast_dtype = np.dtype(dtype) if dtype is not None else bfloat16
        self._cache_enabled = _state.cache_enabled if cache_enabled is None else cache_enabled
        if enabled and not is_low_precision(self.fast_dtype):
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                          "CPU Autocast only supports dtype of gradviz.bfloat16, gradviz.float16 currently.",
                          stacklevel=2)
            enabled = False
        self._enabled = enabled

    def _recreate_cm(self):
        # as a decorator, a fresh copy per call: ``_prev`` must not be shared by recursive calls or
        # by threads calling the same decorated function
        return copy.copy(self)

    def __enter__(self):
        state = _state
        self._prev = (autocast_hook(), state.cache_enabled)
        set_autocast_hook(functools.partial(_autocast_inputs, self.fast_dtype) if self._enabled else None)
        state.cache_enabled = self._cache_enabled
        state.nesting += 1
        return self

    def __exit__(self, *exc):
        state = _state
        state.nesting -= 1
        if state.nesting == 0:
            state.cast_cache.clear()
        hook, state.cache_enabled = self._prev
        set_autocast_hook(hook)
        return False


def _cast_float32(value):
    if isinstance(value, Tensor):
        return value.to(float32) if is_low_precision(value.dtype) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_float32(v) for v in value)
    return value


def autocast_float32(fn: Callable) -> Callable:
    """Decorator for ops in PyTorch's autocast float32 list (the losses).

    Inside an autocast region the decorated function gets its float16 tensor arguments cast to
    float32 (differentiably) and runs with autocast disabled; outside one it is a plain call.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if autocast_hook() is None:
            return fn(*args, **kwargs)
        with autocast(enabled=False):
            return fn(*_cast_float32(args), **{k: _cast_float32(v) for k, v in kwargs.items()})

    return wrapper


# -- GradScaler -----------------------------------------------------------------------------------
def amp_update_scale(scale: float, growth_tracker: int, found_inf: bool, *, growth_factor: float,
                     backoff_factor: float, growth_interval: int) -> tuple[np.float32, int]:
    r"""The new ``(scale, growth_tracker)``: PyTorch's ``_amp_update_scale_`` kernel.

    .. math::
        (s, n) \leftarrow \begin{cases}
            (\beta s,\ 0) & \text{inf/nan found} \\
            (\gamma s,\ 0) & n + 1 = \text{growth\_interval} \\
            (s,\ n + 1) & \text{otherwise}
        \end{cases}

    .. note::
        The products are taken in float64 and stored as float32, and growth that would make the
        scale inf is dropped (the tracker still resets), exactly as the C++ kernel does.
    """
    scale = np.float32(scale)
    if found_inf:
        return np.float32(float(scale) * backoff_factor), 0
    successful = int(growth_tracker) + 1
    if successful == growth_interval:
        with np.errstate(over="ignore"):
            new_scale = np.float32(float(scale) * growth_factor)
        return (new_scale if np.isfinite(new_scale) else scale), 0
    return scale, successful


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict[str, Any]:
    # found_inf stays None until a gradient was checked (an optimizer with no grads has no check)
    return {"stage": OptState.READY, "found_inf": None}


class GradScaler:
    """Scales the loss so float16 gradients neither underflow nor go unnoticed when they overflow.

    * ``scale(loss)`` multiplies by the current scale (a graph op: backward sees it);
    * ``step(optimizer)`` unscales the grads, then runs ``optimizer.step()`` unless one was inf/nan;
    * ``update()`` multiplies the scale by ``backoff_factor`` after an inf/nan, and by
      ``growth_factor`` after ``growth_interval`` clean steps in a row.

    With ``enabled=False`` every method is a pass-through, as in PyTorch.  Only ``device="cpu"``
    exists; another device warns and disables the scaler (what PyTorch does for "cuda" without CUDA).

    .. note::
        ``scale(out)`` is ``out * scale`` with a float32 0-d scale, so it follows gradviz's dtype
        promotion: a float32 or 0-d loss matches PyTorch; a float16 tensor *with dimensions* comes
        back float32 here, while PyTorch keeps float16 (and rounds to inf above 65504).
    """

    # The rule as formula templates (gradviz.functions.OpMath's notation), for the view: ĝ is a
    # gradient of the scaled loss, s the scale.
    UPDATE_RULE: dict[str, str] = {
        "unscale": "{g} = \\frac{{gs}}{{s}}",                # unscale_(): every grad times float32(1/s)
        "backoff": "{s} ← {s} · {bf}",                       # update() after an inf/nan
        "growth": "{s} ← {s} · {gf}",                        # after growth_interval clean steps in a row
        "keep": "{s} ← {s}",
        "new_scale": "{s} ← new_scale",
    }

    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        self._enabled = enabled
        if device != "cpu" and enabled:
            warnings.warn(f"gradviz.amp.GradScaler is enabled, but device {device!r} is not available "
                          "(only 'cpu').  Disabling.", stacklevel=2)
            self._enabled = False
        self._last_step_skipped = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale: np.ndarray | None = None            # float32, created by the first scale()
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker: np.ndarray | None = None   # int32, created with the scale
            self._per_optimizer_states: defaultdict[int, dict[str, Any]] = defaultdict(
                _refresh_per_optimizer_state)

    def _check_scale_growth_tracker(self, funcname: str) -> None:
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + fix)
        if self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _growth_tracker is None.  " + fix)

    def _lazy_init_scale_growth_tracker(self) -> None:
        self._scale = np.full((), self._init_scale, dtype=np.float32)
        self._growth_tracker = np.full((), self._init_growth_tracker, dtype=np.int32)

    # -- the four calls of a training step ---------------------------------------------------------
    def scale(self, outputs: Tensor | Iterable[Tensor]):
        """``outputs * scale`` for a tensor, or for each tensor of a (nested) list/tuple/iterable."""
        if not self._enabled:
            return outputs
        rec = trace.current()
        if rec is not None:
            rec.on_scale(self, outputs)

        def apply_scale(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker()
                scale = from_array(self._scale.copy())   # a copy: update() must not rewrite the graph
                scale.name = "scale"
                return val * scale
            if isinstance(val, Iterable):
                scaled = map(apply_scale, val)
                return type(val)(scaled) if isinstance(val, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    def _unscale_grads_(self, optimizer, inv_scale: np.float32, allow_fp16: bool) -> np.float32 | None:
        """Multiply every grad by ``inv_scale`` in place; 1.0 if any was inf/nan, None if no grads."""
        found_inf = None
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad._data
                if not allow_fp16 and grad.dtype == float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                if found_inf is None:
                    found_inf = np.float32(0.0)
                if not np.isfinite(grad).all():
                    found_inf = np.float32(1.0)
                if inv_scale != 1:
                    # float32 (float64 for float64 grads) products, like PyTorch's opmath
                    np.multiply(grad, inv_scale, out=grad, casting="unsafe")
        return found_inf

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place (e.g. before gradient clipping).

        Call it at most once per optimizer between ``update()`` calls; ``step()`` calls it if you
        did not.  The division is a multiplication by ``float32(1 / float64(scale))``.
        """
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        elif optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = np.float32(1.0 / np.float64(self._scale))
        optimizer_state["found_inf"] = self._unscale_grads_(optimizer, inv_scale, False)
        optimizer_state["stage"] = OptState.UNSCALED
        rec = trace.current()
        if rec is not None:     # the step's event carries it (``StepEvent.unscale``), for the view's formula
            optimizer_state["unscale"] = {"scale": float(self._scale), "inv_scale": float(inv_scale),
                                          "found_inf": bool(optimizer_state["found_inf"]),
                                          "event": len(rec.events)}

    def step(self, optimizer, *args, **kwargs):
        """``unscale_(optimizer)`` if not done yet, then ``optimizer.step(*args, **kwargs)`` unless a
        gradient was inf/nan.  Returns what ``optimizer.step`` returned, or None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        optimizer_state = self._per_optimizer_states[id(optimizer)]
        if optimizer_state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if optimizer_state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if optimizer_state["found_inf"] is None:
            raise AssertionError("No inf checks were recorded for this optimizer.")

        retval = None
        self._last_step_skipped = bool(optimizer_state["found_inf"])
        rec = trace.current()
        unscale = optimizer_state.get("unscale") if rec is not None else None
        if not self._last_step_skipped:
            seen = len(rec.events) if rec is not None else 0
            retval = optimizer.step(*args, **kwargs)
            if rec is not None:          # what the step's grads were unscaled by, for the view's formula
                for event in rec.events[seen:]:
                    if isinstance(event, trace.StepEvent) and event.unscale is None and unscale:
                        event.unscale = unscale
        elif rec is not None:
            rec.on_step(optimizer, trace.StepEvent(type(optimizer).__name__, [], skipped=True, unscale=unscale))
        optimizer_state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back off or grow the scale (see :func:`amp_update_scale`), or set it to ``new_scale``."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("update")
        scale_before, tracker_before = float(self._scale), int(self._growth_tracker)
        found_infs = [state["found_inf"] for state in self._per_optimizer_states.values()
                      if state["found_inf"] is not None]
        if new_scale is not None:
            if isinstance(new_scale, float):
                self._scale.fill(new_scale)
            else:
                reason = ("new_scale should be a float or a 1-element gradviz.Tensor "
                          "with requires_grad=False.")
                if not isinstance(new_scale, Tensor) or new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError(reason)
                self._scale.fill(new_scale.item())
        else:
            if len(found_infs) == 0:
                raise AssertionError("No inf checks were recorded prior to update.")
            scale, tracker = amp_update_scale(
                self._scale, self._growth_tracker, bool(np.sum(found_infs, dtype=np.float32)),
                growth_factor=self._growth_factor, backoff_factor=self._backoff_factor,
                growth_interval=self._growth_interval)
            self._scale.fill(scale)
            self._growth_tracker.fill(tracker)
        rec = trace.current()
        if rec is not None:
            rec.add(trace.ScalerEvent(scale_before, float(self._scale), any(bool(f) for f in found_infs),
                                      self._growth_factor, self._backoff_factor, self._growth_interval,
                                      tracker_before, int(self._growth_tracker), new_scale is not None))
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def last_step_skipped(self) -> bool:
        """True if the most recent ``step()`` skipped ``optimizer.step()`` (a gradviz addition:
        a training loop records skipped steps with it; PyTorch users compare scales instead)."""
        return self._last_step_skipped

    # -- getters, setters, state ----------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (``init_scale`` before the first ``scale()``; 1.0 if disabled)."""
        if self._enabled:
            return float(self._init_scale) if self._scale is None else float(self._scale)
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker)
        return 0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """``{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}``
        (PyTorch's keys), or ``{}`` if disabled.  Take it after ``update()``."""
        if self._enabled:
            return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                    "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                    "_growth_tracker": self._get_growth_tracker()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill(state_dict["_growth_tracker"])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise AssertionError("A GradScaler instance may only be pickled at the beginning "
                                     "of an iteration, or at the end after scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
