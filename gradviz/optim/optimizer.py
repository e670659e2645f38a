"""The optimizer base class, shaped like ``torch.optim.Optimizer`` (PyTorch 2.13).

``param_groups`` is a list of dicts filled from ``defaults`` with ``setdefault``; ``state`` maps a
parameter to a dict of numpy arrays (PyTorch's key names) and is created lazily on the first step
where that parameter has a gradient.  Subclasses write a thin ``step()`` around a pure update
function; this class wraps every subclass's ``step`` so that an active ``gradviz.trace`` recorder
receives a ``StepEvent`` (the same place PyTorch hooks its step profiler and step hooks).
"""
from __future__ import annotations

import copy
import functools
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from .. import trace
from .._fastmath import fma_f32
from .._tensor import Tensor, enable_grad


class _RequiredParameter:
    """Marks a hyperparameter that every param group must give (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _traced_step(step: Callable) -> Callable:
    """Wrap a subclass's ``step`` so an active recorder sees each parameter before and after.

    With no recorder the only cost is one check.  The gradient is read *after* the step because a
    closure passed to ``step`` may be what computes it (no algorithm writes into ``.grad``).
    """

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        rec = trace._state.recorder
        if rec is None or self._recording_step:   # nested: a subclass's step calling super().step()
            out = step(self, *args, **kwargs)
            _bump_versions(self)
            return out
        params = [(p, hyper) for group in self.param_groups
                  for hyper in (_hyperparameters(group),) for p in group["params"]]
        state = self.state
        before = [(p._data.copy(), _copy_state(state.get(p))) for p, _ in params]
        self._recording_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._recording_step = False
        updates = [trace.ParamUpdate(rec.node_id(p), data_before, p._data.copy(),
                                     None if p.grad is None else p.grad._data.copy(),
                                     state_before, _copy_state(state.get(p)), hyper)
                   for (p, hyper), (data_before, state_before) in zip(params, before)]
        rec.on_step(self, trace.StepEvent(type(self).__name__, updates))
        _bump_versions(self)
        return out

    wrapper.traced = True
    return wrapper


def _hyperparameters(group: dict[str, Any]) -> dict[str, Any]:
    """A param group's plain hyperparameters (numbers, flags, tuples of numbers), as the step reads them."""
    return {k: (float(v) if isinstance(v, np.generic) else v) for k, v in group.items()
            if k not in ("params", "param_names") and (v is None or isinstance(v, (bool, int, float, str, tuple,
                                                                                   np.generic)))}


def _bump_versions(optimizer) -> None:
    """A step writes every parameter that has a ``.grad`` in place, as torch's ``param.add_`` does:
    bump their version counters, so a graph that saved a parameter before the step refuses to
    backward through it afterwards, with torch's "modified by an inplace operation" error."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p._version[0] += 1


def _copy_state(state: dict[str, Any] | None) -> dict[str, Any]:
    """A snapshot of one parameter's state for the trace.

    State values are numpy arrays, so a copy of each is a deep copy: the same result as
    ``copy.deepcopy`` (which also copies in order "K") without its generic machinery, as this runs
    twice per parameter in every traced step.
    """
    if not state:
        return {}
    return {k: v.copy(order="K") if type(v) is np.ndarray else copy.deepcopy(v) for k, v in state.items()}


def _increment_step(state: dict[str, Any]) -> float:
    """``state["step"] += 1``; returns the new step as a float.

    The step is a 0-d float32 array (PyTorch's float32 step tensor).  Instead of numpy's in-place
    add on a 0-d array (slow next to the rest of a parameter's bookkeeping), the sum is taken in
    Python floats and written back: ``float32 + 1`` is exact in float64, so rounding it to the
    array's dtype gives the same bits as numpy's float32 add.
    """
    step = state["step"]
    if type(step) is np.ndarray and step.ndim == 0 and step.dtype.kind == "f":
        step[()] = float(step) + 1
    else:                                   # e.g. a plain number from a hand-made state dict
        state["step"] += 1
    return float(state["step"])


def _call_closure(closure: Callable | None):
    """PyTorch calls the closure under ``torch.enable_grad()`` so that it may run ``backward()``."""
    if closure is None:
        return None
    with enable_grad():
        return closure()


class FlatBinding:
    """An optimizer's parameters and state held as views of one flat array each (a step engine's
    ``Live`` storage): ``param`` (every parameter side by side, padding zero), ``state[key]`` (that
    key's buffers laid out the same; a 0-d key such as ``step`` one element per parameter), and a
    gradient buffer of the same layout that :meth:`gather` fills each step."""

    def __init__(self, params: list, views: list[np.ndarray], param: np.ndarray,
                 state: dict[str, tuple[np.ndarray, list[np.ndarray]]]):
        self.params = list(params)
        self.param = param
        self.views = views
        self.state = {key: flat for key, (flat, _) in state.items()}
        self._state_views = {key: arrays for key, (_, arrays) in state.items()}
        self.grad = np.zeros_like(param)               # padding stays zero
        base = param.__array_interface__["data"][0]
        offsets = [v.__array_interface__["data"][0] - base for v in views]
        self._packed = all(v.flags.c_contiguous for v in views) and offsets == sorted(offsets) and (
            sum(v.size for v in views) == param.size)
        self._grad_views = [self.grad[o // param.itemsize:o // param.itemsize + v.size].reshape(v.shape)
                            for o, v in zip(offsets, views)]

    def holds(self, optimizer) -> bool:
        """The optimizer's parameters and state are still this binding's views (and the per-parameter
        step counts agree)."""
        if any(p._data is not v for p, v in zip(self.params, self.views)):
            return False
        state = optimizer.state
        keys = optimizer.state_keys(optimizer.param_groups[0])
        for key in keys:
            views, flat = self._state_views.get(key), self.state.get(key)
            if views is None or flat.size != (len(self.params) if key == "step" else self.param.size):
                return False
            if any(state.get(p, {}).get(key) is not v for p, v in zip(self.params, views)):
                return False
        if any(set(state.get(p, ())) != set(keys) for p in self.params):
            return False
        steps = self.state.get("step")
        return steps is None or bool(np.all(steps == steps[0]))

    def gather(self) -> np.ndarray | None:
        """Every parameter's ``.grad`` copied into :attr:`grad`; None if one is None or another dtype."""
        try:
            if self._packed:
                np.concatenate([p.grad._data.ravel() for p in self.params], out=self.grad, casting="no")
            else:
                for out, p in zip(self._grad_views, self.params):
                    np.copyto(out, p.grad._data, casting="no")
        except (AttributeError, TypeError, ValueError):
            return None
        return self.grad


class Optimizer:
    r"""Base class for all optimizers.

    Args:
        params (iterable): an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts
            (parameter groups).  Use an ordered collection: state is matched to parameters by
            position when a state dict is loaded.
        defaults (dict): default values of the hyperparameters, used when a group does not set them.
    """

    _recording_step = False
    _flat: FlatBinding | None = None        # set by a step engine (bind_flat); dropped by any change
    # The update rule as formula templates (gradviz.functions.OpMath's notation), one line a key, for
    # the view (gradviz.view.step_rules shows the lines this step used, with its numbers).  The
    # algorithms extend these two lines that every optimizer here applies first.
    UPDATE_RULE: dict[str, str] = {
        "maximize": "{gnew} ← −{g}",                              # maximize: ascend
        "weight_decay": "{gnew} ← {g} + {lam} · {w}",             # L2 weight decay, added to the gradient
    }

    @classmethod
    def state_keys(cls, hyper: dict[str, Any]) -> list[str]:
        """The keys of the state ``step()`` keeps per parameter, in the order it creates them, for a
        group with the hyperparameters ``hyper`` (PyTorch's defaults where one is missing)."""
        return []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "traced", False):
            cls.step = _traced_step(step)

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + _typename(params))
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (e.g. to unfreeze layers later)."""
        self._flat = None
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                            "the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        param_group["params"] = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")
            param_group["param_names"] = names

        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, "
                                "but one of the params is " + _typename(param))
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len(params) != len(set(params)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error; "
                          "see github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        param_set = set()
        for group in self.param_groups:
            param_set.update(group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if not param_set.isdisjoint(params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters.

        .. note::
            ``set_to_none=True`` (the default) and ``False`` are *not* equivalent: a parameter whose
            ``.grad`` is None is skipped by ``step()`` (no momentum decay, no step count), while a
            zero gradient is a real step.  ``False`` zeroes the existing ``.grad`` array in place.
        """
        rec = trace._state.recorder
        if rec is not None:
            rec.on_zero_grad([p for group in self.param_groups for p in group["params"]], set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p._grad = None           # not ``p.grad = None``: that would record a second clear
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()     # PyTorch detach_()es in place (same storage)
                    else:
                        p.grad.requires_grad_(False)
                    p.grad._data[...] = 0

    def step(self, closure: Callable | None = None):
        """Perform a single optimization step (``closure`` re-evaluates the model, returns the loss)."""
        raise NotImplementedError

    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        # A parameter whose .grad is None is skipped entirely: no state, no step count.
        return [p for p in group["params"] if p.grad is not None]

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state with each parameter replaced by its index over all groups.

        ``{"state": {index: {"step": ..., "exp_avg": ...}}, "param_groups": [{"lr": ..., "params": [0, 1]}]}``

        .. note::
            As in PyTorch, the state arrays are the optimizer's own (not copies): a later ``step()``
            changes a state dict taken earlier.  Deep-copy it to keep a snapshot.
        """
        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update({id(p): i for i, p in enumerate(group["params"], start_index)
                                   if id(p) not in param_mappings})
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(param_mappings[id(k)] if isinstance(k, Tensor) else k): v
                        for k, v in self.state.items()}
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict from :meth:`state_dict`, matching parameters by position.

        State arrays are copied (and cast to the parameter's dtype, except ``step``).
        """
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group "
                             "that doesn't match the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param, value, key=None):
            if isinstance(value, np.ndarray):
                if key == "step" or not np.issubdtype(param.dtype, np.floating):
                    return value.copy()
                return value.astype(param.dtype)           # astype always copies
            if isinstance(value, dict):
                return {k: cast(param, v, key=k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v) for v in value)
            return value

        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = cast(id_map[k], v)
            else:
                state[k] = v

        def update_group(group: dict[str, Any], new_group: dict[str, Any]) -> dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        self._flat = None                      # new state arrays: no longer views of the bound flats

    # -- one update over every parameter at once ----------------------------------------------
    def bind_flat(self, flat: FlatBinding) -> bool:
        """Let ``step()`` update every parameter with one call per op on ``flat``'s arrays (a step
        engine keeps its parameters and state so, history_rows.Live), as torch's ``foreach`` kernels
        do, instead of one call per op per parameter. Each element goes through the same operations
        in the same order, so the numbers are the same bits; only the per-call cost goes (6 parameters
        of a 337-element MLP: Adam's step 72 → 15 µs). Returns False (nothing bound) where the
        algorithm has no flat step or the optimizer is not in the state the binding describes."""
        self._flat = None
        if not self.HAS_FLAT_STEP or len(self.param_groups) != 1:
            return False
        group = self.param_groups[0]
        if group.get("capturable") or group.get("differentiable"):
            return False
        if list(map(id, group["params"])) != list(map(id, flat.params)) or not flat.holds(self):
            return False
        self._flat = flat
        return True

    HAS_FLAT_STEP = False                  # the algorithm's step() takes the flat route when bound

    def _flat_grad(self) -> np.ndarray | None:
        """The bound parameters' gradients gathered into one flat array, or None (then drop the
        binding): a gradient is None (that parameter skips the step and its counts part from the
        others'), or has another dtype."""
        flat = self._flat
        grad = flat.gather()
        if grad is None:
            self._flat = None
        return grad


# -- PyTorch's CPU kernels, rounding as they round ------------------------------------------------
# torch computes a float32 op in float32 ("opmath"; float16/bfloat16 in float32 too), with a Python
# scalar first rounded to float32, and its vectorised kernels use fused multiply-adds: ``add_(b,
# alpha)``, ``lerp_`` and ``addcmul_``'s final multiply-add round *once*.  An FMA on float32 inputs
# is emulated exactly enough by computing in float64 (the product of two float32 numbers is exact
# there) and rounding once.  float64 arrays take numpy's own two-rounding path: torch's float64 FMA
# differs from it by at most an ulp (1e-16 relative), and emulating it would cost more than it shows.

def _exact(dtype: np.dtype) -> bool:
    """True where plain numpy arithmetic is what we use (float64, and non-float dtypes)."""
    return dtype.char == "d" or dtype.kind != "f"


def _scalar(value: float, dtype: np.dtype) -> float:
    """A Python scalar as torch's CPU kernel sees it: rounded to float32 unless the op is float64."""
    return float(value) if _exact(dtype) else float(np.float32(value))


def _round_into(out: np.ndarray, value64: np.ndarray) -> np.ndarray:
    """Write a float64 result into ``out`` with one rounding (two for half types: via float32 opmath)."""
    out[...] = value64 if out.dtype.char == "f" else value64.astype(np.float32)
    return out


def _fma(a, b: np.ndarray, c: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = a * b + c`` rounded once (``a`` a scalar already in opmath, or an array)."""
    if out.size == 1:       # Python floats are float64: the same rounding, without numpy's per-call cost
        value = (a if isinstance(a, float) else a.item()) * b.item() + c.item()
        out[...] = value if out.dtype.char == "f" else np.float32(value)
        return out
    if fma_f32(a, b, c, out):    # large float32: in blocks, without float64 temporaries of the whole array
        return out
    # astype, then same-dtype in-place ops: numpy's fastest route (a dtype= or mixed-dtype ufunc casts slowly)
    value = b.astype(np.float64)
    value *= a if isinstance(a, float) else a.astype(np.float64)
    value += c.astype(np.float64)
    return _round_into(out, value)


def _add(a: np.ndarray, b: np.ndarray, alpha: float, out: np.ndarray | None = None) -> np.ndarray:
    r"""``torch.add(a, b, alpha=alpha)``: :math:`a + \alpha b`, one rounding (an FMA).  ``out=a`` is ``add_``."""
    if _exact(a.dtype):
        if out is None:
            return a + float(alpha) * b
        out += float(alpha) * b
        return out
    return _fma(_scalar(alpha, a.dtype), b, a, np.empty_like(a) if out is None else out)


def _addcmul_(x: np.ndarray, t1: np.ndarray, t2: np.ndarray, value: float,
              out: np.ndarray | None = None) -> np.ndarray:
    r"""``x.addcmul_(t1, t2, value=value)``: :math:`x + (v\,t_1)\,t_2`; ``value * t1`` is rounded,
    then the multiply-add rounds once.  ``out`` (default ``x``) receives the result."""
    out = x if out is None else out
    scaled = float(value) * t1 if value != 1 else t1        # numpy keeps the array's dtype
    if _exact(x.dtype):
        np.add(x, scaled * t2, out=out)
        return out
    return _fma(scaled, t2, x, out)


def _addcdiv_(x: np.ndarray, t1: np.ndarray, t2: np.ndarray, value: float) -> np.ndarray:
    r"""``x.addcdiv_(t1, t2, value=value)``: :math:`x + (v\,t_1) / t_2`, each op rounded (no FMA)."""
    x += (float(value) * t1 if value != 1 else t1) / t2
    return x


def _sqrt(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x.sqrt()``, correctly rounded.

    .. note::
        PyTorch's CPU ``sqrt`` is MKL's vector ``vsSqrt``/``vdSqrt`` (ATen's ``IMPLEMENT_VML_MKL``),
        which is not always correctly rounded: on an AVX-512 machine about 17% of float32 and 1%
        of float64 results are 1 ulp away from numpy's.  That last ulp depends on the CPU and MKL
        build, so Adam, RMSprop and Adagrad match PyTorch to the ulp, not to the bit, in float32.
        (The tests swap this function for torch's sqrt to show it is the only difference.)
    """
    return np.sqrt(x, out=out)


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start.lerp_(end, weight)`` in place, with PyTorch's two formulas.

    .. note::
        PyTorch picks the formula by the weight so that both ends are exact:
        ``start + w (end - start)`` for ``|w| < 0.5``, else ``end - (end - start)(1 - w)``;
        the difference is rounded, then each formula is one multiply-add.
    """
    diff = end - start
    if _exact(start.dtype):
        if abs(weight) < 0.5:
            start += float(weight) * diff
        else:
            np.copyto(start, end - diff * (1 - float(weight)))
        return
    weight = _scalar(weight, start.dtype)
    if abs(weight) < 0.5:
        _fma(weight, diff, start, start)
    else:
        _fma(-float(np.float32(1) - np.float32(weight)), diff, end, start)


_CAPTURABLE_DEVICES = "['cuda', 'xpu', 'hpu', 'privateuseone', 'xla']"


def _check_kernel_flags(foreach, fused, differentiable) -> None:
    """PyTorch's constructor checks of ``fused`` (which every algorithm here computes as its
    for-loop path does; see docs/numerics.md)."""
    if fused:
        if differentiable:
            raise RuntimeError("`fused` does not support `differentiable`")
        if foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _check_step_flags(group: dict[str, Any], params: list[Tensor]) -> None:
    """What PyTorch's CPU step raises for ``capturable`` and ``differentiable``.

    ``capturable=True`` (CUDA graphs) is refused on CPU unless the group is ``fused``;
    ``differentiable=True`` runs the step with grad enabled, so the in-place update of a leaf that
    requires grad raises, as any in-place op on such a leaf does.
    """
    if group.get("capturable") and not group.get("fused") and params:
        raise AssertionError("If capturable=True, params and state_steps must be on supported "
                             f"devices: {_CAPTURABLE_DEVICES}.")
    if group.get("differentiable") and any(p.is_leaf and p.requires_grad for p in params):
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
