"""Formula templates rendered three ways: Qt rich text (HTML), LaTeX and plain Unicode text.

A template (``gradviz.functions.OpMath``, the optimizers' rules in ``gradviz.view.formulas``) is text
with ``{name}`` placeholders and four constructs: ``^{…}`` and ``_{…}`` (super/subscript),
``\\frac{…}{…}``, ``\\sqrt{…}`` and ``\\hat{…}``.  Everything else is literal: Greek letters, ·, −,
Σ, ⊙ are written as themselves and translated for LaTeX.  A placeholder is filled from an
environment with a :class:`Sym` (a name: ``w``, ``0.weight``, ``∂L/∂out``) or a :class:`Num` (this
iteration's number), so the symbolic line and the numeric line are the same template.

    render("{a} · {b}", {"a": Sym("w"), "b": Num(2.0)}, "plain")   # 'w · 2.0'

Parsing is cached per template; rendering is a walk over a few nodes (the caption renders every frame).
"""
from __future__ import annotations

import functools
import html
import math
import re
from dataclasses import dataclass

import numpy as np

from ..summary import ArraySummary
from .format import format_number

__all__ = ["Formula", "Sym", "Num", "build", "element_text", "render", "number_text", "TARGETS"]

TARGETS = ("html", "latex", "plain")


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbol: a name (italic when it is one letter), or a ready-made piece (``∂L/∂out``) given for
    each target.  ``compound``: put it in parentheses before a superscript."""
    name: str
    html: str | None = None
    latex: str | None = None
    compound: bool = False


@dataclass(frozen=True, slots=True)
class Num:
    """A number of this iteration, shown with 4 significant digits (``format_number``)."""
    value: float


_GREEK_LATEX = {"α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon", "η": r"\eta",
                "θ": r"\theta", "λ": r"\lambda", "μ": r"\mu", "σ": r"\sigma", "τ": r"\tau", "Σ": r"\sum",
                "∂": r"\partial", "·": r"\cdot", "⊙": r"\odot", "−": "-", "≤": r"\leq", "≥": r"\geq",
                "←": r"\leftarrow", "→": r"\to", "‖": r"\|", "…": r"\ldots", "%": r"\%",
                "|": "|", "@": r"\,@\,", "#": r"\#", "&": r"\&", "_": r"\_"}
_LATEX_WORDS = re.compile(r"\b(exp|log|tanh|max|min|sign|clamp|softmax|where|stack|cat|var|mean)\b")
_LATEX_FUNCS = {"exp", "log", "tanh", "max", "min"}
_SUP = dict(zip("0123456789+−-=()nitTkx", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱᵗᵀᵏˣ"))
_SUB = dict(zip("0123456789+−-=()ijk", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ᵢⱼₖ"))


# -- parsing ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _parse(template: str) -> tuple:
    nodes, end = _parse_seq(template, 0, closing=False)
    return nodes


def _parse_seq(t: str, i: int, closing: bool) -> tuple[tuple, int]:
    """Nodes until the end of ``t`` (or the ``}`` closing a group).  A node: a str; ("ph", name);
    ("sup"|"sub"|"sqrt"|"hat", nodes); ("frac", num, den)."""
    out: list = []
    text = []
    n = len(t)
    while i < n:
        c = t[i]
        if c == "}" and closing:
            break
        if c in "^_" and i + 1 < n and t[i + 1] == "{":
            _flush(out, text)
            group, i = _parse_seq(t, i + 2, closing=True)
            out.append(("sup" if c == "^" else "sub", group))
            i += 1
        elif c == "\\" and t.startswith("\\frac{", i):
            _flush(out, text)
            num, i = _parse_seq(t, i + 6, closing=True)
            if not t.startswith("}{", i):
                raise ValueError(f"\\frac without a denominator in {t!r}")
            den, i = _parse_seq(t, i + 2, closing=True)
            out.append(("frac", num, den))
            i += 1
        elif c == "\\" and (t.startswith("\\sqrt{", i) or t.startswith("\\hat{", i)):
            _flush(out, text)
            kind = "sqrt" if t.startswith("\\sqrt{", i) else "hat"
            group, i = _parse_seq(t, i + len(kind) + 2, closing=True)
            out.append((kind, group))
            i += 1
        elif c == "{":
            j = t.index("}", i)
            _flush(out, text)
            out.append(("ph", t[i + 1:j]))
            i = j + 1
        else:
            text.append(c)
            i += 1
    _flush(out, text)
    return tuple(out), i


def _flush(out: list, text: list) -> None:
    if text:
        out.append("".join(text))
        text.clear()


# -- rendering -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096, typed=True)        # typed: 4 and 4.0 read differently
def number_text(x: float, target: str) -> str:
    """A number as the formulas show it: 4 significant digits, a real minus sign (``-`` in LaTeX); ``…``
    for one the trace did not keep (an element of a summarised large array)."""
    if x is None:
        return "…" if target != "latex" else r"\ldots"
    text = format_number(x)
    if target == "latex":
        if "e" in text:
            mantissa, exp = text.split("e")
            return f"{mantissa}\\times 10^{{{int(exp)}}}"
        return text.replace("inf", r"\infty")
    return text.replace("-", "−")


def render(template: str, env: dict, target: str) -> str:
    """``template`` with its placeholders filled from ``env`` (missing ones show their name)."""
    text = _render(_parse(template), env, target)
    return text.replace("  ", " ") if target == "latex" else text


def _render(nodes: tuple, env: dict, target: str) -> str:
    parts: list[str] = []
    for k, node in enumerate(nodes):
        if type(node) is str:
            parts.append(_literal(node, target))
            continue
        kind = node[0]
        if kind == "ph":
            value = env.get(node[1], None)
            if value is None:
                value = Sym(node[1])
            elif not isinstance(value, (Sym, Num)):
                value = Sym(str(value))
            before_power = k + 1 < len(nodes) and type(nodes[k + 1]) is tuple and nodes[k + 1][0] == "sup"
            parts.append(_value(value, target, parts, before_power))
        elif kind in ("sup", "sub"):
            parts.append(_script(kind, _render(node[1], env, target), target))
        elif kind == "frac":
            num = _render(node[1], env, target)
            if target != "latex" and num.startswith(("−", "-")) and not _opens(parts):
                num = f"({num})"           # a · (−3)/b, not a · −3/b
            parts.append(_frac(num, _render(node[2], env, target), target))
        elif kind == "sqrt":
            parts.append(_sqrt(_render(node[1], env, target), target))
        else:
            inner = _render(node[1], env, target)
            parts.append(f"\\hat{{{inner}}}" if target == "latex" else inner + "\u0302")
    return "".join(parts)


def _opens(parts: list[str]) -> bool:
    """True where a negative number needs no parentheses: at the start, after ``(``, ``=``, ``,``."""
    last = "".join(parts[-2:]).rstrip()
    return not last or last[-1] in "([{=,|" or last.endswith(("&lt;", "\\left(")) or last.endswith("min(")


@functools.lru_cache(maxsize=4096)
def _literal(text: str, target: str) -> str:
    if target == "plain":
        return text
    if target == "html":
        return html.escape(text, quote=False)
    out = "".join(_GREEK_LATEX.get(c, c) + (" " if c in _GREEK_LATEX and _GREEK_LATEX[c][-1].isalpha() else "")
                  for c in text)
    return _LATEX_WORDS.sub(lambda m: ("\\" + m.group(1)) if m.group(1) in _LATEX_FUNCS
                            else f"\\operatorname{{{m.group(1)}}}", out)


def _value(value, target: str, parts: list, before_power: bool) -> str:
    if isinstance(value, Num):
        text = number_text(value.value, target)
        if (text[0] in "−-" and not _opens(parts)) or (before_power and (text[0] in "−-" or "e" in text
                                                                          or "times" in text)):
            return f"\\left({text}\\right)" if target == "latex" else f"({text})"
        return text
    if target == "plain":
        text = value.name
    elif target == "html":
        text = value.html if value.html is not None else (
            f"<i>{html.escape(value.name)}</i>" if len(value.name) == 1 and value.name.isalpha()
            else html.escape(value.name))
    else:
        text = value.latex if value.latex is not None else latex_name(value.name)
    if value.compound and before_power:
        return f"\\left({text}\\right)" if target == "latex" else f"({text})"
    return text


def latex_name(name: str) -> str:
    """A symbol's name in LaTeX: one letter as is, a word upright (``\\mathrm{0.weight}``)."""
    if name in _GREEK_LATEX:
        return _GREEK_LATEX[name]
    if len(name) == 1 and name.isascii() and name.isalpha():
        return name
    base, _, index = name.partition("[")
    body = r"\mathrm{" + _literal(base, "latex").replace(" ", "") + "}"
    return body + ("[" + index if index else "")


def _script(kind: str, inner: str, target: str) -> str:
    if target == "latex":
        return ("^" if kind == "sup" else "_") + "{" + inner + "}"
    if target == "html":
        return f"<{kind}>{inner}</{kind}>"
    table = _SUP if kind == "sup" else _SUB
    if all(c in table for c in inner):
        return "".join(table[c] for c in inner)
    return ("^" if kind == "sup" else "_") + (inner if len(inner) == 1 else f"({inner})")


def _frac(num: str, den: str, target: str) -> str:
    if target == "latex":
        return f"\\frac{{{num}}}{{{den}}}"
    # Qt's rich text has no stacked fractions (a sup/sub pair reads too small): a slash, as in print
    return f"{_wrap(num, target, False)}/{_wrap(den, target, True)}"


_GROUP = re.compile(r"\([^()]*\)")


def _wrap(text: str, target: str, denominator: bool) -> str:
    """``text`` in parentheses where a ``/`` next to it would bind wrongly: a sum (either side), a
    product or a negative number (the denominator)."""
    bare = re.sub(r"<[^>]+>", "", text) if target == "html" else text
    top = bare
    while True:
        reduced = _GROUP.sub("_", top)
        if reduced == top:
            break
        top = reduced
    ops = (" + ", " − ", " · ", "/", " @ ") if denominator else (" + ", " − ")
    if any(op in top for op in ops) or (denominator and top.startswith(("−", "-"))):
        return f"({text})"
    return text


def _sqrt(inner: str, target: str) -> str:
    if target == "latex":
        return f"\\sqrt{{{inner}}}"
    # a vinculum (an overline) wraps badly in Qt's rich text: √ and parentheses, as in plain text
    return "√" + _wrap(inner, target, True)


# -- formulas --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Formula:
    """One formula: ``symbolic_html`` (the rule) and ``numeric_html`` (``= numbers = result``) as Qt
    rich text, the whole line as ``latex`` and as ``plain`` Unicode text.  ``value`` is the recorded
    number it ends with; ``computed`` the rule evaluated in float64 from recorded inputs (steps)."""
    kind: str
    title: str
    symbolic_html: str
    numeric_html: str
    latex: str
    plain: str
    value: float | None = None
    computed: float | None = None
    element: tuple | None = None
    short: str = ""             # ``lhs = result`` in plain text (a caption short of room lists these)


def build(kind: str, title: str, sym: list, num: list, value=None, computed=None, element=None) -> Formula:
    """A Formula from sides ``[(template, env), ...]``: the symbolic ones, then the numeric ones,
    all joined by ``=``."""
    def side(sides, target):
        texts = [render(t, env, target) for t, env in sides]
        return " = ".join(x for k, x in enumerate(texts) if k == 0 or x != texts[k - 1])
    sym_html, num_html = side(sym, "html"), side(num, "html")
    latex = " = ".join(x for x in (side(sym, "latex"), side(num, "latex")) if x)
    plain = " = ".join(x for x in (side(sym, "plain"), side(num, "plain")) if x)
    lhs = render(sym[0][0], sym[0][1], "plain").split(" ← ")[0].split(" = ")[0] if sym else ""
    short = plain if value is None or not lhs else f"{lhs} = {number_text(value, 'plain')}"
    return Formula(kind, title, sym_html, ("= " + num_html) if num_html and sym else num_html, latex, plain,
                   None if value is None else float(value), None if computed is None else float(computed),
                   element, short)


# -- elements --------------------------------------------------------------------------------------
def element_text(idx) -> str:
    """``[1,0]`` for an index, ``""`` for a scalar's ``()``."""
    return "" if not idx else "[" + ",".join(str(int(i)) for i in idx) + "]"


def _pick(element, shape) -> tuple:
    """``element`` (a flat index or an index tuple) as an index into ``shape``; element 0 by default."""
    shape = tuple(shape)
    if not shape or math.prod(shape) == 0:
        return ()
    if element is None:
        return (0,) * len(shape)
    if isinstance(element, (int, np.integer)):
        return tuple(int(i) for i in np.unravel_index(min(max(int(element), 0), math.prod(shape) - 1), shape))
    idx = tuple(int(i) for i in element)
    if len(idx) != len(shape):
        return (0,) * len(shape)
    return tuple(min(max(i, 0), n - 1) for i, n in zip(idx, shape))


def _at(a, idx) -> float | None:
    if a is None:
        return None
    if type(a) is ArraySummary:            # a large array a trace summarised: its first rows
        return float(a[idx]) if a.kept(tuple(idx)) else None
    a = np.asarray(a)
    if a.ndim == 0:
        return float(a)
    if len(idx) != a.ndim:
        return None
    return float(a[idx])
