"""``Module``, ``Parameter`` and the layers, shaped like ``torch.nn``."""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from .. import _tensor, trace
from .._ops import parse_to
from .._tensor import Tensor
from ..trace import _state as _trace_state  # this thread's recorder and module stack
from . import functional as F
from . import init


class Parameter(Tensor):
    """A leaf tensor that requires grad and that Modules register (``torch.nn.Parameter``)."""
    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=_tensor.get_default_dtype())
        super().__init__(data._data if isinstance(data, Tensor) else data,
                         dtype=data.dtype if isinstance(data, Tensor) else None, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class: registers Parameters and sub-Modules assigned as attributes, in order."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_local_name", "")

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign before Module.__init__() call")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
            if value.name is None:
                value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
            object.__setattr__(value, "_local_name", name)
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if _trace_state.recorder is None:
            return self.forward(*args, **kwargs)
        # Ops created while this module runs are tagged with its dotted name, so the graph view
        # can collapse a layer into one box.
        stack = _trace_state.module_stack
        parent = stack[-1] if stack else ""
        name = f"{parent}.{self._local_name}" if parent and self._local_name else self._local_name or parent
        if not name:
            return self.forward(*args, **kwargs)
        with trace.module_scope(name):
            return self.forward(*args, **kwargs)

    # -- traversal ------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            stack.extend(reversed([(f"{name}.{n}" if name else n, m) for n, m in mod._modules.items()]))

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, mod in mods:
            for pname, p in mod._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def zero_grad(self, set_to_none: bool = True) -> None:
        params = list(self.parameters())
        rec = _trace_state.recorder
        if rec is not None:
            rec.on_zero_grad(params, set_to_none)
        for p in params:
            if p.grad is None:
                continue
            if set_to_none:
                p._grad = None
            else:
                p.grad._data[...] = 0

    def named_children(self):
        return iter(self._modules.items())

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Every parameter by its dotted name: detached tensors *sharing* the parameters' storage, as
        in PyTorch (a later ``step()`` changes them; ``copy.deepcopy`` the dict to keep a snapshot)."""
        return OrderedDict((prefix + n, p if keep_vars else p.detach()) for n, p in self.named_parameters())

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """Copy values into the parameters by name; returns ``(missing_keys, unexpected_keys)``."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        for k, v in state_dict.items():
            if k in own:
                v = v._data if isinstance(v, Tensor) else np.asarray(v)
                if v.shape != own[k].shape:
                    errors.append(f"size mismatch for {k}: copying a param with shape {_tensor.Size(v.shape)} "
                                  f"from checkpoint, the shape in current model is {own[k].shape}.")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for k, v in state_dict.items():
            if k in own:
                np.copyto(own[k]._data, v._data if isinstance(v, Tensor) else np.asarray(v), casting="unsafe")
                own[k]._version[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``: a device changes nothing (the CPU is the
        only one); a dtype casts every floating parameter (and its ``.grad``) in place."""
        dtype, _ = parse_to(args, kwargs)
        if dtype is None:
            return self
        for p in self.parameters():
            if p._data.dtype.kind == "f" or p._data.dtype == _tensor.bfloat16:
                p._data = p._data.astype(dtype)
                if p.grad is not None:
                    p.grad._data = p.grad._data.astype(dtype)
        return self

    def cuda(self, device=None) -> Module: return self
    def cpu(self) -> Module: return self

    def double(self): return self.to(np.float64)
    def float(self): return self.to(np.float32)
    def half(self): return self.to(np.float16)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


class Linear(Module):
    r"""y = x W^T + b, initialised as PyTorch does it, draw for draw.

    ``reset_parameters`` is torch's: ``kaiming_uniform_(weight, a=sqrt(5))`` (a bound of about
    :math:`1/\sqrt{in}`), then ``uniform_(bias, -1/sqrt(in), 1/sqrt(in))``, weight first, from torch's
    CPU stream (``gradviz.random``): after ``manual_seed(s)``, ``Linear(i, o)`` holds the numbers
    ``torch.nn.Linear(i, o)`` holds after ``torch.manual_seed(s)``, in float32 and float64 alike.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = np.dtype(dtype or _tensor.get_default_dtype())
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.register_parameter("bias", Parameter(np.empty((out_features,), dtype=dtype)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)


class _IncompatibleKeys(tuple):
    """``load_state_dict``'s result: ``(missing_keys, unexpected_keys)``, printed as torch prints it."""
    missing_keys = property(lambda self: self[0])
    unexpected_keys = property(lambda self: self[1])

    def __new__(cls, missing, unexpected):
        return super().__new__(cls, (missing, unexpected))

    def __repr__(self) -> str:
        if not self[0] and not self[1]:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self[0]}, unexpected_keys={self[1]})"


class ModuleList(Module):
    """Holds sub-modules in a list, registered as "0", "1", ... (``torch.nn.ModuleList``)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x): return x


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x): return x.flatten(self.start_dim, self.end_dim)
    def extra_repr(self) -> str: return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x): return F.leaky_relu(x, self.negative_slope)
    def extra_repr(self) -> str: return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x): return F.softmax(x, self.dim)
    def extra_repr(self) -> str: return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x): return F.log_softmax(x, self.dim)


class Tanh(Module):
    def forward(self, x): return x.tanh()


class ReLU(Module):
    def forward(self, x): return x.relu()


class Sigmoid(Module):
    def forward(self, x): return x.sigmoid()


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:      # PyTorch's legacy arguments
            warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                          f"{('mean' if size_average in (None, True) else 'sum') if reduce in (None, True) else 'none'}"
                          "' instead.", UserWarning, stacklevel=3)
            size_average = True if size_average is None else size_average
            reduce = True if reduce is None else reduce
            reduction = ("mean" if size_average else "sum") if reduce else "none"
        F._check_reduction(reduction)
        self.reduction = reduction


class MSELoss(_Loss):
    def forward(self, input, target): return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target): return F.l1_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        _unsupported(type(self).__name__, weight=weight, pos_weight=pos_weight)

    def forward(self, input, target): return F.binary_cross_entropy_with_logits(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(size_average, reduce, reduction)
        _unsupported(type(self).__name__, weight=weight, label_smoothing=label_smoothing)
        self.ignore_index = ignore_index

    def forward(self, input, target): return F.cross_entropy(input, target, self.reduction)


class NLLLoss(_Loss):
    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        _unsupported(type(self).__name__, weight=weight)
        self.ignore_index = ignore_index

    def forward(self, input, target): return F.nll_loss(input, target, self.reduction)


class BCELoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        _unsupported(type(self).__name__, weight=weight)

    def forward(self, input, target): return F.binary_cross_entropy(input, target, self.reduction)


def _unsupported(cls: str, **options) -> None:
    """One clear line for the loss options the core does not compute (class weights, smoothing...)."""
    for name, value in options.items():
        if value is not None and value != 0.0:
            raise NotImplementedError(f"{cls}({name}=...) is not supported by GradViz's core")


