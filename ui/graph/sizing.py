"""How big each drawn box is: decided once per Replay from every value it will show, so that a node
never changes size while the cursor moves.

Text is sized in scene pixels (not points, which round differently per screen), chosen so that the
tutorial, fitted into the main window's graph panel (about 0.85 zoom), reads at >= 10 px.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PySide6 import QtGui

from gradviz.view.folding import Fold, FoldedGraph
from gradviz.view.replay import NodeState, Replay

from .. import theme as T
from . import text

# -- geometry (scene units = pixels at zoom 1) ---------------------------------------------------
PAD = 7.0
CAPTION_H = 21.0            # top line of a node: grad_fn name / parameter name
ROWS_Y = CAPTION_H + 2.0    # where the value row starts
HEAT_ROW_H = 22.0           # a row holding a heat map
HEAT_W, HEAT_H = 32.0, 16.0
PILL_MIN_W, PILL_H = 26.0, 28.0   # the op symbol's pill, left of the value rows
PILL_GAP = 6.0
MAX_TEXT_CHARS = 22         # longer values are drawn as a heat map
MAX_TEXT_ELEMS = 12         # so are values with more elements than this, whatever their text
BADGE_GAP = 5.0
BADGE_PAD_X, BADGE_PAD_Y = 8.0, 4.0   # text inside a .grad badge
BADGE_LINE_GAP = 3.0        # extra leading between badge lines: the mono font's own is tight
BADGE_RULE_GAP = 5.0        # room for the rule above an accumulation's "= sum" line
BADGE_MIN_CHARS = 12        # a badge may be this wide even under a narrower node
LAYER_GAP = 36.0            # room for an arrow; small graphs fit the panel at a readable zoom
LAYER_GAP_LARGE = 48.0      # large graphs: more room for the ports of many edges
NODE_GAP = 22.0
SMALL_GRAPH = 48            # up to this many nodes, columns are closer and edge labels longer
SLACK_CHARS = {"param": 2, "op": 1}   # room for a sign or a digit more in a later iteration
GROW_CHARS = 3              # a box that outgrows its room grows this many characters more (see grow)
WIDEST_HEAT_NODES = 300     # in a graph of more nodes, heat maps' captions get room for any value

# -- legibility ------------------------------------------------------------------------------------
MIN_TEXT_PX = 9.0           # no text is drawn smaller than this on screen: below, less detail shows
OVERVIEW_PX = 18            # zoomed out, a node shows only its name (or op symbol) in this font
SYMBOL_WORD_PX = 14         # an op symbol that is a word (tanh, xWᵀ+b) in its pill


@dataclass
class Spec:
    """What a displayed node is: decided once per Replay, so its size never changes while playing."""
    key: int                       # node id, or a negative id for a collapsed module box
    kind: str                      # "op", "param", "input", "module"
    title: str                     # parameter / input name, op grad_fn name, "Linear 0"
    symbol: str = ""
    shape: str = ""
    heat: bool = False             # values drawn as a heat map (else as text)
    value_lines: int = 1
    grad_row: bool = False         # ops (and modules) show the gradient they received
    badge: bool = False
    badge_lines: int = 1
    loss: bool = False
    width: float = 160.0           # the body's width (the layout reserves max(body, badge))
    body_h: float = 48.0
    height: float = 48.0           # body + badge: what the layout reserves
    members: tuple = ()            # for module boxes: the node ids inside
    output: int | None = None      # for module boxes: the member whose value leaves the box
    tooltip: str = ""
    pill_w: float = 0.0            # ops: the symbol pill's width
    layout_w: float = 0.0          # what the layout reserves: the body or the widest badge


class Metrics:
    """The graph's fonts, in scene pixels, and the measures of the text drawn with them."""

    def __init__(self):
        # caption (grad_fn), title, values, op symbol, badge, edge label, loss tab, overview name
        self.fonts = (T.graph_font(12), T.graph_font(13, bold=True), T.graph_mono(13), T.graph_font(18, bold=True),
                      T.graph_mono(12), T.graph_mono(12), T.graph_font(12, bold=True),
                      T.graph_font(OVERVIEW_PX, bold=True))
        # The zooms at which the smallest detail text, and the overview names, read at MIN_TEXT_PX.
        smallest = min(self.fonts[i].pixelSize() for i in (0, 1, 2, 4, 5, 6))
        self.detail_zoom = MIN_TEXT_PX / min(smallest, SYMBOL_WORD_PX)
        self.overview_zoom = MIN_TEXT_PX / OVERVIEW_PX
        fm = QtGui.QFontMetricsF(self.fonts[2])
        self.char_w = fm.horizontalAdvance("0")
        self.line_h = math.ceil(fm.height()) + 1
        fm = QtGui.QFontMetricsF(self.fonts[4])
        self.badge_char_w = fm.horizontalAdvance("0")
        self.badge_line_h = math.ceil(fm.height())
        self.badge_bold = T.graph_mono(self.fonts[4].pixelSize(), bold=True)
        self._badge_metrics = (fm, QtGui.QFontMetricsF(self.badge_bold))

    def badge_size(self, badge: str) -> tuple[float, float]:
        """Width and height of a ``.grad`` badge showing ``badge``, padding included (see items.BadgeText)."""
        lines = badge.split("\n")
        sum_at = text.sum_start(lines)
        fm, bold = self._badge_metrics
        width = max((bold if sum_at is not None and i >= sum_at else fm).horizontalAdvance(line)
                    for i, line in enumerate(lines))
        height = (len(lines) * self.badge_line_h + (len(lines) - 1) * BADGE_LINE_GAP
                  + (BADGE_RULE_GAP if sum_at is not None else 0))
        return math.ceil(width) + 2 * BADGE_PAD_X, height + 2 * BADGE_PAD_Y

    def badge_chars(self, width: float) -> int:
        """Characters a badge line may take: its node's width, or a little more under a narrow node."""
        return max(BADGE_MIN_CHARS, int((width - 2 * BADGE_PAD_X) / self.badge_char_w))

    def symbol_font(self, symbol: str) -> QtGui.QFont:
        """The op symbol's font: big for a glyph (×, +, @), smaller for a word (tanh, mean, xWᵀ+b)."""
        font = QtGui.QFont(self.fonts[3])
        if len(symbol) > 2:
            font.setPixelSize(SYMBOL_WORD_PX)
        return font

    def pill_width(self, symbol: str) -> float:
        return max(PILL_MIN_W, math.ceil(QtGui.QFontMetricsF(self.symbol_font(symbol)).horizontalAdvance(symbol)) + 12)

    def text_width(self, font: int, line: str) -> float:
        return QtGui.QFontMetricsF(self.fonts[font]).horizontalAdvance(line)


def layer_gap(n_nodes: int) -> float:
    """Room between columns: an arrow and a short gradient label.  Columns are kept close so that a
    small graph fits the panel at a readable zoom; a label too long for its gap shows only while
    its edge is active (drawn over the neighbouring boxes for that moment)."""
    return LAYER_GAP if n_nodes <= SMALL_GRAPH else LAYER_GAP_LARGE


def make_specs(replay: Replay, graph: FoldedGraph, metrics: Metrics, slack: bool = True,
               keys=None) -> dict[int, Spec]:
    """One spec per drawn box (of ``keys``, default all), in ``graph.keys`` order: sizes come from every
    value it shows in this replay.  ``slack`` leaves room for a sign or a digit more in a later iteration."""
    loss_nodes = set(replay.loss_nodes)
    widest = len(replay.nodes) > WIDEST_HEAT_NODES
    specs = {}
    for key in (graph.keys if keys is None else keys):
        fold = graph.folds.get(key)
        specs[key] = _module_spec(key, fold, metrics) if fold is not None else \
            _node_spec(replay, key, key in loss_nodes, metrics, slack, widest)
    return specs


def _widest_number(dtype: str):
    """The number of ``dtype`` whose text reads longest (a sign, four digits, a two-digit exponent;
    three for float64)."""
    return np.float64(-1.2345e-100) if "64" in str(dtype) else np.float32(-1.2345e-05)


def _widest(shown, dtype: str):
    """``shown`` with every array a heat map's caption can show replaced by the one whose mean reads
    longest (``μ -1.2e-05``: two digits, a sign, a two-digit exponent; three for float64)."""
    w = _widest_number(dtype)
    accumulations = {(a[0] is None, a[1] is None): (None if a[0] is None else w, None if a[1] is None else w, w)
                     for a in shown.accumulations}
    return dataclasses.replace(shown, values=(w,) * bool(shown.values), steps=((w, w),) * bool(shown.steps),
                               grads=(w,) * bool(shown.grads), accumulations=tuple(accumulations.values()))


def _node_spec(replay: Replay, nid: int, loss: bool, metrics: Metrics, slack: bool, widest: bool = False) -> Spec:
    info = replay.nodes[nid]
    module = replay.modules.get(nid, "")
    kind = info.kind if info.kind in ("op", "param", "input") else "input"
    if nid in replay.param_names:
        kind = "param"
    elif info.inputs:
        kind = "op"                    # an op on data only (1 - y): drawn as an op in grey
    shown = replay.contents(nid)
    size = int(np.prod(info.shape)) if info.shape else 1
    texts = []
    if size <= MAX_TEXT_ELEMS:        # a heat map anyway: formatting every element would be wasted
        texts += ["= " + text.value_text(v) for v in shown.values]
        texts += [text.step_text(before, after) for before, after in shown.steps]
        texts += ["∇ " + text.value_text(g) for g in shown.grads]
    lines = [line for t in texts for line in t.split("\n")]
    heat = (size > 1 and (any(len(line) > MAX_TEXT_CHARS for line in lines)
                          or max((text.num_lines(t) for t in texts), default=1) > 2)) or size > MAX_TEXT_ELEMS
    value_lines = 1 if heat else max((text.num_lines(t) for t in texts), default=1)
    chars = max((len(line) for line in lines), default=8) if not heat else 0
    if widest and size == 1:                  # a large graph: a number's room for any value, as its
        w = _widest_number(info.dtype)        # heat maps' (a box that grew later meant a relayout)

        def wide(v):
            return np.full(np.shape(v), w)
        chars = max([chars] + [2 + len(text.value_text(wide(v))) for v in shown.values + shown.grads]
                    + [len(text.step_text(wide(a), wide(b))) for a, b in shown.steps])
    heat_chars = 0
    if heat and widest:                       # a large graph: room for any value, so sizes never change
        shown = _widest(shown, info.dtype)
    if heat:                                  # the text beside a heat map: its mean
        heat_chars = max([len(text.mean_text(v)) for v in shown.values]
                         + [len(text.step_heat_text(before, after)) for before, after in shown.steps]
                         + [2 + len(text.mean_text(g)) for g in shown.grads] + [8])
    title = replay.node_name(nid)
    if kind == "input" and replay.is_constant(nid):
        title = "constant"                    # a Python number in the expression
    title_w = metrics.text_width(0 if kind == "op" else 1, title if kind != "op" else info.label)
    shape = text.shape_text(info.shape) if info.shape and math.prod(info.shape) > 1 else ""
    shape_w = metrics.text_width(0, shape) + 10 if shape else 0
    symbol = replay.symbol(nid) if kind == "op" else ""
    pill_w = metrics.pill_width(symbol) if kind == "op" else 0.0
    x0 = PAD + pill_w + PILL_GAP if kind == "op" else PAD
    # room for a sign or a digit more in a later iteration (a parameter's "before → after" two)
    extra = SLACK_CHARS.get(kind, 0) if slack else 0
    width = max(x0 + (chars + extra) * metrics.char_w + PAD if not heat else 0,
                PAD + title_w + shape_w + PAD,
                x0 + HEAT_W + 6 + (heat_chars + extra) * metrics.char_w + PAD if heat else 0,
                {"op": 96.0, "param": 64.0}.get(kind, 56.0))
    width = math.ceil(width / 2) * 2
    row_h = HEAT_ROW_H if heat else metrics.line_h * value_lines
    grad_row = kind == "op" and info.requires_grad
    rows_h = row_h + (row_h + 1 if grad_row else 0)
    if kind == "op":
        rows_h = max(rows_h, PILL_H)
    body_h = ROWS_Y + rows_h + PAD - 1
    badge = nid in replay.badge_nodes
    badge_lines, layout_w, badge_h = 1, width, 0.0
    if badge:
        chars_b = metrics.badge_chars(width)
        # a large graph: room for any value (as for its heat maps), from at most four widest stand-ins,
        # not from every accumulation (a leaf read by 222 micro-batches: 5-15 ms of a sizing slice)
        accumulations = _widest(shown, info.dtype).accumulations if widest else shown.accumulations
        texts_b = [text.badge_text(NodeState(grad_badge=a[2], accumulation=a), heat, chars_b)
                   for a in accumulations] + ["grad: None"]
        badge_lines = max(text.num_lines(t) for t in texts_b)
        sizes = [metrics.badge_size(t) for t in texts_b]
        layout_w = max(width, math.ceil(max(w for w, _h in sizes)))
        badge_h = BADGE_GAP + max(h for _w, h in sizes)
    tip = (f"{title}\n{info.label if kind == 'op' else kind} · shape {tuple(info.shape)} · {info.dtype}"
           + (f"\nmodule {module}" if module else ""))
    return Spec(nid, kind, title if kind != "op" else info.label, symbol, shape, heat, value_lines, grad_row,
                badge, badge_lines, loss, width, body_h, body_h + badge_h, tooltip=tip, pill_w=pill_w,
                layout_w=layout_w)


def _module_spec(key: int, fold: Fold, metrics: Metrics) -> Spec:
    """A folded module's box: a heat map of its output's value and gradient, a badge per parameter."""
    body_h = ROWS_Y + 2 * HEAT_ROW_H + 1 + PAD - 1
    ops_w = metrics.text_width(0, f"{fold.n_ops} ops") + 10
    width = max(PAD + HEAT_W + 6 + 14 * metrics.char_w + PAD,
                PAD + metrics.text_width(1, fold.label) + ops_w + PAD)
    width = math.ceil(width / 2) * 2
    listed = ", ".join(fold.param_names) or "none"
    tip = f"{fold.label}: {fold.n_ops} ops, parameters {listed}\n(double-click to expand)"
    ops = f"{fold.n_ops} op" + ("s" if fold.n_ops != 1 else "")
    params = fold.param_names
    sample = "\n".join(f"{p.split('.')[-1]}.grad: μ -0.0000" for p in params)
    bw, bh = metrics.badge_size(sample) if params else (0.0, 0.0)
    return Spec(key, "module", fold.label, "", ops, True, 1, True, bool(params), max(1, len(params)), False,
                width, body_h, body_h + (BADGE_GAP + bh if params else 0), fold.members, fold.output, tip,
                layout_w=max(width, math.ceil(bw)))


def fits(new: Spec, old: Spec) -> bool:
    """``new`` can be shown in the items built for ``old``: same look, no more room needed."""
    sizes = ("width", "body_h", "height", "layout_w")
    return (all(getattr(new, f.name) == getattr(old, f.name) for f in dataclasses.fields(Spec) if f.name not in sizes)
            and all(getattr(new, f) <= getattr(old, f) for f in sizes) and new.body_h == old.body_h)


def grow(old: Spec, new: Spec, metrics: Metrics) -> Spec:
    """The spec a box keeps when the next iteration of the same graph shows ``new``: ``old`` when the
    values fit, else room for both -- a heat map once either needs one, the larger of each size, and a
    few characters more -- so that sizes never shrink and settle after a few iterations (items are
    then reused as they are: no relayout)."""
    if fits(new, old):
        return old
    heat = old.heat or new.heat
    base, other = (new, old) if new.heat == heat else (old, new)
    same_look = other.heat == heat
    value_lines = max(base.value_lines, other.value_lines) if same_look else base.value_lines
    body_h = max(base.body_h, other.body_h) if same_look else base.body_h
    pad = math.ceil(GROW_CHARS * metrics.char_w / 2) * 2
    width = old.width if new.width <= old.width else new.width + pad
    layout_w = old.layout_w if new.layout_w <= old.layout_w else max(new.layout_w + pad, width)
    badge_h = max(old.height - old.body_h, new.height - new.body_h)
    return dataclasses.replace(base, heat=heat, value_lines=value_lines,
                               badge_lines=max(old.badge_lines, new.badge_lines), width=width,
                               layout_w=max(layout_w, width), body_h=body_h, height=body_h + badge_h)
