"""A ``torch`` over GradViz's core, so that an ordinary PyTorch script runs on it unchanged.

    with installed() as shim:          # inside: `import torch`, `from torch import nn`,
        exec(code, namespace)          # `import torch.nn.functional as F` ... resolve to gradviz
    shim.notes                         # ["this script asked for cuda: GradViz runs it on its CPU core"]

Each ``torch.*`` module is a module object whose attributes are looked up in the matching gradviz
module when first read (so a name the core gains later is found without a change here), with a
few entries of its own: devices, dtype names, the cuda/mps/backends answers of a CPU-only machine,
autocast and GradScaler for a device type, and thin subclasses of the loss modules and optimizers
that tell the script recorder when a loss is computed or an optimizer is made. A name the core
lacks is an ``AttributeError`` in the words the app shows: ``torch.nn.Conv2d is not supported by
GradViz's core (supported: ...)``.

Devices: every device is the CPU core. ``torch.device("cuda")``, ``.to("cuda")``, ``.cuda()``,
``device="cuda"`` on a factory, ``autocast("cuda")``, ``GradScaler("cuda")`` work and leave one note;
``torch.cuda.is_available()`` and ``torch.backends.mps.is_available()`` are False. Mixed precision
is what the script's author meant on a GPU: ``autocast("cuda")`` and ``torch.cuda.amp.autocast()``
run float16 autocast (``autocast("cpu")`` stays bfloat16, as in torch) and the GradScaler scales.

``installed()`` is the one place ``sys.modules`` changes: any ``torch`` modules already imported
(real PyTorch, say) are set aside for the block and put back after it; ``Tensor``'s and
``Module``'s device methods are wrapped for the block only.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
from collections.abc import Callable

import numpy as np

from .. import _ops, _tensor
from .. import amp as _amp
from .. import trace as _trace
from .._dtypes import TorchDType
from ..nn import modules as _modules
from ..optim.optimizer import Optimizer as _Optimizer

__all__ = ["installed", "Shim", "UnsupportedAPI", "device", "unsupported_message", "note", "TORCH_VERSION"]

TORCH_VERSION = "2.13.0+gradviz"          # the torch the core follows, marked as not being it


class UnsupportedAPI(AttributeError):
    """A ``torch`` name GradViz's core does not have (an AttributeError, so ``hasattr`` still works)."""


# -- notes ---------------------------------------------------------------------------------------
_NOTES: list[str] | None = None           # the active installed() block's notes


def note(text: str) -> None:
    """Record one note for the script's run (each text once)."""
    if _NOTES is not None and text not in _NOTES:
        _NOTES.append(text)


def _asked_for(device_type: str) -> None:
    if device_type != "cpu":
        note(f"this script asked for {device_type}: GradViz runs it on its CPU core")


# -- devices -------------------------------------------------------------------------------------
_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                 "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class device(_ops.device):  # noqa: N801 (torch's name)
    """``torch.device`` in a script: the core's device (printing, equality), checked as torch checks
    device strings, and noted once when it is not the CPU (every device is the CPU core underneath)."""
    __slots__ = ()

    def __init__(self, type, index: int | None = None):  # noqa: A002 (torch's argument name)
        if isinstance(type, _ops.device):
            type, index = type.type, type.index
        elif isinstance(type, int) and not isinstance(type, bool):
            type, index = "cuda", type
        else:
            text = str(type)
            kind, _, number = text.partition(":")
            if kind not in _DEVICE_TYPES or (number and not number.isdigit()):
                raise RuntimeError(f"Expected one of {', '.join(_DEVICE_TYPES)} device type at start of "
                                   f"device string: {text}")
            type, index = kind, int(number) if number else index
        self.type, self.index = type, index
        _asked_for(type)


_CPU = None


def _cpu() -> device:
    global _CPU
    if _CPU is None:
        _CPU = device("cpu")
    return _CPU


def _device_type(d) -> str:
    if isinstance(d, device):
        return d.type
    if isinstance(d, int) and not isinstance(d, bool):
        return "cuda"
    return str(d).partition(":")[0]


def _split_to(args: tuple, kwargs: dict):
    """``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, keywords: (device, dtype, rest)."""
    rest = dict(kwargs)
    dev, dtype = rest.pop("device", None), rest.pop("dtype", None)
    for key in ("non_blocking", "memory_format"):
        rest.pop(key, None)
    for a in args:
        if isinstance(a, (str, device)) or isinstance(a, int) and not isinstance(a, bool):
            dev = a
        elif isinstance(a, _tensor.Tensor):
            dtype = a.dtype
        elif a is not None:
            dtype = a
    return dev, dtype, rest


def _device_methods(orig: dict) -> dict:
    """Tensor and Module methods that accept devices (wrapping the core's ``to`` for dtypes)."""
    tensor_to, module_to = orig["Tensor.to"], orig["Module.to"]

    def t_to(self, *args, **kwargs):
        dev, dtype, rest = _split_to(args, kwargs)
        if dev is not None:
            _asked_for(_device_type(dev))
        if dtype is None:
            return tensor_to(self, self.dtype, **rest) if rest.get("copy") else self
        return tensor_to(self, dtype, **rest)

    def m_to(self, *args, **kwargs):
        dev, dtype, _ = _split_to(args, kwargs)
        if dev is not None:
            _asked_for(_device_type(dev))
        return self if dtype is None else module_to(self, dtype)

    def to_cuda(self, device=None, non_blocking: bool = False):
        _asked_for("cuda")
        return self

    def to_cpu(self, *args, **kwargs):
        return self

    return {"Tensor.to": t_to, "Tensor.cuda": to_cuda, "Tensor.cpu": to_cpu,
            "Tensor.device": property(lambda self: _cpu()), "Tensor.is_cuda": property(lambda self: False),
            "Module.to": m_to, "Module.cuda": to_cuda, "Module.cpu": to_cpu}


@contextlib.contextmanager
def _devices_patched():
    classes = {"Tensor": _tensor.Tensor, "Module": _modules.Module}
    names = ["Tensor.to", "Tensor.cuda", "Tensor.cpu", "Tensor.device", "Tensor.is_cuda",
             "Module.to", "Module.cuda", "Module.cpu"]
    saved = {n: classes[n.split(".")[0]].__dict__.get(n.split(".")[1], _MISSING) for n in names}
    replacements = _device_methods({n: getattr(classes[n.split(".")[0]], n.split(".")[1], None) for n in names})
    for n, value in replacements.items():
        setattr(classes[n.split(".")[0]], n.split(".")[1], value)
    saved["Tensor.dtype"] = _tensor.Tensor.__dict__["dtype"]
    _tensor.Tensor.dtype = property(lambda self: TORCH_DTYPES.get(self._data.dtype) or torch_dtype(self._data.dtype))
    try:
        yield
    finally:
        for n, value in saved.items():
            cls, attr = classes[n.split(".")[0]], n.split(".")[1]
            if value is _MISSING:
                delattr(cls, attr)
            else:
                setattr(cls, attr, value)


# -- adapters: factories with device=, losses and optimizers that tell the recorder -----------
_MISSING = object()
_FACTORIES = {"tensor", "as_tensor", "zeros", "ones", "full", "empty", "eye", "arange", "linspace", "logspace",
              "randn", "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
              "rand_like", "randn_like", "randint_like", "from_numpy"}
_FUNCTIONAL_LOSSES = {"mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
                      "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "kl_div"}
_ADAPTED: dict = {}                          # original -> adapted (the same class on every access)


def _factory(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def factory(*args, device=None, pin_memory: bool = False, layout=None, **kwargs):
        if device is not None:
            _asked_for(_device_type(device))
        return fn(*args, **kwargs)
    return factory


def _loss_scope(name: str):
    """The recorder's scope for a loss computation, or None (no script recorder, or inside a module)."""
    hook = getattr(_trace._state.recorder, "loss_scope", None)
    if hook is None or _trace._state.module_stack:
        return None
    return hook(name)


def _loss_function(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def loss(*args, **kwargs):
        scope = _loss_scope(fn.__name__)
        if scope is None:
            return fn(*args, **kwargs)
        with scope:
            return fn(*args, **kwargs)
    return loss


def _loss_class(cls: type) -> type:
    def __call__(self, *args, **kwargs):
        scope = _loss_scope(type(self).__name__)
        if scope is None:
            return cls.__call__(self, *args, **kwargs)
        with scope:
            return cls.__call__(self, *args, **kwargs)
    return type(cls.__name__, (cls,), {"__call__": __call__, "__doc__": cls.__doc__, "__module__": "torch.nn"})


def _optimizer_class(cls: type) -> type:
    def __init__(self, *args, **kwargs):
        cls.__init__(self, *args, **kwargs)
        hook = getattr(_trace._state.recorder, "on_optimizer", None)
        if hook is not None:
            hook(self)
    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__, "__module__": "torch.optim"})


_LOADER_ONLY = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "worker_init_fn",
                "timeout", "pin_memory_device", "multiprocessing_context", "in_order")


def _loader_class(cls: type) -> type:
    def __init__(self, *args, **kwargs):
        for key in _LOADER_ONLY:      # worker processes and pinned memory mean nothing on the core
            kwargs.pop(key, None)
        cls.__init__(self, *args, **kwargs)
    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__,
                                       "__module__": "torch.utils.data"})


def _adapt(namespace: str, name: str, value):
    key = (namespace, name, id(value))
    hit = _ADAPTED.get(key)
    if hit is not None and hit[0] is value:
        return hit[1]
    out = value
    if isinstance(value, type):
        if issubclass(value, _modules._Loss):
            out = _loss_class(value)
        elif issubclass(value, _Optimizer) and value is not _Optimizer:
            out = _optimizer_class(value)
        elif name == "DataLoader":
            out = _loader_class(value)
    elif callable(value):
        if namespace == "torch" and name in _FACTORIES:
            out = _factory(value)
        elif namespace == "torch.nn.functional" and name in _FUNCTIONAL_LOSSES:
            out = _loss_function(value)
    _ADAPTED[key] = (value, out)
    return out


# -- mixed precision for a device type ------------------------------------------------------------
def _autocast_dtype(device_type: str, dtype):
    _asked_for(device_type)
    if dtype is not None:
        return dtype
    return _amp.bfloat16 if device_type == "cpu" else _tensor.float16


class autocast(_amp.autocast):  # noqa: N801 (torch's name)
    """``torch.autocast(device_type, dtype=None, ...)``: "cuda" means float16 on the core, "cpu" bfloat16."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        device_type = _device_type(device_type)
        super().__init__("cpu", _autocast_dtype(device_type, dtype), enabled, cache_enabled)


class _cuda_autocast(_amp.autocast):  # noqa: N801
    """``torch.cuda.amp.autocast(enabled=True, dtype=torch.float16, cache_enabled=True)``."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        super().__init__("cpu", _autocast_dtype("cuda", dtype), enabled, cache_enabled)


class _cpu_autocast(_amp.autocast):  # noqa: N801
    """``torch.cpu.amp.autocast(enabled=True, dtype=torch.bfloat16, cache_enabled=True)``."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        super().__init__("cpu", _autocast_dtype("cpu", dtype), enabled, cache_enabled)


class GradScaler(_amp.GradScaler):
    """``torch.amp.GradScaler(device="cuda", ...)``: scales on the CPU core, whatever the device."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        _asked_for(_device_type(device))
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


class _CudaGradScaler(_amp.GradScaler):
    """``torch.cuda.amp.GradScaler(init_scale=2.**16, ...)`` (no device argument)."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        _asked_for("cuda")
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


for _cls in (_cuda_autocast, _cpu_autocast):
    _cls.__name__ = _cls.__qualname__ = "autocast"
_CudaGradScaler.__name__ = _CudaGradScaler.__qualname__ = "GradScaler"


# -- the modules ------------------------------------------------------------------------------------
_HIDDEN = {"annotations", "apply_op", "from_array", "torch_dtype_name", "autocast_float32", "trace",
           "random", "required", "bind", "Size"}


def _public(module) -> list[str]:
    """The names of a gradviz module a script may use (not its imports of helpers or numpy)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    out = []
    for n in names:
        value = getattr(module, n, None)
        if n.startswith("_") or n in _HIDDEN or isinstance(value, types.ModuleType):
            continue
        where = getattr(value, "__module__", None) or ""
        if isinstance(value, (np.dtype, TorchDType)) or where.startswith("gradviz") or where.startswith("torch"):
            out.append(n)
    return out


class _Namespace(types.ModuleType):
    """One ``torch.*`` module: its own entries, then the gradviz modules ``targets``, looked up lazily."""

    def __init__(self, name: str, targets: tuple[str, ...] = (), own: dict | None = None, package: bool = False):
        super().__init__(name)
        self.__dict__["_gv_targets"] = targets
        self.__dict__["_gv_own"] = set(own or ())
        self.__dict__.update(own or {})
        if package:
            self.__path__ = []

    def _gv_modules(self) -> list:
        out = []
        for target in self._gv_targets:
            try:
                out.append(importlib.import_module(target))
            except ImportError:          # a part of the core that does not exist (yet)
                continue
        return out

    def __getattr__(self, name: str):
        if name.startswith("__") or name.startswith("_gv"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        if not name.startswith("_"):
            for module in self._gv_modules():
                value = getattr(module, name, _MISSING)
                if value is not _MISSING and name not in _HIDDEN and not isinstance(value, types.ModuleType):
                    value = _adapt(self.__name__, name, value)
                    self.__dict__[name] = value
                    return value
        raise UnsupportedAPI(unsupported_message(self.__name__, name))

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._gv_supported()))

    def _gv_supported(self) -> list[str]:
        names = {n for n in self._gv_own if not n.startswith("_")}
        for module in self._gv_modules():
            names.update(_public(module))
        return sorted(names, key=str.lower)


def unsupported_message(module: str, name: str) -> str:
    """``torch.nn.Conv2d is not supported by GradViz's core (supported: Linear, ...)``: classes list
    the classes there are, functions the functions."""
    ns = _namespaces().get(module)
    supported = ns._gv_supported() if ns is not None else []
    wanted_class = name[:1].isupper()
    shown = [n for n in supported if n[:1].isupper() == wanted_class] or supported
    return f"{module}.{name} is not supported by GradViz's core (supported: {', '.join(shown)})"


def _constant(value):
    return lambda *args, **kwargs: value


@contextlib.contextmanager
def _quiet_context(*args, **kwargs):
    yield


# torch's dtypes: numpy dtypes that print as torch's (``torch.float32``); ``tensor.dtype`` returns
# them while a script runs (see _devices_patched)
TORCH_DTYPES = {np.dtype(d): TorchDType(d, name) for d, name in (
    ("float32", "float32"), ("float64", "float64"), ("float16", "float16"), (_amp.bfloat16, "bfloat16"),
    ("int64", "int64"), ("int32", "int32"), ("int16", "int16"), ("int8", "int8"), ("uint8", "uint8"),
    ("bool", "bool"))}


def torch_dtype(d) -> TorchDType:
    """``d`` (a numpy dtype) as a script sees it."""
    d = np.dtype(d)
    found = TORCH_DTYPES.get(d)
    return found if found is not None else TorchDType(d, str(d))


def _dtypes() -> dict:
    t = {name: torch_dtype(d) for name, d in (
        ("float32", "float32"), ("float64", "float64"), ("float16", "float16"), ("bfloat16", _amp.bfloat16),
        ("int64", "int64"), ("int32", "int32"), ("int16", "int16"), ("int8", "int8"), ("uint8", "uint8"),
        ("bool", "bool"))}
    return dict(t, float=t["float32"], double=t["float64"], half=t["float16"], long=t["int64"], int=t["int32"],
                short=t["int16"], dtype=TorchDType,
                get_default_dtype=lambda: torch_dtype(_tensor.get_default_dtype()))


_MODULES: dict[str, _Namespace] | None = None


def _namespaces() -> dict[str, _Namespace]:
    """Every ``torch.*`` module, built once (their attributes are cached as the script reads them)."""
    global _MODULES
    if _MODULES is not None:
        return _MODULES
    ns = {}

    def add(name, targets=(), own=None, package=False):
        ns[name] = _Namespace(name, targets, own, package)
        return ns[name]

    cuda_amp = add("torch.cuda.amp", own=dict(autocast=_cuda_autocast, GradScaler=_CudaGradScaler))
    cpu_amp = add("torch.cpu.amp", own=dict(autocast=_cpu_autocast))
    cuda = add("torch.cuda", package=True, own=dict(
        amp=cuda_amp, is_available=_constant(False), device_count=_constant(0), is_bf16_supported=_constant(False),
        manual_seed=_constant(None), manual_seed_all=_constant(None), synchronize=_constant(None),
        empty_cache=_constant(None)))
    cpu = add("torch.cpu", package=True, own=dict(amp=cpu_amp, is_available=_constant(True)))
    amp = add("torch.amp", ("gradviz.amp",), own=dict(autocast=autocast, GradScaler=GradScaler))
    mps = add("torch.backends.mps", own=dict(is_available=_constant(False), is_built=_constant(False)))
    cudnn = add("torch.backends.cudnn", own=dict(is_available=_constant(False), enabled=True, benchmark=False,
                                                 deterministic=False, allow_tf32=True))
    backends_cuda = add("torch.backends.cuda", own=dict(
        is_built=_constant(False), matmul=types.SimpleNamespace(allow_tf32=False)))
    backends = add("torch.backends", package=True, own=dict(mps=mps, cudnn=cudnn, cuda=backends_cuda))
    functional = add("torch.nn.functional", ("gradviz.nn.functional",))
    init = add("torch.nn.init", ("gradviz.nn.init",))
    nn_utils = add("torch.nn.utils", ("gradviz.nn.utils",), package=True)
    nn = add("torch.nn", ("gradviz.nn",), package=True,
             own=dict(functional=functional, init=init, utils=nn_utils))
    lr_scheduler = add("torch.optim.lr_scheduler", ("gradviz.optim.lr_scheduler",))
    optim = add("torch.optim", ("gradviz.optim",), package=True, own=dict(lr_scheduler=lr_scheduler))
    data = add("torch.utils.data", ("gradviz.utils.data",))
    utils = add("torch.utils", ("gradviz.utils",), package=True, own=dict(data=data))
    autograd = add("torch.autograd", ("gradviz.autograd",), package=True, own=dict(
        set_detect_anomaly=_quiet_context, detect_anomaly=_quiet_context))
    own = dict(_dtypes(), nn=nn, optim=optim, utils=utils, amp=amp, cuda=cuda, cpu=cpu, backends=backends,
               autograd=autograd, device=device, autocast=autocast, __version__=TORCH_VERSION)
    add("torch", ("gradviz",), own=own, package=True)
    # grad mode lives at the top (torch.no_grad) and in torch.autograd (torch.autograd.no_grad)
    autograd.__dict__["_gv_targets"] = ("gradviz",) + autograd._gv_targets
    _MODULES = ns
    return ns


class _Finder:
    """A ``torch.*`` module that is not in the namespace: one line naming it and the ones there are."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            known = ", ".join(sorted(_namespaces()))
            raise ModuleNotFoundError(f"{fullname} is not supported by GradViz's core (supported: {known})",
                                      name=fullname)
        return None


class Shim:
    """What ``installed()`` gives the block: the notes the script's run collected."""

    def __init__(self, notes: list[str]):
        self.notes = notes


def _is_torch(name: str) -> bool:
    return name == "torch" or name.startswith("torch.")


@contextlib.contextmanager
def installed():
    """Make ``import torch`` (and its submodules) resolve to the namespace for the block."""
    global _NOTES
    modules = _namespaces()
    saved = {k: v for k, v in sys.modules.items() if _is_torch(k)}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(modules)
    finder = _Finder()
    sys.meta_path.insert(0, finder)
    prev, _NOTES = _NOTES, []
    shim = Shim(_NOTES)
    try:
        with _devices_patched():
            yield shim
    finally:
        _NOTES = prev
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for k in [k for k in sys.modules if _is_torch(k)]:
            del sys.modules[k]
        sys.modules.update(saved)
