"""GradViz's autograd core: a small numpy engine with PyTorch's API and numbers.

No Qt here (a test enforces it): the app in ``ui/`` only shows what this package computes.
"""
import functools as _functools

import numpy as _np

from . import random, trace
from ._dtypes import bfloat16  # ml_dtypes' bfloat16, a numpy dtype
from ._ops import allclose, as_tensor, cat, device, from_numpy, linspace, maximum, minimum, stack, where
from ._printing import Size, get_printoptions, set_printoptions
from ._tensor import (
    Tensor,
    arange,
    bool_,
    enable_grad,
    float16,
    float32,
    float64,
    full,
    get_default_dtype,
    inference_mode,
    int64,
    is_grad_enabled,
    is_tensor,
    log_softmax,
    matmul,
    no_grad,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    set_default_dtype,
    set_grad_enabled,
    softmax,
    tensor,
    zeros,
    zeros_like,
)
from .random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

half, double, long = float16, float64, int64      # PyTorch's aliases ("float" would shadow the builtin)
int32, int16, int8, uint8 = (_np.dtype(n) for n in ("int32", "int16", "int8", "uint8"))
concat = concatenate = cat


def _functional(name):
    method = getattr(Tensor, name)

    @_functools.wraps(method)
    def f(input, *args, **kwargs):
        return method(input if isinstance(input, Tensor) else Tensor(input), *args, **kwargs)
    return f


exp, log, sqrt, abs, tanh, sigmoid, relu, sum, mean, max, clamp, reshape, transpose = (
    _functional(n) for n in ("exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sum", "mean", "max",
                             "clamp", "reshape", "transpose"))
min, argmax, argmin, flatten, std, var, norm, pow, eq, ne, lt, le, gt, ge, isnan, isfinite = (
    _functional(n) for n in ("min", "argmax", "argmin", "flatten", "std", "var", "norm", "pow", "eq", "ne",
                             "lt", "le", "gt", "ge", "isnan", "isfinite"))
t, unsqueeze, squeeze, permute = (_functional(n) for n in ("t", "unsqueeze", "squeeze", "permute"))

from . import amp, nn, optim, utils  # noqa: E402  (like torch.nn / torch.optim after `import torch`)
from .amp import autocast  # noqa: E402  (torch.autocast)

__version__ = "0.1.0"
