"""Colours and fonts the views share, in a light and a dark palette of the same names.

One colour per idea, everywhere: blue = forward (values), orange = backward (gradients),
green = optimizer.step(), violet = zero_grad(), amber = parameters, rose = the loss.

The module constants (``BACKGROUND``, ``TEXT``, ``FORWARD``…) are the current palette's: views read
them as ``theme.NAME`` when they draw, never copy them at import. ``apply(app)`` picks the palette
(the ``GRADVIZ_THEME`` environment variable, else the View ▸ Theme choice, else the system's colour
scheme hint), re-binds the constants, sets Fusion and a matching QPalette on the application, and
emits ``notifier.changed``; ``ui.theme_switch`` re-colours the plots and style sheets built with the
old colours, and views that cache colours (the graph's items, the code panel) rebuild on the signal.
"""
from __future__ import annotations

import os

import numpy as np
from PySide6 import QtCore, QtGui

from gradviz.summary import GRID_SIDE, fold_2d, grid_indices, is_summary

# -- the light palette ----------------------------------------------------------------------------
LIGHT = {
    # surfaces and text
    "BACKGROUND": "#f8fafc", "CANVAS_DOT": "#e2e8f0", "TEXT": "#0f172a", "TEXT_MUTED": "#475569",
    "TEXT_FAINT": "#94a3b8", "PANEL": "#ffffff", "PANEL_BORDER": "#e2e8f0",
    "CAPTION_BG": "rgba(255, 255, 255, 235)",          # a style-sheet colour: the caption over the graph
    "ON_ACCENT": "#ffffff",                            # text on a pill or tab filled with an idea's colour
    # ideas
    "FORWARD": "#2563eb", "FORWARD_SOFT": "#dbeafe", "BACKWARD": "#ea580c", "BACKWARD_SOFT": "#ffedd5",
    "STEP": "#16a34a", "STEP_SOFT": "#dcfce7", "ZERO": "#7c3aed", "ZERO_SOFT": "#ede9fe",
    "LOSS": "#e11d48", "LOSS_SOFT": "#fff1f2", "LOSS_PILL": "#ffe4e6", "ERROR": "#dc2626",
    # nodes
    "OP_FILL": "#ffffff", "OP_BORDER": "#94a3b8", "OP_SYMBOL_FILL": "#eef2ff", "OP_SYMBOL_TEXT": "#3730a3",
    "PARAM_FILL": "#fffbeb", "PARAM_BORDER": "#d97706", "PARAM_TEXT": "#78350f",
    "INPUT_FILL": "#f1f5f9", "INPUT_BORDER": "#cbd5e1", "INPUT_PILL": "#e2e8f0",
    "MODULE_FILL": "#f5f3ff", "MODULE_BORDER": "#8b5cf6", "MODULE_TEXT": "#4c1d95",
    "BADGE_FILL": "#ffffff", "GRAD_TEXT": "#9a3412", "GRAD_HIGHLIGHT": "#fed7aa",
    # edges
    "EDGE_IDLE": "#cbd5e1", "EDGE_DONE": "#64748b", "EDGE_LABEL_BG": "#ffffff",
    # plots (pyqtgraph)
    "PLOT_BACKGROUND": "#ffffff", "PLOT_FOREGROUND": "#374151", "PLOT_CURSOR": "#6b7280",
    "PLOT_HOVER_FILL": "#ffffff", "PLOT_HOVER_BORDER": "#9ca3af", "HEAT_NAN": "#111827",
}
LIGHT_IDLE_ALPHA = 0.45
# heat maps: a diverging map over [-max|x|, max|x|], zero at the surface colour so that it recedes
LIGHT_STOPS = ((37, 99, 235), (239, 246, 255), (255, 255, 255), (254, 242, 242), (220, 38, 38))


def _mix(a: str, b: str, t: float) -> str:
    """``a`` with a share ``t`` of ``b`` mixed in (t = 0: ``a``)."""
    ca, cb = QtGui.QColor(a), QtGui.QColor(b)
    return QtGui.QColor(round(ca.red() + (cb.red() - ca.red()) * t), round(ca.green() + (cb.green() - ca.green()) * t),
                        round(ca.blue() + (cb.blue() - ca.blue()) * t)).name()


# -- the dark palette: the same names; the ideas in lighter shades, soft fills as dark tints --------
_DARK_SURFACE = "#111827"
_DARK_NODE = "#1e2533"


def _tint(colour: str, share: float = 0.22, over: str = _DARK_NODE) -> str:
    return _mix(over, colour, share)


DARK = {
    "BACKGROUND": "#0f141c", "CANVAS_DOT": "#263041", "TEXT": "#e5e7eb", "TEXT_MUTED": "#a3adbd",
    "TEXT_FAINT": "#6b7688", "PANEL": _DARK_SURFACE, "PANEL_BORDER": "#334155",
    "CAPTION_BG": "rgba(23, 29, 40, 235)", "ON_ACCENT": "#0b1220",
    "FORWARD": "#60a5fa", "FORWARD_SOFT": _tint("#60a5fa"), "BACKWARD": "#fb923c", "BACKWARD_SOFT": _tint("#fb923c"),
    "STEP": "#4ade80", "STEP_SOFT": _tint("#4ade80"), "ZERO": "#a78bfa", "ZERO_SOFT": _tint("#a78bfa"),
    "LOSS": "#fb7185", "LOSS_SOFT": _tint("#fb7185", 0.14), "LOSS_PILL": _tint("#fb7185", 0.28), "ERROR": "#f87171",
    "OP_FILL": _DARK_NODE, "OP_BORDER": "#64748b", "OP_SYMBOL_FILL": _tint("#818cf8", 0.22),
    "OP_SYMBOL_TEXT": "#c7d2fe",
    "PARAM_FILL": _tint("#f59e0b", 0.12), "PARAM_BORDER": "#f59e0b", "PARAM_TEXT": "#fcd34d",
    "INPUT_FILL": "#1b2230", "INPUT_BORDER": "#4b5567", "INPUT_PILL": "#2c3546",
    "MODULE_FILL": _tint("#a78bfa", 0.12), "MODULE_BORDER": "#a78bfa", "MODULE_TEXT": "#ddd6fe",
    "BADGE_FILL": _DARK_NODE, "GRAD_TEXT": "#fdba74", "GRAD_HIGHLIGHT": _tint("#fb923c", 0.4),
    "EDGE_IDLE": "#3a4557", "EDGE_DONE": "#8b97a9", "EDGE_LABEL_BG": _DARK_NODE,
    "PLOT_BACKGROUND": _DARK_SURFACE, "PLOT_FOREGROUND": "#cbd5e1", "PLOT_CURSOR": "#94a3b8",
    "PLOT_HOVER_FILL": "#1f2937", "PLOT_HOVER_BORDER": "#4b5563", "HEAT_NAN": "#f8fafc",
}
DARK_IDLE_ALPHA = 0.5
DARK_STOPS = ((96, 165, 250), (37, 62, 105), (30, 37, 51), (104, 42, 48), (248, 113, 113))

# -- the current palette (re-bound by ``use``; light until ``apply`` says otherwise) ---------------
BACKGROUND = CANVAS_DOT = TEXT = TEXT_MUTED = TEXT_FAINT = PANEL = PANEL_BORDER = CAPTION_BG = ON_ACCENT = ""
FORWARD = FORWARD_SOFT = BACKWARD = BACKWARD_SOFT = STEP = STEP_SOFT = ZERO = ZERO_SOFT = ""
LOSS = LOSS_SOFT = LOSS_PILL = ERROR = ""
OP_FILL = OP_BORDER = OP_SYMBOL_FILL = OP_SYMBOL_TEXT = PARAM_FILL = PARAM_BORDER = PARAM_TEXT = ""
INPUT_FILL = INPUT_BORDER = INPUT_PILL = MODULE_FILL = MODULE_BORDER = MODULE_TEXT = ""
BADGE_FILL = GRAD_TEXT = GRAD_HIGHLIGHT = EDGE_IDLE = EDGE_DONE = EDGE_LABEL_BG = ""
PLOT_BACKGROUND = PLOT_FOREGROUND = PLOT_CURSOR = PLOT_HOVER_FILL = PLOT_HOVER_BORDER = HEAT_NAN = ""
IDLE_ALPHA = LIGHT_IDLE_ALPHA          # nodes not reached yet are drawn faded
PHASE_COLOURS: dict[str, str] = {}
HEAT_LUT = np.zeros(256, np.uint32)    # 256 ARGB32 words, index 128 = zero
_scheme = "light"


def _build_lut(stops) -> np.ndarray:
    stops = np.asarray(stops, float)
    t = np.linspace(0.0, 1.0, 256)
    pos = np.linspace(0.0, 1.0, len(stops))
    rgb = np.stack([np.interp(t, pos, stops[:, c]) for c in range(3)], axis=1).astype(np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


def use(scheme: str) -> bool:
    """Re-bind the module's colours to the ``"light"`` or ``"dark"`` palette; True if it changed.
    (No signal: ``apply`` is what the app calls; this is the part that needs no QApplication.)"""
    global IDLE_ALPHA, PHASE_COLOURS, HEAT_LUT, _scheme
    if scheme not in ("light", "dark"):
        raise ValueError(f"theme scheme must be 'light' or 'dark', not {scheme!r}")
    changed = scheme != _scheme
    _scheme = scheme
    dark = scheme == "dark"
    globals().update(DARK if dark else LIGHT)
    IDLE_ALPHA = DARK_IDLE_ALPHA if dark else LIGHT_IDLE_ALPHA
    PHASE_COLOURS = {"zero_grad": ZERO, "zero_grad_after": ZERO, "forward": FORWARD, "loss": LOSS,
                     "backward": BACKWARD, "step": STEP, "": TEXT_MUTED}
    HEAT_LUT = _build_lut(DARK_STOPS if dark else LIGHT_STOPS)
    return changed


use("light")


def is_dark() -> bool:
    return _scheme == "dark"


def scheme() -> str:
    """The palette in use: ``"light"`` or ``"dark"``."""
    return _scheme


# -- choosing the scheme ----------------------------------------------------------------------------
ENV_VAR = "GRADVIZ_THEME"
SETTINGS_KEY = "view/theme"
CHOICES = ("system", "light", "dark")


class _Notifier(QtCore.QObject):
    """``changed`` is emitted after the palette switched (the module constants are the new ones)."""
    changed = QtCore.Signal()


notifier = _Notifier()


def _settings() -> QtCore.QSettings:
    # where the main window keeps its settings (ui.dialogs.settings), without importing the widgets
    return QtCore.QSettings(QtCore.QSettings.defaultFormat(), QtCore.QSettings.Scope.UserScope, "GradViz", "GradViz")


def preference() -> str:
    """``"system"``, ``"light"`` or ``"dark"``: the environment variable wins over the saved choice."""
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env in CHOICES:
        return env
    saved = _settings().value(SETTINGS_KEY, "system")
    return saved if saved in CHOICES else "system"


def system_scheme() -> str:
    """What the platform asks for (Qt's colour-scheme hint); ``"light"`` when it says nothing."""
    app = QtGui.QGuiApplication.instance()
    if app is None:
        return "light"
    return "dark" if app.styleHints().colorScheme() == QtCore.Qt.ColorScheme.Dark else "light"


def wanted_scheme() -> str:
    pref = preference()
    return system_scheme() if pref == "system" else pref


def palette(dark: bool | None = None) -> QtGui.QPalette:
    """A QPalette for the widgets (Fusion's own light palette, or a dark one matching the views)."""
    from PySide6 import QtWidgets
    dark = is_dark() if dark is None else dark
    fusion = QtWidgets.QStyleFactory.create("Fusion")
    if not dark:
        return fusion.standardPalette()
    R, G = QtGui.QPalette.ColorRole, QtGui.QPalette.ColorGroup
    p = QtGui.QPalette()
    roles = {
        # fields a little lighter than the window (as macOS does): Fusion outlines check boxes and
        # fields in a darker shade of the window colour, which must show against them
        R.Window: "#1a202b", R.WindowText: DARK["TEXT"], R.Base: "#232b39", R.AlternateBase: "#1f2633",
        R.ToolTipBase: "#263041", R.ToolTipText: DARK["TEXT"], R.PlaceholderText: DARK["TEXT_FAINT"],
        R.Text: DARK["TEXT"], R.Button: "#2a3342", R.ButtonText: DARK["TEXT"], R.BrightText: "#ffffff",
        R.Light: "#3a4557", R.Midlight: "#2c3546", R.Mid: "#1f2733", R.Dark: "#0c1017", R.Shadow: "#05070a",
        R.Highlight: "#2563eb", R.HighlightedText: "#ffffff", R.Link: "#60a5fa", R.LinkVisited: "#a78bfa",
    }
    for role, colour in roles.items():
        p.setColor(role, QtGui.QColor(colour))
    muted = QtGui.QColor(DARK["TEXT_FAINT"])
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(G.Disabled, role, muted)
    p.setColor(G.Disabled, R.Highlight, QtGui.QColor("#334155"))
    p.setColor(G.Disabled, R.Base, QtGui.QColor("#161c26"))
    return p


_hooked = False


def apply(app=None, scheme: str | None = None) -> bool:
    """Use ``scheme`` (default: ``wanted_scheme()``) for the views and the application's widgets;
    emits ``notifier.changed`` when the palette switched. Follows the system's scheme from then on
    (while the preference is "system"). True if the palette changed."""
    global _hooked
    from PySide6 import QtWidgets
    app = app or QtWidgets.QApplication.instance()
    scheme = scheme or wanted_scheme()
    old = DARK if is_dark() else LIGHT
    changed = use(scheme)
    if app is not None:
        if app.style().name().lower() != "fusion":
            app.setStyle("Fusion")             # one look in both schemes, whatever the desktop's style
        app.setPalette(palette())
        if not _hooked:
            _hooked = True
            app.styleHints().colorSchemeChanged.connect(_on_system_scheme)
    if changed:
        # what was built with the old colours (plots, style sheets): the new palette's for the old one's
        from . import theme_switch
        mapping = theme_switch.colour_map(old, DARK if is_dark() else LIGHT)
        theme_switch.restyle_plots(mapping, PLOT_BACKGROUND, PLOT_FOREGROUND)
        theme_switch.restyle_style_sheets(mapping)
        notifier.changed.emit()
    return changed


def _on_system_scheme(*_) -> None:
    if preference() == "system":
        apply()


def set_preference(choice: str) -> None:
    """Save the View ▸ Theme choice and switch to it (the environment variable still wins)."""
    if choice not in CHOICES:
        raise ValueError(f"theme must be one of {CHOICES}, not {choice!r}")
    _settings().setValue(SETTINGS_KEY, choice)
    apply()


def theme_menu(parent=None):
    """View ▸ Theme: System / Light / Dark, the current choice checked."""
    from PySide6 import QtWidgets
    menu = QtWidgets.QMenu("&Theme", parent)
    group = QtGui.QActionGroup(menu)
    for choice in CHOICES:
        action = menu.addAction(choice.capitalize() if choice != "system" else "Follow the system")
        action.setCheckable(True)
        action.setData(choice)
        group.addAction(action)
        action.triggered.connect(lambda _checked=False, c=choice: set_preference(c))
    menu.aboutToShow.connect(lambda: [a.setChecked(a.data() == preference()) for a in group.actions()])
    return menu


# -- heat maps -------------------------------------------------------------------------------------
HEAT_MAX_SIDE = GRID_SIDE    # a heat map keeps at most this many rows and columns (evenly spaced ones)


def heat_image(a: np.ndarray) -> QtGui.QImage:
    """A small QImage of ``a`` (one pixel per element; >2-D and 1-D arrays folded to 2-D). A larger
    array (a 100,000 x 256 activation) is drawn from ``HEAT_MAX_SIDE`` evenly spaced rows and
    columns (its colour scale their largest magnitude): the box shows a few hundred pixels of it
    whatever its size, and drawing it costs the same."""
    if is_summary(a):            # a trace's summary of a huge array keeps exactly those rows and columns
        a = a.grid
    a = fold_2d(np.asarray(a))
    if a.shape[0] > HEAT_MAX_SIDE or a.shape[1] > HEAT_MAX_SIDE:
        a = a[np.ix_(grid_indices(a.shape[0], HEAT_MAX_SIDE), grid_indices(a.shape[1], HEAT_MAX_SIDE))]
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    scale = np.abs(a[finite]).max() if finite.any() else 0.0
    idx = np.full(a.shape, 128, dtype=np.int64)
    if scale > 0:
        idx = np.clip(np.rint(np.where(finite, a, 0.0) / scale * 127.5 + 127.5), 0, 255).astype(np.int64)
    argb = np.ascontiguousarray(HEAT_LUT[idx])
    argb[~finite] = QtGui.QColor(HEAT_NAN).rgba()
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


# Runs (variants) in every plot, legend, combo box and list: Okabe–Ito's colour-blind-safe set
# (its yellow left out: too faint on white, and its black replaced by grey, lost on dark), so
# neighbours such as Adam (vermillion) and Adagrad (sky blue) stay apart for every viewer. The same
# colours in the dark theme: a run keeps its colour across a switch, and each reads on dark too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#7f7f7f")


def variant_colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def variant_swatch(i: int) -> QtGui.QIcon:
    """Variant ``i``'s colour in the plots, as a small square for its entry in a combo box or list."""
    pm = QtGui.QPixmap(12, 12)
    pm.fill(QtGui.QColor(variant_colour(i)))
    return QtGui.QIcon(pm)
