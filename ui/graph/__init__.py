"""The computation graph view: ``GraphView(player, view_state)`` draws the Player's replay, follows its
cursor and shows (and sets) the ViewState's selected node.

- ``view``: the QGraphicsView (scene, zoom and level of detail, mouse, menus, following the Player,
  the message shown while a run computes);
- ``items``: the graphics items (node box, ``.grad`` badge text, edge);
- ``sizing``: each box's size and look, decided once per replay;
- ``text``: the text a node shows, through ``gradviz.view.format``;
- ``caption``: the phase/position/sentence overlay;
- ``search``: which nodes a name matches, and the find field (Ctrl+F) over the graph;
- ``export``: PNG, SVG and animated GIF.
"""
from .export import FRAME_MS, export_gif
from .text import PRECISION
from .view import FIT_MAX_ZOOM, GraphView

__all__ = ["FIT_MAX_ZOOM", "FRAME_MS", "PRECISION", "GraphView", "export_gif"]
