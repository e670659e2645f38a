"""The text a graph node shows: values, gradients, ``.grad`` badges, edge labels, heat-map captions.

Numbers go through ``gradviz.view.format``; this module only lays them out (a matrix on several
lines, ``before → after``, ``grad: old + new = sum``, ``μ mean`` beside a heat map).
"""
from __future__ import annotations

import numpy as np

from gradviz.summary import is_summary
from gradviz.view.format import format_array, format_number, format_value

PRECISION = 4


def value_text(a) -> str:
    """A value as the node shows it in text mode (multi-line for matrices)."""
    return format_value(a)           # the inspector shows the same text


_MEANS: dict[int, tuple] = {}     # id(array) -> (array, text): a trace's large arrays never change
_MEANS_KEPT = 64
MEAN_CACHED_FROM = 100_000       # elements: smaller arrays are averaged each time (cheaper than a lookup)


def mean_number(a) -> str:
    """The mean of ``a``, as short as a heat map's caption wants it. Accumulated in float64 without
    a float64 copy; a large array's text is remembered (sizing and every frame ask again)."""
    if is_summary(a):                # a trace's summary of a huge array: its mean over every element
        return format_number(a.mean, 2)
    big = isinstance(a, np.ndarray) and a.size >= MEAN_CACHED_FROM
    if big:
        found = _MEANS.get(id(a))
        if found is not None and found[0] is a:
            return found[1]
    with np.errstate(all="ignore"):
        plain = isinstance(a, np.ndarray) and a.dtype.kind in "fiub"       # not bfloat16 ("V")
        text = format_number(np.mean(a, dtype=np.float64) if plain else np.mean(np.asarray(a, dtype=np.float64)), 2)
    if big:
        if len(_MEANS) >= _MEANS_KEPT:
            _MEANS.pop(next(iter(_MEANS)))
        _MEANS[id(a)] = (a, text)
    return text


def mean_text(a) -> str:
    return f"μ {mean_number(a)}"


def step_heat_text(before, after) -> str:
    return f"{mean_text(before)} → {mean_number(after)}"


def step_text(before, after) -> str:
    return f"{value_text(before)} → {value_text(after)}"


def edge_label(a, max_chars: int = 12) -> str:
    """A gradient label on an edge: the value if short, else its mean."""
    if a is None:
        return ""
    text = format_array(a, max_elems=3, precision=PRECISION, sep=" ")
    return text if len(text) <= max_chars and "\n" not in text and "shape" not in text else mean_text(a)


def shape_text(shape) -> str:
    return "×".join(str(n) for n in shape) if len(shape) != 1 else f"{shape[0]}"


def num_lines(text: str) -> int:
    return text.count("\n") + 1


def indent(prefix: str, text: str) -> str:
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def badge_text(ns, heat: bool, max_chars: int = 30) -> str:
    """The ``.grad`` badge: ``grad: None``, ``grad: 1.6``, ``grad: 0.8 + 1.6 = 2.4`` (accumulating)."""
    fmt = mean_number if heat else value_text
    lead = "grad mean: " if heat else "grad: "
    acc = ns.accumulation
    if ns.grad_badge is None:
        return "grad: None"
    if ns.cleared == "zeros":
        return lead + fmt(ns.grad_badge) + "  (zeroed)"
    if acc is not None and acc[0] is not None:
        before, added, after = fmt(acc[0]), fmt(acc[1]), fmt(acc[2])
        one = f"{lead}{before} + {added} = {after}"
        if len(one) <= max_chars and "\n" not in one:
            return one
        pad = " " * (len(lead) - 2)
        return indent(lead, before) + "\n" + indent(pad + "+ ", added) + "\n" + indent(pad + "= ", after)
    if acc is not None:
        one = indent(lead, fmt(acc[2]))
        return one + " (new)" if "\n" not in one and len(one) + 6 <= max_chars else one
    return indent(lead, fmt(ns.grad_badge))


def folded_badge_text(param_grads) -> str:
    """A folded module's badge: one ``weight.grad: μ 0.02`` line per parameter inside."""
    return "\n".join(f"{name}.grad: " + ("None" if g is None else mean_text(g)) for name, g in param_grads)


def sum_start(lines: list[str]) -> int | None:
    """Index of an accumulation's ``= sum`` line (drawn bold, under a rule), or None."""
    for i, line in enumerate(lines):
        if i > 0 and line.lstrip().startswith("= "):
            return i
    return None
