"""How a tensor prints: PyTorch's ``torch/_tensor_str.py`` ported to numpy, so that ``repr(t)`` is
the same string PyTorch prints for the same values (``tensor([1.8000], requires_grad=True)``).

The rules, as PyTorch chooses them:

- one formatter per tensor decides, from its non-zero finite values, between integer mode
  (``2.``), fixed point (``precision`` digits) and scientific notation (used when
  max/min > 1000, max > 1e8 or min < 1e-4), and pads every element to the widest one;
- rows wrap so that a line stays within ``linewidth`` characters;
- a tensor of more than ``threshold`` elements is summarised: ``edgeitems`` at each end of every
  dimension and ``...`` between (the formatter then sees only those elements);
- suffixes follow: ``dtype=`` unless it is the default float dtype, int64 or bool;
  ``grad_fn=<...>`` for a non-leaf, else ``requires_grad=True``.

Also ``Size``, the tuple ``Tensor.shape`` returns, which prints as ``torch.Size([3])``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["Size", "set_printoptions", "get_printoptions", "tensor_repr"]


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's ``torch.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def numel(self) -> int:
        return math.prod(self)


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrintOptions()
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, math.inf, 3, 80)}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None) -> None:
    """PyTorch's ``torch.set_printoptions``: ``profile`` is "default", "short" or "full"; the other
    arguments override it; ``sci_mode=None`` (always reset unless given) lets the formatter choose."""
    if profile is not None:
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = _PROFILES[profile]
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict:
    return dataclasses.asdict(PRINT_OPTS)


def dtype_name(dtype) -> str:
    """``torch.float64``: how PyTorch prints a dtype."""
    name = np.dtype(dtype).name
    return "torch." + {"bool": "bool"}.get(name, name)


class _Formatter:
    """Chooses integer / fixed / scientific mode and the element width from the values shown."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f" or values.dtype.name == "bfloat16"
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        if not self.floating:
            self.max_width = max([1] + [len(str(v)) for v in np.unique(flat).tolist()])
            return
        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            return
        finite = np.unique(finite).astype(np.float64)      # the same widths, each value once
        magnitude = np.abs(finite)
        lo, hi = magnitude.min(), magnitude.max()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = ((hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if PRINT_OPTS.sci_mode is None
                         else PRINT_OPTS.sci_mode)
        p = PRINT_OPTS.precision
        if self.sci_mode:
            widths = [len(f"{v:.{p}e}") for v in finite.tolist()]
        elif self.int_mode:
            widths = [len(f"{v:.0f}") + 1 for v in finite.tolist()]
        else:
            widths = [len(f"{v:.{p}f}") for v in finite.tolist()]
        self.max_width = max(self.max_width, *widths)

    def format(self, value) -> str:
        if self.floating:
            if self.sci_mode:
                text = f"{value:{self.max_width}.{PRINT_OPTS.precision}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{PRINT_OPTS.precision}f}"
        else:
            text = f"{value}"
        return (self.max_width - len(text)) * " " + text


def _as_python(values: np.ndarray) -> list:
    if values.dtype.kind == "f" or values.dtype.name == "bfloat16":
        return values.astype(np.float64).tolist()
    return values.tolist()


def _vector_str(x: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / (fmt.max_width + 2)))
    edge = PRINT_OPTS.edgeitems
    if summarize and not edge:
        data = ["..."]
    elif summarize and x.shape[0] > 2 * edge:
        data = ([fmt.format(v) for v in _as_python(x[:edge])] + [" ..."]
                + [fmt.format(v) for v in _as_python(x[-edge:])])
    else:
        data = [fmt.format(v) for v in _as_python(x)]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(x: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if x.ndim == 0:
        return fmt.format(_as_python(x))
    if x.ndim == 1:
        return _vector_str(x, indent, summarize, fmt)
    edge = PRINT_OPTS.edgeitems
    if summarize and x.shape[0] > 2 * edge:
        rows = ([_nested_str(x[i], indent + 1, summarize, fmt) for i in range(edge)] + ["..."]
                + [_nested_str(x[i], indent + 1, summarize, fmt) for i in range(len(x) - edge, len(x))])
    else:
        rows = [_nested_str(x[i], indent + 1, summarize, fmt) for i in range(x.shape[0])]
    return "[" + ("," + "\n" * (x.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _summarized(x: np.ndarray) -> np.ndarray:
    """The elements a summarised print shows (what the formatter measures)."""
    edge = PRINT_OPTS.edgeitems
    if x.ndim == 0:
        return x
    if x.ndim == 1:
        return np.concatenate((x[:edge], x[-edge:])) if x.shape[0] > 2 * edge else x
    if not edge:
        return np.empty([0] * x.ndim, dtype=x.dtype)
    rows = list(range(edge)) + list(range(len(x) - edge, len(x))) if x.shape[0] > 2 * edge else range(len(x))
    return np.stack([_summarized(x[i]) for i in rows])


def _body(x: np.ndarray, indent: int) -> str:
    if x.size == 0:
        return "[]"
    summarize = x.size > PRINT_OPTS.threshold
    fmt = _Formatter(_summarized(x) if summarize else x)
    return _nested_str(x, indent, summarize, fmt)


def _add_suffixes(text: str, suffixes: list, indent: int) -> str:
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def tensor_repr(data: np.ndarray, default_dtype, grad_fn_name: str | None, requires_grad: bool) -> str:
    """``repr`` of a tensor holding ``data``, as PyTorch's ``_str_intern`` writes it."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    dtype = data.dtype
    if data.size == 0:
        if data.ndim != 1:
            suffixes.append(f"size={tuple(data.shape)}")
        if dtype != default_dtype:
            suffixes.append(f"dtype={dtype_name(dtype)}")
        text = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(data.shape)}")
        if dtype not in (default_dtype, np.int64, np.bool_):
            suffixes.append(f"dtype={dtype_name(dtype)}")
        text = _body(data, indent)
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + text, suffixes, indent)
