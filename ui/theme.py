"""Colours and fonts the views share (a light theme; the code panel uses the same palette).

One colour per idea, everywhere: blue = forward (values), orange = backward (gradients),
green = optimizer.step(), violet = zero_grad(), amber = parameters, rose = the loss.
"""
from __future__ import annotations

import numpy as np
from PySide6 import QtGui

# -- surfaces and text --------------------------------------------------------------------------
BACKGROUND = "#f8fafc"
CANVAS_DOT = "#e2e8f0"
TEXT = "#0f172a"
TEXT_MUTED = "#475569"
TEXT_FAINT = "#94a3b8"
PANEL = "#ffffff"
PANEL_BORDER = "#e2e8f0"

# -- ideas ----------------------------------------------------------------------------------------
FORWARD = "#2563eb"
FORWARD_SOFT = "#dbeafe"
BACKWARD = "#ea580c"
BACKWARD_SOFT = "#ffedd5"
STEP = "#16a34a"
STEP_SOFT = "#dcfce7"
ZERO = "#7c3aed"
ZERO_SOFT = "#ede9fe"
LOSS = "#e11d48"
LOSS_SOFT = "#fff1f2"
LOSS_PILL = "#ffe4e6"

PHASE_COLOURS = {"zero_grad": ZERO, "zero_grad_after": ZERO, "forward": FORWARD, "loss": LOSS,
                 "backward": BACKWARD, "step": STEP, "": TEXT_MUTED}

# -- nodes --------------------------------------------------------------------------------------
OP_FILL = "#ffffff"
OP_BORDER = "#94a3b8"
OP_SYMBOL_FILL = "#eef2ff"
OP_SYMBOL_TEXT = "#3730a3"
PARAM_FILL = "#fffbeb"
PARAM_BORDER = "#d97706"
PARAM_TEXT = "#78350f"
INPUT_FILL = "#f1f5f9"
INPUT_BORDER = "#cbd5e1"
INPUT_PILL = "#e2e8f0"
MODULE_FILL = "#f5f3ff"
MODULE_BORDER = "#8b5cf6"
IDLE_ALPHA = 0.45                      # nodes not reached yet are drawn faded

# -- edges --------------------------------------------------------------------------------------
EDGE_IDLE = "#cbd5e1"
EDGE_DONE = "#64748b"
EDGE_LABEL_BG = "#ffffff"

# -- heat maps: a diverging blue-white-red map over [-max|x|, max|x|] -------------------------------
_STOPS = np.array([[37, 99, 235], [239, 246, 255], [255, 255, 255], [254, 242, 242], [220, 38, 38]], float)


def _build_lut() -> np.ndarray:
    t = np.linspace(0.0, 1.0, 256)
    pos = np.linspace(0.0, 1.0, len(_STOPS))
    rgb = np.stack([np.interp(t, pos, _STOPS[:, c]) for c in range(3)], axis=1).astype(np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


HEAT_LUT = _build_lut()                # 256 ARGB32 words, index 128 = zero


def heat_image(a: np.ndarray) -> QtGui.QImage:
    """A small QImage of ``a`` (one pixel per element; >2-D and 1-D arrays folded to 2-D)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    elif a.ndim > 2:
        a = a.reshape(-1, a.shape[-1])
    finite = np.isfinite(a)
    scale = np.abs(a[finite]).max() if finite.any() else 0.0
    idx = np.full(a.shape, 128, dtype=np.int64)
    if scale > 0:
        idx = np.clip(np.rint(np.where(finite, a, 0.0) / scale * 127.5 + 127.5), 0, 255).astype(np.int64)
    argb = np.ascontiguousarray(HEAT_LUT[idx])
    argb[~finite] = 0xFF111827
    h, w = argb.shape
    img = QtGui.QImage(argb.data, w, h, 4 * w, QtGui.QImage.Format.Format_ARGB32)
    return img.copy()                  # own the pixels: the numpy buffer goes away


# -- fonts ----------------------------------------------------------------------------------------
def ui_font(point_size: float = 9.0, bold: bool = False) -> QtGui.QFont:
    f = QtGui.QFont()
    f.setPointSizeF(point_size)
    f.setBold(bold)
    return f


def mono_font(point_size: float = 8.5, bold: bool = False) -> QtGui.QFont:
    f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    f.setPointSizeF(point_size)
    f.setBold(bold)
    return f


def graph_font(pixels: int, bold: bool = False) -> QtGui.QFont:
    """A font for text in the graph's scene, sized in scene pixels: the zoom alone decides how big
    it shows, whatever the screen's dpi and point-size rounding."""
    f = QtGui.QFont()
    f.setPixelSize(pixels)
    f.setBold(bold)
    return f


def graph_mono(pixels: int, bold: bool = False) -> QtGui.QFont:
    f = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
    f.setPixelSize(pixels)
    f.setBold(bold)
    return f


def colour(name: str, alpha: float = 1.0) -> QtGui.QColor:
    c = QtGui.QColor(name)
    if alpha < 1.0:
        c.setAlphaF(alpha)
    return c


# Runs (variants) in every plot, legend, combo box and list: Tableau-10, distinct on white, and the
# order everyone knows from matplotlib.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def variant_colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def variant_swatch(i: int) -> QtGui.QIcon:
    """Variant ``i``'s colour in the plots, as a small square for its entry in a combo box or list."""
    pm = QtGui.QPixmap(12, 12)
    pm.fill(QtGui.QColor(variant_colour(i)))
    return QtGui.QIcon(pm)
