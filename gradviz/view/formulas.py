"""The math of every event, with its numbers: what the caption, the inspector and an edge's tooltip show.

    formulas_for_frame(replay, frame)              # the current event's formulas
    formulas_for_frame(replay, frame, node=w)      # w's formulas as of this frame (forward, backward,
                                                   # accumulation, step), for the inspector
    edge_formula(replay, frame, src, dst)          # the gradient dst sent back to src (or dst's forward)

Each :class:`Formula` is the formula and then the same formula with this iteration's numbers::

    ∂L/∂w = ∂L/∂out · ∂out/∂w = ∂L/∂out · x = −4.0 · 2.0 = −8.0

The op formulas are ``gradviz.functions.MATH`` (one row per primitive), the update rules are below
(one per optimizer, as their docstrings write them).  Every number comes from the recorded trace;
the last number of a formula is the recorded result.  Intermediates the trace does not keep (Adam's
m_hat and v_hat, the decayed learning rate of Adagrad) are computed from the recorded state, and
``Formula.computed`` evaluates the whole rule in float64 so a test can check that it reproduces the
recorded ``Formula.value``.  For a tensor, a formula is about one element (``element``; by default
the first, or for a step the element that moved most) and its title says which.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from .. import trace as _trace
from ..amp import GradScaler
from ..functions import RULES
from ..summary import ArraySummary
from .format import format_number, format_shape
from .mathtext import Formula, Num, Sym, _at, _parse, _pick, build, element_text
from .step_rules import largest_update, step_formulas

__all__ = ["Formula", "formulas_for_frame", "edge_formula", "element_text"]

_REDUCING = {"mse_loss", "bce_with_logits", "bce"}       # elementwise gradient, one scalar output
_TERMS = 4                                                # a sum of up to this many terms is written out


def _val(a):
    """A recorded value: an array, or the summary a trace keeps of a large one (its first rows)."""
    return a if type(a) is ArraySummary else np.asarray(a)


def _row_kept(a, i: int) -> bool:
    return type(a) is not ArraySummary or 0 <= i < a.head_rows


def _column(a, k: int) -> list:
    """Column ``k`` of a matrix as a list: of a summary, as far down as its first rows go."""
    return (a.head[:, k] if type(a) is ArraySummary else np.asarray(a)[:, k]).tolist()


def _pick_kept(element, a) -> tuple[tuple, str]:
    """``_pick(element, shape of a)``, and "" ; for a summarised array (a trace keeps the first rows
    of a very large one) an element below them is moved up to the last row kept, and the second
    item says so (for the formula's title)."""
    idx = _pick(element, np.shape(a))
    if type(a) is not ArraySummary or a.kept(idx):
        return idx, ""
    rows = a.head_rows
    return (rows - 1,) + idx[1:], (f" (a trace keeps the first {rows:,} of this array's {a.shape[0]:,} rows "
                                   "whole; the others only in its statistics)")


def _broadcast_index(idx: tuple, in_shape: tuple) -> tuple:
    """The element of an input of shape ``in_shape`` that output element ``idx`` read (broadcasting)."""
    in_shape = tuple(in_shape)
    tail = idx[len(idx) - len(in_shape):] if in_shape else ()
    return tuple(0 if n == 1 else i for i, n in zip(tail, in_shape))


def _sources(idx_in: tuple, in_shape: tuple, out_shape: tuple) -> list[tuple] | int:
    """The output elements that read input element ``idx_in`` (its gradient is their sum); their
    count instead when there are more than ``_TERMS``."""
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    if in_shape == out_shape:
        return [idx_in]
    lead = len(out_shape) - len(in_shape)
    free = [n if d < lead or in_shape[d - lead] == 1 else 1 for d, n in enumerate(out_shape)]
    count = math.prod(free)
    if count > _TERMS:
        return count
    fixed = [0] * lead + list(idx_in)
    return [tuple(f if n == 1 else j for f, n, j in zip(fixed, free, rest)) for rest in np.ndindex(*free)]


# -- what the replay knows, indexed once --------------------------------------------------------------
class _Index:
    def __init__(self, replay):
        self.forward: dict[int, int] = {}
        self.backward: dict[int, list[int]] = {}
        self.accumulate: dict[int, list[int]] = {}
        self.steps: list[int] = []
        self.roots: set[int] = set()           # the nodes backward started from
        self.grad_changes: dict[int, list] = {}  # node -> (event index, its .grad after) of accumulations, clips
        after_phase = False
        for i, e in enumerate(replay.events):
            t = type(e)
            if t is _trace.PhaseEvent:
                after_phase = e.phase == "backward"
            elif t is _trace.BackwardCallEvent:
                self.roots.add(e.node)
            elif t is _trace.BackwardEvent and after_phase:
                self.roots.add(e.node)
                after_phase = False
            if t is _trace.ForwardEvent:
                self.forward[e.node] = i
            elif t is _trace.BackwardEvent:
                self.backward.setdefault(e.node, []).append(i)
            elif t is _trace.AccumulateEvent:
                self.accumulate.setdefault(e.node, []).append(i)
            elif t is _trace.StepEvent:
                self.steps.append(i)
            elif t is _trace.ClipEvent:
                for c in e.grads:
                    self.grad_changes.setdefault(c.node, []).append((i, c.after))
            if t is _trace.AccumulateEvent:
                self.grad_changes.setdefault(e.node, []).append((i, e.after))


_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _index(replay) -> _Index:
    index = _INDEXES.get(replay)
    if index is None:
        index = _INDEXES[replay] = _Index(replay)
    return index


def _last_before(positions, frame_index: int) -> int | None:
    """The last event index in ``positions`` that frame ``frame_index`` has seen (event i leads to frame i+1)."""
    best = None
    for i in positions or ():
        if i < frame_index:
            best = i
    return best


# -- names -----------------------------------------------------------------------------------------
def _out_symbol(replay, nid: int, backward: bool = False) -> str:
    """``L`` for the loss (in backward: for the node backward started from, whose ∂L/∂out is 1)."""
    if backward:
        return "L" if nid in _index(replay).roots else "out"
    return "L" if nid == replay.loss_node or nid in _index(replay).roots else "out"


_OP_SYMBOLS = {"pow_scalar": "pow", "max_dim": "max", "min_dim": "min", "getitem": "index", "to": "cast"}
_KEEP_SYMBOLS = {"mse_loss", "bce_with_logits", "bce", "nll_loss"}     # pred, y, z: clearer than the op's name


def _symbol(replay, nid: int, default: str, op: str = "") -> str:
    """A leaf by its name (``w``, ``0.weight``, a constant ``2``); an op's result by that op's name
    (``mul``, ``tanh``: the graph's words), or for a loss by the template's symbol (``pred``)."""
    info = replay.nodes.get(nid)
    if info is None:
        return default
    if info.kind == "op" or (info.op and info.kind == "input"):      # (a cast of data is a leaf)
        return default if op in _KEEP_SYMBOLS or not info.op else _OP_SYMBOLS.get(info.op, info.op)
    return replay.node_name(nid)


def _value_used(frame, nid: int):
    """A node's value as forward and backward read it: a stepped parameter's value before the step."""
    ns = frame.nodes.get(nid)
    if ns is None:
        return None
    if ns.param_before is not None:
        return ns.param_before
    return ns.value


def _grad_sym(out: str) -> Sym:
    return Sym(f"∂L/∂{out}", html=f"∂L/∂{'<i>' + out + '</i>' if len(out) == 1 else out}",
               latex=f"\\frac{{\\partial L}}{{\\partial {'L' if out == 'L' else chr(92) + 'mathrm{' + out + '}'}}}",
               compound=True)


def _dl(name: str) -> str:
    """The template of ∂L/∂name (``name`` a placeholder-free text)."""
    return "\\frac{∂L}{∂{_d}}".replace("{_d}", "{" + name + "}")


def _attr_env(info, env_sym: dict, env_num: dict) -> None:
    for key, v in (getattr(info, "attrs", None) or {}).items():
        if isinstance(v, bool) or v is None:
            env_sym[key] = env_num[key] = Sym(str(v))
        elif isinstance(v, (int, float)):
            env_sym[key] = Sym(format_number(v)) if key != "exponent" else Sym(format_number(v))
            env_num[key] = Num(v)
        else:
            env_sym[key] = env_num[key] = Sym(str(v))


def _count(info, x_shape) -> int:
    reduction = (getattr(info, "attrs", None) or {}).get("reduction", "mean")
    return math.prod(x_shape) if reduction == "mean" else 1


# -- forward ---------------------------------------------------------------------------------------
def _forward(replay, frame, nid: int, element) -> Formula | None:
    info = replay.nodes[nid]
    out = frame.nodes[nid].value if nid in frame.nodes else None
    if out is None:
        return None
    rule = RULES.get(info.op)
    opmath = rule.math if rule is not None else None
    out_sym = _out_symbol(replay, nid)
    shape = np.shape(out)
    idx, kept = _pick_kept(element, out)
    result = _at(out, idx)
    title = f"{info.label}: forward" + (f", element {element_text(idx)} of {format_shape(shape)}" if idx else "") + kept
    if opmath is None or len(info.inputs) < len(opmath.inputs) and info.op not in ("stack", "cat"):
        names = ", ".join(replay.node_name(s) for s in info.inputs)
        return build("forward", title, [("{out} = " + (info.op or info.label) + f"({names})",
                                         {"out": Sym(out_sym + element_text(idx))})],
                     [("{r}", {"r": Num(result)})], result, element=idx)
    env_sym: dict = {"out": Sym(out_sym + element_text(idx))}
    env_num: dict = {"out": Num(result)}
    _attr_env(info, env_sym, env_num)
    elementwise = bool(opmath.local) and info.op not in _REDUCING and info.op not in ("where",)
    values = []
    for sym, src in zip(opmath.inputs, info.inputs):
        v = _value_used(frame, src)
        values.append(v)
        name = _symbol(replay, src, sym, info.op)
        src_idx = _broadcast_index(idx, np.shape(v)) if (elementwise and v is not None) else ()
        env_sym[sym] = Sym(name + element_text(src_idx)) if elementwise else Sym(name)
        x = _at(v, src_idx) if v is not None else None
        env_num[sym] = Num(x) if x is not None else env_sym[sym]
    if values:
        env_sym["N"] = Sym("N")
        env_num["N"] = Num(_count(info, np.shape(values[0])) if info.op in _REDUCING
                           else math.prod(np.shape(values[0])) // max(1, math.prod(shape)))
    sym = [("{out} = " + opmath.forward, env_sym)]
    num = _forward_numbers(info, opmath, values, idx, env_num, elementwise)
    num.append(("{r}", {"r": Num(result)}))
    return build("forward", title, sym, num, result, element=idx)


def _forward_numbers(info, opmath, values, idx, env_num, elementwise) -> list:
    op = info.op
    if elementwise and all(v is not None for v in values):
        template = opmath.forward.split(" = ")[-1]
        return [(template, env_num)]
    if any(v is None for v in values):
        return []
    if op in ("addmm", "matmul") and all(np.ndim(v) == 2 for v in values[:2]) and len(idx) == 2:
        x, w = _val(values[0]), _val(values[1])
        i, j = idx
        if not _row_kept(x, i) or (op == "addmm" and not _row_kept(w, j)):
            return []                   # a row a large array's summary does not keep
        row = x[i]
        col = w[j] if op == "addmm" else _column(w, j)
        terms = [(float(a), float(b)) for a, b in zip(row, col)]
        bias = _at(values[2], _broadcast_index(idx, np.shape(values[2]))) if op == "addmm" else None
        return [_sum_of_products(terms, bias, count=len(row))]
    if op in ("sum", "mean") and not (info.attrs or {}).get("dim") and values and np.size(values[0]) <= _TERMS:
        flat = np.asarray(values[0], dtype=np.float64).ravel().tolist()
        env = {f"t{k}": Num(v) for k, v in enumerate(flat)}
        body = " + ".join(f"{{t{k}}}" for k in range(len(flat)))
        return [((f"\\frac{{{body}}}{{{len(flat)}}}" if op == "mean" else body), env)]
    if op in ("mse_loss", "bce_with_logits") and np.size(values[0]) <= 3 and np.shape(values[0]) == np.shape(values[1]):
        xs = np.asarray(values[0], dtype=np.float64).ravel().tolist()
        ys = np.asarray(values[1], dtype=np.float64).ravel().tolist()
        env = {"N": env_num["N"]}
        terms = []
        for k, (a, b) in enumerate(zip(xs, ys)):
            env[f"a{k}"], env[f"b{k}"] = Num(a), Num(b)
            terms.append(f"({{a{k}}} − {{b{k}}})^{{2}}" if op == "mse_loss"
                         else f"[(1 − {{b{k}}}) · {{a{k}}} − log σ({{a{k}}})]")
        if len(terms) == 1:
            return [("\\frac{" + terms[0] + "}{{N}}", env)]
        return [("\\frac{1}{{N}} · (" + " + ".join(terms) + ")", env)]
    return []


def _sum_of_products(terms: list, bias, count: int | None = None) -> tuple:
    """``a0 · b0 + a1 · b1 + … (count terms) + bias``: ``terms`` are the first pairs (all of them,
    or at least the first two of ``count`` when a summarised array keeps only its first rows)."""
    count = len(terms) if count is None else count
    env = {}
    parts = []
    shown = terms if count <= _TERMS else terms[:2]
    for k, (a, b) in enumerate(shown):
        env[f"a{k}"], env[f"b{k}"] = Num(a), Num(b)
        parts.append(f"{{a{k}}} · {{b{k}}}")
    if len(shown) < count:
        parts.append(f"… ({count} terms)")
    if bias is not None:
        env["bias"] = Num(bias)
        parts.append("{bias}")
    return " + ".join(parts), env


# -- backward --------------------------------------------------------------------------------------
def _backward_edges(replay, frame, event_index: int, element, only_src=None) -> list[Formula]:
    e = replay.events[event_index]
    out = []
    seen = []
    for src in e.inputs:
        if src in seen or (only_src is not None and src != only_src):
            continue
        seen.append(src)
        f = _backward_edge(replay, frame, e, src, element)
        if f is not None:
            out.append(f)
    return out


def _backward_edge(replay, frame, e, src: int, element) -> Formula | None:
    nid = e.node
    positions = [p for p, s in enumerate(e.inputs) if s == src and e.grad_inputs[p] is not None]
    if not positions:
        return None
    info = replay.nodes.get(nid)
    rule = RULES.get(info.op) if info is not None else None
    opmath = rule.math if rule is not None else None
    total = _val(e.grad_inputs[positions[0]])
    for p in positions[1:]:
        total = total + _val(e.grad_inputs[p])
    in_shape = np.shape(total)
    idx_in, kept = _pick_kept(element, total)
    result = _at(total, idx_in)
    g = _val(e.grad_output)
    out_sym = _out_symbol(replay, nid, backward=True)
    src_name = _symbol(replay, src, opmath.inputs[positions[0]] if opmath is not None
                       and positions[0] < len(opmath.inputs) else replay.node_name(src), info.op if info else "")
    lhs_env = {"_x": Sym(src_name + element_text(idx_in))}
    lhs = (_dl("_x"), lhs_env)
    title = (f"{info.label if info else nid} → {replay.node_name(src)}: backward"
             + (f", element {element_text(idx_in)} of {format_shape(in_shape)}" if idx_in else "") + kept)
    gsym = _grad_sym(out_sym)
    root = out_sym == "L" and g.size == 1 and float(g.ravel()[0]) == 1.0
    if opmath is None:
        return build("backward", title, [lhs], [("{r}", {"r": Num(result)})], result, element=idx_in)
    sym_parts, env_sym, env_num = [], {"g": Sym("1") if root else gsym}, {}
    chain_parts = []
    elementwise = bool(opmath.local) and all(opmath.local[p] is not None for p in positions
                                             if p < len(opmath.local))
    _attr_env(info, env_sym, env_num)
    values = [_value_used(frame, s) for s in info.inputs]
    out_value = frame.nodes[nid].value if nid in frame.nodes else None
    for sym, s in zip(opmath.inputs, info.inputs):
        env_sym[sym] = Sym(_symbol(replay, s, sym, info.op))
    env_sym["out"] = Sym(out_sym)
    env_sym["N"] = Sym("N")
    terms_env: dict = {}
    for p in positions:
        if p >= len(opmath.inputs):
            continue
        sym = opmath.inputs[p]
        if elementwise:
            local = opmath.local[p]
            factor = _factor(local)
            chain_parts.append(("" if root else "\\frac{∂L}{∂{out}} · ") + "\\frac{∂{out}}{∂{" + sym + "}}")
            sym_parts.append(factor if root else ("{g}" + (" · " + factor if local != "1" else "")
                                                  if local != "−1" else "−{g}"))
            sources = [()] if info.op in _REDUCING else _sources(idx_in, in_shape, g.shape)
            if isinstance(sources, int) or any(v is None for v in values):
                continue
            for j in sources:
                env = dict(env_num)
                for s2, v in zip(opmath.inputs, values):
                    env[s2] = Num(_at(v, _broadcast_index(idx_in if info.op in _REDUCING else j, np.shape(v))))
                if out_value is not None:
                    env["out"] = Num(_at(out_value, j if np.ndim(out_value) else ()))
                env["N"] = Num(_count(info, np.shape(values[0])))
                env["g"] = Num(_at(g, j if g.ndim else ()))
                k = len(terms_env)
                template = _suffix(factor if root else ("{g}" + (" · " + factor if local != "1" else "")
                                                        if local != "−1" else "−{g}"), k)
                terms_env[k] = (template, {f"{name}_{k}": value for name, value in env.items()})
            if any(len(np.shape(v)) < len(g.shape) or np.shape(v) != g.shape for v in values[p:p + 1]) \
                    and info.op not in _REDUCING:
                sym_parts[-1] = "Σ " + sym_parts[-1]
                chain_parts[-1] = "Σ " + chain_parts[-1]
        else:
            template = opmath.grads[p] if p < len(opmath.grads) else None
            if template is None:
                continue
            sym_parts.append(template)
            numbers = _backward_numbers(info, values, g, p, idx_in)
            if numbers is not None:
                terms_env[len(terms_env)] = numbers
    if not sym_parts:
        return None
    sym = [lhs]
    if chain_parts and not root:
        sym.append((" + ".join(chain_parts), env_sym))
    sym.append((" + ".join(sym_parts), env_sym))
    num = []
    if terms_env:
        env = {}
        for _t, e2 in terms_env.values():
            env.update(e2)
        num.append((" + ".join(t for t, _e in terms_env.values()), env))
    num.append(("{r}", {"r": Num(result)}))
    return build("backward", title, sym, num, result, element=idx_in)


def _factor(local: str) -> str:
    """A local derivative as a factor of a product: in parentheses when it is a sum (at its top level:
    not inside parentheses, an exponent or a fraction)."""
    top = "".join(n for n in _parse(local) if type(n) is str)
    depth, bare = 0, []
    for c in top:
        depth += {"(": 1, ")": -1}.get(c, 0)
        bare.append(c if depth == 0 else "_")
    bare = "".join(bare)
    return f"({local})" if " + " in bare or " − " in bare else local


def _suffix(template: str, k: int) -> str:
    """``template`` with every placeholder renamed ``name_k`` (one term of a sum)."""
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c == "{" and (i == 0 or template[i - 1] not in "^_}") and not template.startswith("{", i + 1):
            j = template.index("}", i)
            name = template[i + 1:j]
            if name.replace("_", "").isalnum() and not template[max(0, i - 5):i].endswith(("\\frac", "\\sqrt")):
                out.append("{" + name + f"_{k}" + "}")
                i = j + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _backward_numbers(info, values, g, p: int, idx_in: tuple):
    """The sum behind one element of a matrix product's or a mean's gradient, where it is short."""
    op = info.op
    if any(v is None for v in values):
        return None
    if op == "mean" and g.size == 1:
        n = np.size(values[0]) // max(1, g.size)
        return "\\frac{{g}}{{n}}", {"g": Num(float(g.ravel()[0])), "n": Num(n)}
    if op == "addmm" and g.ndim == 2 and len(idx_in) >= 1:
        x, w = _val(values[0]), _val(values[1])
        if p == 0 and len(idx_in) == 2:                  # ∂L/∂x[i,k] = Σ_j G[i,j] W[j,k]
            i, k = idx_in
            if not _row_kept(g, i):
                return None
            return _sum_of_products(list(zip(g[i].tolist(), _column(w, k))), None, count=g.shape[1])
        if p == 1 and len(idx_in) == 2:                  # ∂L/∂W[j,k] = Σ_i G[i,j] x[i,k]
            j, k = idx_in
            return _sum_of_products(list(zip(_column(g, j), _column(x, k))), None, count=g.shape[0])
        if p == 2:                                       # ∂L/∂b[j] = Σ_i G[i,j]
            col, count = _column(g, idx_in[-1]), g.shape[0]
            shown = col if count <= _TERMS else col[:2]
            env = {f"t{k}": Num(v) for k, v in enumerate(shown)}
            body = " + ".join(f"{{t{k}}}" for k in range(len(shown)))
            return body + (f" + … ({count} terms)" if len(shown) < count else ""), env
    if op == "matmul" and g.ndim == 2 and len(idx_in) == 2:
        a, b = _val(values[0]), _val(values[1])
        if a.ndim == 2 and b.ndim == 2:
            i, k = idx_in
            if p == 0:
                if not (_row_kept(g, i) and _row_kept(b, k)):
                    return None
                return _sum_of_products(list(zip(g[i].tolist(), b[k].tolist())), None, count=g.shape[1])
            return _sum_of_products(list(zip(_column(a, i), _column(g, k))), None, count=g.shape[0])
    return None


# -- accumulation, zero_grad, scaler, clipping, scheduler --------------------------------------------
def _accumulate(replay, e, element) -> Formula:
    name = replay.node_name(e.node)
    idx, kept = _pick_kept(element, e.after)
    result = _at(e.after, idx)
    label = name + ".grad" + element_text(idx)
    env = {"p": Sym(label), "x": Sym(name + element_text(idx))}
    title = f"{name}.grad: accumulation" + (f", element {element_text(idx)}" if idx else "") + kept
    if e.before is None:
        return build("accumulate", title + " (it was None)", [("{p} ← " + _dl("x"), env)],
                     [("{r}", {"r": Num(result)})], result, element=idx)
    before, added = _at(e.before, idx), _at(e.added, _broadcast_index(idx, np.shape(e.added)))
    return build("accumulate", title, [("{p} ← {p} + " + _dl("x"), env)],
                 [("{a} + {b}", {"a": Num(before), "b": Num(added)}), ("{r}", {"r": Num(result)})],
                 result, element=idx)


def _zero_grad(replay, e) -> list[Formula]:
    what = "None" if e.set_to_none else "0"
    out = []
    for c in e.cleared[:3]:
        name = replay.node_name(c.node)
        out.append(build("zero_grad", f"zero_grad(set_to_none={e.set_to_none})",
                         [(f"{{p}} ← {what}", {"p": Sym(name + ".grad")})], []))
    return out


def _scaler(e) -> list[Formula]:
    rule = GradScaler.UPDATE_RULE
    env_sym = {"s": Sym("s"), "gf": Sym("growth"), "bf": Sym("backoff")}
    title = "GradScaler.update()"

    def line(key: str, note: str, numbers: list, computed=None) -> Formula:
        return build("scaler", title + ": " + note, [(rule[key], env_sym)],
                     numbers + [("{r}", {"r": Num(e.scale_after)})], e.scale_after, computed)

    if getattr(e, "new_scale", False):
        return [line("new_scale", "the scale set by hand", [])]
    if e.found_inf:
        return [line("backoff", "inf/nan found, the scale backs off",
                     [("{a} · {b}", {"a": Num(e.scale_before), "b": Num(e.backoff_factor)})],
                     e.scale_before * e.backoff_factor)]
    if e.scale_after != e.scale_before:
        return [line("growth", f"{e.growth_interval} clean steps in a row, the scale grows",
                     [("{a} · {b}", {"a": Num(e.scale_before), "b": Num(e.growth_factor)})],
                     e.scale_before * e.growth_factor)]
    return [line("keep", f"no inf/nan, {e.tracker_after} of {e.growth_interval} clean steps before it grows", [],
                 e.scale_before)]


def _clip(replay, e, node, element) -> list[Formula]:
    out = []
    if e.kind == "norm" and e.total_norm is not None and e.clip_coef is not None:
        env = {"c": Sym("c"), "m": Sym("max_norm"), "n": Sym("‖g‖", latex="\\|g\\|")}
        out.append(build("clip", "clip_grad_norm_: the clip coefficient",
                         [("{c} = min(1, \\frac{{m}}{{n} + 10^{−6}})", env)],
                         [("min(1, \\frac{{m}}{{n} + 10^{−6}})", {"m": Num(e.limit), "n": Num(e.total_norm)}),
                          ("{r}", {"r": Num(e.clip_coef)})], e.clip_coef,
                         min(1.0, e.limit / (e.total_norm + 1e-6))))
    grads = [c for c in e.grads if node is None or c.node == node][:1]
    for c in grads:
        idx = _pick(element, np.shape(c.after))
        name = replay.node_name(c.node) + ".grad" + element_text(idx)
        before, after = _at(c.before, idx), _at(c.after, idx)
        if e.kind == "norm" and e.clip_coef is not None:
            out.append(build("clip", f"{replay.node_name(c.node)}.grad clipped",
                             [("{p} ← {c} · {p}", {"p": Sym(name), "c": Sym("c")})],
                             [("{a} · {b}", {"a": Num(min(1.0, e.clip_coef)), "b": Num(before)}),
                              ("{r}", {"r": Num(after)})], after, element=idx))
        else:
            out.append(build("clip", f"{replay.node_name(c.node)}.grad clipped to ±{format_number(e.limit)}",
                             [("{p} ← clamp({p}, −{c}, {c})", {"p": Sym(name), "c": Sym("clip_value")})],
                             [("clamp({b}, {lo}, {hi})", {"b": Num(before), "lo": Num(-e.limit), "hi": Num(e.limit)}),
                              ("{r}", {"r": Num(after)})], after, element=idx))
    return out


def _scheduler(e) -> list[Formula]:
    if not e.lr_before:
        return []
    before, after = e.lr_before[0], e.lr_after[0]
    factor = after / before if before else None
    title = f"{e.scheduler}.step() (epoch {e.epoch})" + (": the factor is lr after / lr before" if factor else "")
    if factor is None:
        return [build("scheduler", title, [("{lr} ← {a}", {"lr": Sym("lr"), "a": Num(after)})], [], after)]
    return [build("scheduler", title, [("{lr} ← {lr} · {f}", {"lr": Sym("lr"), "f": Sym("factor")})],
                  [("{b} · {f}", {"b": Num(before), "f": Num(factor)}), ("{a}", {"a": Num(after)})], after,
                  before * factor)]


def _manual(replay, e, element) -> Formula:
    idx = _pick(element, np.shape(e.after))
    name = replay.node_name(e.node) + element_text(idx)
    before, after = _at(e.before, idx), _at(e.after, idx)
    return build("manual_update", f"{replay.node_name(e.node)}.{e.op}(…) under no_grad",
                 [("{w} ← {w} + Δ", {"w": Sym(name)})],
                 [("{a} + {d}", {"a": Num(before), "d": Num(after - before)}), ("{r}", {"r": Num(after)})],
                 after, element=idx)


# -- the public API --------------------------------------------------------------------------------
def formulas_for_frame(replay, frame, *, node: int | None = None, element=None) -> list[Formula]:
    """With ``node=None``: the formulas of the event that led to ``frame`` (its forward, each input
    edge of its backward, the accumulation, the step of one parameter, the scaler's update...).
    With ``node``: that node's formulas as of ``frame`` (its forward, its backward per input edge,
    its last accumulation and step).  ``element`` picks a tensor's element (flat index or tuple)."""
    if node is not None:
        return _node_formulas(replay, frame, node, element)
    e = frame.event
    if e is None:
        return []
    t = type(e)
    if t is _trace.ForwardEvent:
        f = _forward(replay, frame, e.node, element)
        return [f] if f is not None else []
    if t is _trace.BackwardEvent:
        return _backward_edges(replay, frame, frame.index - 1, element)
    if t is _trace.AccumulateEvent:
        return [_accumulate(replay, e, element)]
    if t is _trace.StepEvent:
        return step_formulas(replay, e, None, element, _ungraded_grad(replay, frame.index - 1))
    if t is _trace.ZeroGradEvent:
        return _zero_grad(replay, e)
    if t is _trace.ScalerEvent:
        return _scaler(e)
    if t is _trace.ClipEvent:
        return _clip(replay, e, None, element)
    if t is _trace.SchedulerEvent:
        return _scheduler(e)
    if t is _trace.ManualUpdateEvent:
        return [_manual(replay, e, element)]
    if t is _trace.BackwardCallEvent:
        return [build("backward_call", "backward() starts from the loss", [("\\frac{∂L}{∂L}", {})],
                      [("1", {})], 1.0)]
    return []


def _ungraded_grad(replay, step_index: int):
    """``node -> its .grad before the step`` (what a GradScaler unscaled): the last accumulation or clip before it."""
    def before_step(nid: int, until: int | None = None):
        """(.grad before event ``until`` (default: the step), whether it changed again before the step)."""
        until = step_index if until is None else until
        found, changed = None, False
        for i, after in _index(replay).grad_changes.get(nid, ()):
            if i < until:
                found = after
            elif i < step_index:
                changed = True
        return found, changed
    return before_step


def _node_formulas(replay, frame, nid: int, element) -> list[Formula]:
    if nid not in replay.nodes:
        return []
    index = _index(replay)
    out: list[Formula] = []
    info = replay.nodes[nid]
    if info.kind == "op":
        fwd = index.forward.get(nid)
        if fwd is not None and fwd < frame.index:
            f = _forward(replay, frame, nid, element)
            if f is not None:
                out.append(f)
        bwd = _last_before(index.backward.get(nid), frame.index)
        if bwd is not None:
            out.extend(_backward_edges(replay, frame, bwd, element))
    step = _last_before(index.steps, frame.index)
    step_element = element
    if element is None and step is not None:       # every formula of a stepped parameter: the element that moved most
        element = next((largest_update(u) for u in replay.events[step].updates if u.node == nid), None)
    acc = _last_before(index.accumulate.get(nid), frame.index)
    if acc is not None:
        out.append(_accumulate(replay, replay.events[acc], element))
    if step is not None:
        e = replay.events[step]
        if any(u.node == nid for u in e.updates) or (e.skipped and nid in replay.param_names):
            out.extend(step_formulas(replay, e, nid, step_element, _ungraded_grad(replay, step)))
    return out


def edge_formula(replay, frame, src: int, dst: int) -> Formula | None:
    """What the edge ``src → dst`` carries at ``frame``: the gradient ``dst`` sent back to ``src``
    once its backward ran, else ``dst``'s forward once it ran, else None."""
    if src not in replay.nodes or dst not in replay.nodes:
        return None
    index = _index(replay)
    bwd = _last_before(index.backward.get(dst), frame.index)
    if bwd is not None:
        found = _backward_edges(replay, frame, bwd, None, only_src=src)
        if found:
            return found[0]
    fwd = index.forward.get(dst)
    if fwd is not None and fwd < frame.index and replay.nodes[dst].kind == "op":
        return _forward(replay, frame, dst, None)
    return None
