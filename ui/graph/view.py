"""The computation graph of one iteration, animated by the Player.

Items are built once per graph and kept (``scene_update``): the next iteration of the same graph
shows its values in them, boxes it outgrows are resized in place; folding a module lays out once
(``gradviz.view.layout.layered_layout``) and only its items come or go.  On every cursor move only
the nodes and edges whose state changed are touched.  What is drawn (nodes, boxes of folded modules,
their states) comes from the view model (``gradviz.view.replay``, ``gradviz.view.folding``); this
module manages the scene, the zoom and level of detail, the mouse and the menus.

Node look:  parameters = amber rounded boxes with a ``.grad`` badge hanging below; data = small grey
boxes; ops = white boxes headed by PyTorch's grad_fn name, with a symbol pill (×, +, tanh, @) left of
the value row and the gradient row (∇); an op on data only (``1 - y``) is grey, the loss is rose with
a "loss" tab.  Values are numbers or compact matrices, larger tensors a heat map and their mean.
Active nodes glow (blue forward, orange backward, green step, violet zero_grad); edges turn orange
and, while the gradient travels along them, show it.

Text is sized in scene pixels and the columns are packed (each as wide as its widest box, 36 px
apart) so that the tutorial, fitted into the main window's graph panel, reads at 10 px or more; a
tiny graph is fitted larger than life (up to ``FIT_MAX_ZOOM``).

No text is ever drawn below ``MIN_TEXT_PX`` on screen: zoomed out, a node shows only its name (an op
its symbol) in a large font, further out only its box (``lod_level``).  A graph opens fitted when its
text reads at that zoom, else at the smallest readable zoom, scrolled to the loss (``fit_to_view``);
``fit`` shows the whole graph whatever the zoom.  Expanding or collapsing a module keeps the zoom and
keeps the module where it was on screen.  Ctrl+F finds a node by name (``find_node``); while a run
computes, ``show_pending`` replaces the graph with a message.
"""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.folding import FoldedGraph, foldable_module, module_label

from .. import theme as T
from ..turn_budget import TURN
from . import edge_hover, export, fitting
from .build_job import BuildJob, finish_relayout, reap, relayout
from .caption import Caption
from .details import Details
from .items import NodeGfx, edge_pens
from .refold_job import RefoldJob, fold_modules, refold_view
from .scene_update import ModuleIndex, PlaceJob, SpecJob, folded_graph, opening_collapsed, place
from .search import SearchBox, find_matches
from .sizing import Metrics, make_specs

Qt = QtCore.Qt

FIT_MARGIN = 4.0            # scene units around the drawing when fitted to the view
FIT_MAX_ZOOM = 1.6          # a tiny graph is drawn larger than life, up to this
LOD_ANTIALIAS = 0.16        # below this zoom, boxes and edges are drawn without antialiasing
OVERLAY_MARGIN = 12         # the caption and the find field sit this far from the viewport's edges


class GraphView(QtWidgets.QGraphicsView):
    """The animated computation graph.  ``GraphView(player, view_state)``: it draws the Player's
    replay, outlines the ViewState's selected node, and a click on a node selects it there (and
    emits ``nodeClicked``); see the module docstring."""

    nodeClicked = QtCore.Signal(int)
    moduleClicked = QtCore.Signal(str)
    collapsedChanged = QtCore.Signal()

    def __init__(self, player, view_state, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.player = player
        self.view_state = view_state
        self.replay = None
        self.setScene(QtWidgets.QGraphicsScene(self))
        self.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QtWidgets.QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlags(QtWidgets.QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        # The dotted canvas is the viewport's own background, painted in device space: a scene-space
        # brush would be re-sampled under the zoom transform on every repaint (several ms).
        palette = self.viewport().palette()
        palette.setBrush(QtGui.QPalette.ColorRole.Base, self._background_brush())
        self.viewport().setPalette(palette)
        self.viewport().setAutoFillBackground(True)
        self.lod_detail = True                           # every text and heat map shows (lod_level 2)
        self._lod = (2, True)                            # (lod_level, antialiased)
        self._pending: dict[int, tuple] = {}             # node key -> (state, active, event kind) not drawn yet
        self._visible_rect = None                        # per frame: the scene rect on screen
        self.details = Details(self)                     # text drawn when a box shows, a slice at a time
        self._more = QtCore.QTimer(self, singleShot=True, interval=0)   # the rest of a large frame update
        self._more.timeout.connect(self._on_more)
        self.setMinimumSize(320, 200)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)

        self.metrics = Metrics()
        self.fonts = self.metrics.fonts
        self.edge_pens = edge_pens()

        self.node_items: dict[int, NodeGfx] = {}        # displayed key -> items (node id or box id)
        self.edge_items: dict[tuple, object] = {}       # drawn edge -> EdgeGfx
        self.layout = None
        self._collapsed: set[str] = set()
        self.folded: FoldedGraph | None = None          # what is drawn: nodes, and boxes of folded modules
        self._index: ModuleIndex | None = None          # the replay's modules, indexed once per graph
        self._spec_job: SpecJob | None = None           # sizing the next iteration's boxes (scene_update)
        self._build_job: BuildJob | None = None         # building a large graph a slice at a time
        self._relayout = None                           # (job, poll): a large graph's layout in a worker
        self._refold_job: RefoldJob | None = None       # folding a large graph's modules (refold_job)
        self._display_of: dict[int, int] = {}           # node id -> displayed key
        self._shown_nodes: dict[int, object] = {}
        self._shown_edges: dict[tuple, object] = {}
        self._prev_active: set[int] = set()
        # (position, the nodes its update drew so far, the _prev_active it left): a frame with more
        # active nodes than a slice draws (the optimizer's step: every parameter) drew the same first
        # ones again each turn and never the rest
        self._frame_drawn: tuple = (-1, set(), None)
        self._prev_active_edges: set = set()
        self._frame_index = -1
        self._signature = None                           # of the graph drawn (kept while a run is pending)
        self._auto_fit = True                            # refit on resize, until the user zooms or pans
        self._fit_whole = False                          # ... the whole graph (fit), else the opening view
        self._query, self._match = "", -1                # the last find_node query and its match shown
        self.follow_active = True          # when zoomed in, pan to the node the current event is about
        self._press_pos = None

        self.caption = Caption(self)                 # not the viewport's child: scrolling would move it
        self.caption.move(OVERLAY_MARGIN, OVERLAY_MARGIN)
        self.caption.hide()
        self.search_box = SearchBox(self, self._find, self.setFocus)
        self.search_box.hide()
        find = QtGui.QShortcut(QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Find), self, self.focus_search)
        find.setContext(Qt.ShortcutContext.WindowShortcut)
        self.pending_label = QtWidgets.QLabel(self)       # "Running … 40%" while a run computes
        self.pending_label.setObjectName("graphPending")
        self.pending_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pending_label.setWordWrap(True)
        self.pending_label.setFont(T.ui_font(11))
        self.pending_label.hide()
        self._restyle_overlays()
        if hasattr(T, "notifier"):
            T.notifier.changed.connect(self._restyle_overlays)

        player.replayChanged.connect(self._on_replay_changed)
        player.positionChanged.connect(self._on_position_changed)
        view_state.selectedNodeChanged.connect(self._show_selection)
        T.notifier.changed.connect(self._on_theme_changed)
        if player.replay is not None:
            self._on_replay_changed()
            self._on_position_changed(player.position)

    # -- public API ---------------------------------------------------------------------------------
    def set_collapsed(self, module: str, collapsed: bool) -> None:
        """Collapse the nodes of ``module`` (e.g. "0" = the first layer of a Sequential) into one box."""
        self.set_modules_collapsed([module], collapsed)

    def set_modules_collapsed(self, modules, collapsed: bool) -> None:
        """Collapse (or expand) each of ``modules``, with one relayout: the items of the other boxes
        stay, moved where the layout puts them; the zoom stays, and a single module stays where it was
        on screen (``refold_job.fold_modules``)."""
        fold_modules(self, modules, collapsed)

    def module_scene_rect(self, module: str) -> QtCore.QRectF | None:
        """Where ``module`` is drawn: its box when collapsed, else the extent of its nodes."""
        if self.folded is None or self.replay is None:
            return None
        members = (self._index or self.replay).module_members(module)
        keys = {self._display_of[n] for n in members if n in self._display_of}
        rects = [self.node_items[k].root.sceneBoundingRect() for k in keys if k in self.node_items]
        if not rects:
            return None
        rect = rects[0]
        for r in rects[1:]:
            rect = rect.united(r)
        return rect

    def _put_scene_point_at(self, scene_point: QtCore.QPointF, view_point: QtCore.QPointF) -> None:
        """Scroll (without zooming) so that ``scene_point`` shows at ``view_point`` of the viewport."""
        inverse = self.viewportTransform().inverted()[0]
        now_there = inverse.map(view_point)
        centre = inverse.map(QtCore.QPointF(self.viewport().width() / 2, self.viewport().height() / 2))
        self.centerOn(centre + (scene_point - now_there))

    def is_collapsed(self, module: str) -> bool:
        return module in self._collapsed

    def collapsible_modules(self) -> list[str]:
        return self.replay.collapsible_modules() if self.replay is not None else []

    def module_label(self, module: str) -> str:
        return module_label(self.replay, module)

    def set_zoom(self, scale: float) -> None:
        """Zoom to ``scale`` (1 = 100 %) around the view's centre; stops following fit-to-view."""
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.scale(scale, scale)
        self.centerOn(centre)
        self._auto_fit = False
        self._apply_lod()

    def zoom(self) -> float:
        return self.transform().m11()

    def readable_zoom(self) -> float:
        """The smallest zoom at which every text of a node reads at ``MIN_TEXT_PX`` or more."""
        return self.metrics.detail_zoom

    def lod_level(self) -> int:
        """What the nodes show at the current zoom: 2 = everything, 1 = only their names (op symbols),
        0 = only their boxes (further out, names would read below ``MIN_TEXT_PX``)."""
        return self._lod[0] if self._lod[0] is not None else self._lod_at(self.zoom())

    def fit(self) -> None:
        """Show the whole graph below the caption, as large as fits (up to ``FIT_MAX_ZOOM``), whatever
        that does to its text (too small, only names or boxes show); keeps fitting on resize until the
        user zooms or pans."""
        self._auto_fit, self._fit_whole = True, True
        self._fit(whole=True)

    def fit_to_view(self) -> None:
        """The opening view: the whole graph when its text reads at ``MIN_TEXT_PX`` or more (a small
        graph up to ``FIT_MAX_ZOOM``: its text then reads larger than at 100 %), else the readable zoom
        showing the loss, the rest a drag (or a wheel turn) away."""
        self._fit_whole = False
        self._fit(whole=False)

    def _fit(self, whole: bool) -> None:
        fitting.fit(self, whole, FIT_MARGIN, FIT_MAX_ZOOM)

    def _refit(self) -> None:
        if self._auto_fit:
            self._fit(whole=self._fit_whole)

    # -- finding a node -----------------------------------------------------------------------------
    def focus_search(self) -> None:
        """Ctrl+F: the keyboard goes to the find field."""
        if self.search_box.isVisible():
            self.search_box.focus()

    def find_node(self, text: str) -> bool:
        """Centre and select the first node whose name matches ``text`` (a parameter or input name, an
        op's grad_fn name, its op or symbol: see ``search``), or the next match when ``text`` is the
        previous query; a node inside a collapsed module is expanded first.  False when none matches."""
        return self._find(text, 1)[1] > 0

    def _find(self, text: str, step: int) -> tuple[int, int]:
        """Go to a match of ``text``: the first of a new query, else ``step`` matches on (cycling).
        Returns (index of the match shown, number of matches)."""
        matches = find_matches(self.replay, text)
        query = text.strip().lower()
        if not matches:
            self._query, self._match = query, -1
            return -1, 0
        index = (self._match + step) % len(matches) if query == self._query and self._match >= 0 else 0
        self._query, self._match = query, index
        self.go_to_node(matches[index])
        return index, len(matches)

    def go_to_node(self, node_id: int) -> None:
        """Centre ``node_id`` (at a readable zoom at least) and select it, as a click would."""
        key = self._display_of.get(node_id)
        if key is not None and key < 0:                 # inside a collapsed module: open it
            module = self._module_of_box(key)
            if module is not None:
                self.set_collapsed(module, False)
                self.wait_built()                        # (a large graph's refold: now, to go there)
            key = self._display_of.get(node_id)
        if key not in self.node_items:
            return
        self._auto_fit = False
        if self.zoom() < self.readable_zoom():
            self.resetTransform()
            self.scale(self.readable_zoom(), self.readable_zoom())
            self._apply_lod()
        self.centerOn(self.node_items[key].root.sceneBoundingRect().center())
        self.view_state.select_node(node_id)
        self.nodeClicked.emit(node_id)

    # -- a run in progress ----------------------------------------------------------------------------
    def show_pending(self, text: str) -> None:
        """Instead of the last trace (of another scenario, or before an edit), a centred message such as
        "Running MLP on two moons… 40%"; call again to update it.  The next trace the Player shows
        replaces it (and ``end_pending`` shows the Player's trace again when none comes)."""
        if self.pending_label.isHidden() or self.replay is not None:
            self.replay = None
            self._clear_items()
            self.folded, self._display_of = None, {}
        self.pending_label.setText(text)
        self.pending_label.show()
        self.caption.show_pending(text)
        self.caption.show()
        self._size_caption()
        self._place_overlays()

    def is_pending(self) -> bool:
        return not self.pending_label.isHidden() and self._build_job is None

    def show_building(self, text: str) -> None:
        """A large graph is being built (``BuildJob``): "Drawing the graph: 1,281 boxes… 40 %"."""
        self.pending_label.setText(text)
        if self.pending_label.isHidden():
            self.pending_label.show()
            self._place_overlays()

    def wait_built(self) -> None:
        """Finish building a large graph (or folding it, or laying out its grown boxes) now (tests,
        exports)."""
        if self._refold_job is not None:
            self._refold_job.finish()
        if self._build_job is not None:
            self._build_job.finish()
        finish_relayout(self)

    def _build_done(self, job: BuildJob) -> None:
        self._build_job = None
        job.install()                                    # the items, the message hidden, the frame shown

    def end_pending(self) -> None:
        """Show the Player's trace again (e.g. a run was cancelled and no new trace comes)."""
        if self.is_pending():
            self.pending_label.hide()
            self._on_replay_changed()
            if self.replay is not None:
                self._on_position_changed(self.player.position)

    # -- deferred detail updates (details.py) ------------------------------------------------------
    def _update_node(self, gfx: NodeGfx, ns, active: bool, kind: str, selected: bool) -> None:
        self.details.update_node(gfx, ns, active, kind, selected)

    def _flush_pending(self, everything: bool = False) -> None:
        self.details.show_pending(everything)

    def _flush_node(self, node_id: int) -> None:
        self.details.flush_node(node_id)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._visible_rect = None
        self._flush_pending()

    def _lod_at(self, scale: float) -> int:
        return 2 if scale >= self.metrics.detail_zoom - 1e-9 else 1 if scale >= self.metrics.overview_zoom - 1e-9 else 0

    def _apply_lod(self) -> None:
        """Show less when text would read below ``MIN_TEXT_PX``: only names, then only boxes (also
        cheaper to paint)."""
        scale = self.transform().m11()
        lod = (self._lod_at(scale), scale >= LOD_ANTIALIAS)
        self._visible_rect = None
        if lod == self._lod:
            self._flush_pending()
            return
        self._lod = lod
        self.lod_detail = lod[0] == 2
        # Far out, antialiasing buys little and costs half the paint time of a large graph.
        self.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, lod[1])
        for gfx in self.node_items.values():
            gfx.set_lod(lod[0])
        for edge in self.edge_items.values():          # (arrow heads that far out: under 1.5 px)
            edge.label.setVisible(edge.want_label and self.lod_detail)
            edge.head.setVisible(lod[1])
        self._flush_pending()

    def _show_selection(self, node_id: int | None) -> None:
        for key, gfx in self.node_items.items():
            gfx.selection.setVisible(node_id is not None and self._display_of.get(node_id) == key)
        if self.replay is not None and 0 <= self._frame_index < len(self.replay):
            self._update_caption(self.replay.frame(self._frame_index))      # a step's math follows the selection

    def node_badge_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.badge_text.text() if gfx is not None and gfx.badge_text is not None else ""

    def node_value_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.value[1].text() if gfx is not None else ""

    def node_grad_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.grad[1].text() if gfx is not None and gfx.grad is not None else ""

    def node_scene_rect(self, node_id: int) -> QtCore.QRectF:
        gfx = self.node_items[self._display_of[node_id]]
        return gfx.root.sceneBoundingRect()

    def visible_node_count(self) -> int:
        return len(self.node_items)

    def export_png(self, path: str, scale: float = 2.0) -> bool:
        return export.export_png(self, path, scale)

    def export_svg(self, path: str) -> bool:
        return export.export_svg(self, path)

    def render_frame_image(self, width: int) -> QtGui.QImage:
        """The whole graph at the current frame, ``width`` pixels wide (for GIF export)."""
        return export.render_frame_image(self, width)

    # -- building -----------------------------------------------------------------------------------
    def _on_replay_changed(self) -> None:
        replay = self.player.replay
        if replay is None and self.is_pending():
            return                                        # the run's message stays until its trace comes
        self.pending_label.hide()
        signature = self._graph_signature(replay) if replay is not None else None
        same_graph = signature is not None and signature == self._signature
        if replay is not None:
            self._signature = signature                   # kept through a pending run: same graph, same view
        self.replay = replay
        self._query, self._match = "", -1
        if replay is not None and not same_graph:         # (no trace for a moment changes nothing)
            self._index = ModuleIndex(replay)
            self._collapsed = opening_collapsed(self._index)
            self._auto_fit, self._fit_whole = True, False
        elif replay is not None and self.node_items and self._reuse_items(replay):
            return
        elif replay is not None:
            self._index = ModuleIndex(replay)
        self._rebuild()
        self.caption.setVisible(self.replay is not None)
        self.search_box.setVisible(self.replay is not None)
        self._place_overlays()
        if self.replay is not None:
            self._update_caption(self.replay.frame(self.player.position))
            self._refit()                                 # again, now that the caption takes its room

    def _reuse_items(self, replay) -> bool:
        """The next iteration of the same graph: keep every item (and the zoom) and show the new values
        in them; a ``SpecJob`` then sizes the boxes for them (at once on a small graph, in slices on a
        large one) and grows those that need it, with one relayout (``_apply_grown``)."""
        if self.folded is None or self.folded.collapsed != frozenset(self._collapsed) or self._refold_job is not None:
            return False                                 # (a fold half placed: drawn again, folded so)
        self._cancel_spec_job()
        self._index = ModuleIndex(replay)
        self._shown_nodes.clear()
        self._shown_edges.clear()
        self._prev_active = set(self._display_of)         # touch every node once
        self._prev_active_edges = set(replay.edges)
        self._pending.clear()
        self._visible_rect = None
        self._spec_job = SpecJob(self)
        self._spec_job.start()                           # a small graph: sized (and grown) now
        self._on_position_changed(self.player.position)
        return True

    def _cancel_spec_job(self) -> None:
        if self._spec_job is not None:
            self._spec_job.cancel()
            self._spec_job = None

    def _apply_grown(self, specs, layout=None) -> None:
        """Boxes the new iteration's values outgrew: reshaped in place, one relayout for all (a large
        graph's made in a worker, ``build_job.relayout``, and placed a slice per turn, ``PlaceJob``)."""
        if layout is None and relayout(self, specs, self._apply_grown):
            return
        centre = self.mapToScene(self.viewport().rect().center())

        def placed():
            if not self._auto_fit:
                self.centerOn(centre)
            self._after_place()
        if layout is None:
            place(self, specs)
            return placed()
        self._spec_job = PlaceJob(self, specs, layout, placed)
        self._spec_job.start()

    def _refold(self, then=None) -> None:
        """Other modules folded: the boxes that stay keep their items (``refold_job.refold_view``)."""
        refold_view(self, then)

    def _cancel_refold_job(self) -> None:
        if self._refold_job is not None:
            self._refold_job.cancel()
            self._refold_job = None

    def _after_place(self) -> None:
        if self.player.replay is self.replay and self.replay is not None:
            self._on_position_changed(self.player.position)
        self._flush_pending()                            # items moved into the view show their text
        self._show_selection(self.view_state.selected_node)
        self._refit()

    @staticmethod
    def _graph_signature(replay):
        return tuple((n, i.label, tuple(i.inputs)) for n, i in replay.nodes.items())

    def _clear_items(self) -> None:
        self._cancel_spec_job()
        self._cancel_refold_job()
        if self._build_job is not None:
            self._build_job.cancel()
            self._build_job = None
            self.pending_label.hide()
        reap(self)                                       # a large scene is deleted a slice at a time
        self.node_items.clear()
        self.edge_items.clear()
        self._shown_nodes.clear()
        self._shown_edges.clear()
        self._prev_active, self._prev_active_edges = set(), set()
        self._pending.clear()
        self._visible_rect = None
        self._frame_index = -1
        self.layout = None
        self.unplaced = False                            # (nothing half placed: nothing is)

    def _rebuild(self, folded=None) -> None:
        """Draw the replay again from nothing (``folded``: the fold of ``_collapsed``, when made already)."""
        self._clear_items()
        replay = self.replay
        if replay is None:
            self.folded, self._display_of = None, {}
            return
        if self._index is None or self._index._replay is not replay:
            self._index, folded = ModuleIndex(replay), None
        if folded is None or folded.collapsed != frozenset(self._collapsed):
            folded = folded_graph(self._index, self._collapsed)
        if BuildJob.wanted(folded):                      # built a slice at a time, shown when done
            self.folded, self._display_of = None, {}
            self._build_job = BuildJob(self, folded)
            self.show_building(self._build_job.text())
            return
        self.folded, self._display_of = folded, folded.display_of
        place(self, make_specs(replay, folded, self.metrics))
        self._after_place()

    # -- per frame ----------------------------------------------------------------------------------
    def _on_more(self) -> None:
        """The rest of a frame update, a turn later; when the player's tick comes in the same pass its
        update does that rest (it redraws whatever differs from what shows), so this waits a pass."""
        if TURN.tick_due():
            self._more.start()
            return
        self._on_position_changed(self.player.position)

    def _on_position_changed(self, position: int) -> None:
        replay = self.replay
        if replay is None or not self.node_items:
            return
        frame = replay.frame(position)
        self._frame_index = position
        self._visible_rect = None
        kind, active, display_of = frame.event_kind, frame.active_nodes, self._display_of
        with self.details.budget() as until:              # a slice now, the rest in the next turns
            if time.perf_counter() >= until:              # this turn's time is spent: all next turn
                return self._more.start()                 # (not even the O(boxes) passes below)
            dirty = {n for n, ns in frame.nodes.items() if self._shown_nodes.get(n) is not ns}
            at, drawn, mine = self._frame_drawn
            again = at == position and mine is self._prev_active        # the rest of this frame's update
            dirty |= (active | self._prev_active) - drawn if again else active | self._prev_active
            left = self.details.update_nodes(frame, dirty, active, kind, self.view_state.selected_node, until)
            self._prev_active = set(active) | left         # (not drawn yet: dirty next time)
            self._frame_drawn = (position, (drawn if again else set()) | (dirty - left), self._prev_active)
            if left:                                       # boxes first: the edges wait with them
                return self._more.start()
            edges_dirty = {k for k, es in frame.edges.items() if self._shown_edges.get(k) is not es}
            edges_dirty |= frame.active_edges | self._prev_active_edges
            touched, left_edges = set(), set()
            for k in edges_dirty:
                dk = (display_of.get(k[0]), display_of.get(k[1]))
                if dk in self.edge_items:
                    touched.add(dk)
                self._shown_edges[k] = frame.edges.get(k)
            for dk in touched:
                if time.perf_counter() > until:
                    left_edges.update(self.folded.edges[dk])
                else:
                    self.edge_items[dk].update(*self.folded.edge_state(dk, frame), self.lod_detail)
            self._prev_active_edges = set(frame.active_edges) | left_edges
            if self.follow_active and not (self._auto_fit and self._fit_whole):
                self._follow(frame)               # its scroll's text shares the slice (a fit shows all)
        if left_edges:
            self._more.start()                             # the rest of this frame, next turn
        self._update_caption(frame)

    def _follow(self, frame) -> None:
        """Zoomed in, keep the node the current event is about on screen."""
        nid = frame.event_node
        key = self._display_of.get(nid) if nid is not None else None
        if key is None:
            return
        gfx = self.node_items.get(key)                  # (None: not made yet, a refold placing it)
        if gfx is None:
            return
        rect = gfx.root.sceneBoundingRect()
        view = self.mapToScene(self.viewport().rect()).boundingRect()
        if not view.contains(rect):
            self.centerOn(rect.center())

    def _update_caption(self, frame) -> None:
        if not self.caption.isVisible():
            return
        self.caption.show_frame(self.replay, frame, self.view_state.selected_node)
        self._size_caption()

    def _size_caption(self) -> None:
        room = self.viewport().width() - 2 * OVERLAY_MARGIN
        if self._search_beside_caption():
            room -= self.search_box.width() + OVERLAY_MARGIN
        self.caption.fit(int(min(max(260, room), 720)), 0.45 * self.viewport().height())

    def _search_beside_caption(self) -> bool:
        """The find field sits at the top right when the caption keeps 260 px beside it, else at the
        bottom right."""
        return self.viewport().width() >= 260 + self.search_box.width() + 3 * OVERLAY_MARGIN

    def _place_overlays(self) -> None:
        vp = self.viewport().geometry()
        box = self.search_box
        x = vp.right() + 1 - OVERLAY_MARGIN - box.width()
        y = vp.top() + OVERLAY_MARGIN if self._search_beside_caption() else \
            vp.bottom() + 1 - OVERLAY_MARGIN - box.height()
        box.move(x, y)
        if not self.pending_label.isHidden():
            label = self.pending_label
            label.setFixedWidth(max(120, min(vp.width() - 40, 440)))
            label.adjustSize()
            label.move(vp.center().x() - label.width() // 2, vp.center().y() - label.height() // 2)

    def _top_margin(self) -> float:
        """Room the overlays take at the top of the viewport."""
        bottom = 0.0
        if self.caption.isVisible():
            bottom = self.caption.y() + self.caption.height()
        if self.search_box.isVisible() and self._search_beside_caption():
            bottom = max(bottom, self.search_box.y() + self.search_box.height())
        return bottom

    def _restyle_overlays(self) -> None:
        self.search_box.restyle()
        self.pending_label.setStyleSheet(
            f"#graphPending {{ background: {T.PANEL}; color: {T.TEXT_MUTED}; border: 1px solid {T.PANEL_BORDER};"
            f" border-radius: 10px; padding: 18px; }}")

    # -- rendering helpers ------------------------------------------------------------------------
    def _graph_rect(self) -> QtCore.QRectF:
        """The drawing's extent: the layout's box (stable from frame to frame, unlike the items' box,
        which grows while a halo or a wide label shows)."""
        if self.layout is None or not self.node_items:
            return self.scene().itemsBoundingRect() if self._build_job is None else QtCore.QRectF()
        return QtCore.QRectF(0, 0, self.layout.width, self.layout.height).adjusted(-9, -12, 9, 12)

    def export_rect(self) -> QtCore.QRectF:
        """What an export draws: the whole drawing (built), every node's text up to date."""
        self.wait_built()
        self._flush_pending(everything=True)
        return self._graph_rect().adjusted(-16, -16, 16, 16)

    def show_all_detail(self, show: bool) -> None:
        """Exports draw every label whatever the zoom; afterwards the level of detail is restored."""
        if show:
            for gfx in self.node_items.values():
                gfx.set_lod(2)
            self.lod_detail = True
            for edge in self.edge_items.values():
                edge.label.setVisible(edge.want_label)
                edge.head.setVisible(True)
        else:
            self._lod = (None, None)
            self._apply_lod()

    def _on_theme_changed(self) -> None:
        """The light/dark theme switched: the canvas, the caption and the items (built with the old
        colours) are made again, at the same zoom and place."""
        palette = self.viewport().palette()
        palette.setBrush(QtGui.QPalette.ColorRole.Base, self._background_brush())
        self.viewport().setPalette(palette)
        self.caption.apply_theme()
        self.edge_pens = edge_pens()
        if self.replay is not None and self.node_items:
            centre = self.mapToScene(self.viewport().rect().center())
            self._rebuild()
            if not self._auto_fit:
                self.centerOn(centre)
            self._update_caption(self.replay.frame(self.player.position))
        self.viewport().update()

    @staticmethod
    def _background_brush() -> QtGui.QBrush:
        size = 22
        pm = QtGui.QPixmap(size, size)
        pm.fill(QtGui.QColor(T.BACKGROUND))
        p = QtGui.QPainter(pm)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor(T.CANVAS_DOT))
        p.drawEllipse(QtCore.QRectF(size / 2 - 1, size / 2 - 1, 2, 2))
        p.end()
        return QtGui.QBrush(pm)

    # -- interaction --------------------------------------------------------------------------------
    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return
        factor = 1.0015 ** delta
        current = self.transform().m11()
        factor = max(0.05 / current, min(factor, 6.0 / current))
        self.scale(factor, factor)
        self._auto_fit = False
        self._apply_lod()
        event.accept()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        self._press_pos = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        press, self._press_pos = self._press_pos, None
        if press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if (event.position().toPoint() - press).manhattanLength() > 4:
            self._auto_fit = False            # the user panned
            return
        key = self._key_at(press)
        if key is None:
            return
        if key >= 0:
            self.view_state.select_node(key)
            self.nodeClicked.emit(key)
        else:
            module = self._module_of_box(key)
            if module is not None:
                self.moduleClicked.emit(module)

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:
        key = self._key_at(event.position().toPoint())
        module = self._module_for_key(key)
        if module is not None:
            self.set_collapsed(module, not self.is_collapsed(module))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:
        menu = QtWidgets.QMenu(self)
        key = self._key_at(event.pos())
        module = self._module_for_key(key)
        if module is not None:
            label = self.module_label(module)
            if self.is_collapsed(module):
                menu.addAction(f"Expand {label}", lambda: self.set_collapsed(module, False))
            else:
                menu.addAction(f"Collapse module {label}", lambda: self.set_collapsed(module, True))
            menu.addSeparator()
        modules = self.collapsible_modules()
        if modules:
            menu.addAction("Collapse all modules", lambda: self.set_modules_collapsed(modules, True))
            menu.addAction("Expand all modules", lambda: self.set_modules_collapsed(modules, False))
        menu.addAction("Find node…\tCtrl+F", self.focus_search)
        menu.addAction("Fit whole graph", self.fit)
        menu.exec(event.globalPos())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._visible_rect = None
        self._flush_pending()
        self._place_overlays()
        if self.caption.isVisible():
            self._size_caption()
        self._refit()

    def viewportEvent(self, event) -> bool:
        if event.type() == QtCore.QEvent.Type.ToolTip and edge_hover.show_tooltip(self, event):
            return True                                  # an edge under the mouse: its formula
        return super().viewportEvent(event)

    def _key_at(self, pos: QtCore.QPoint):
        for item in self.items(pos):
            while item is not None:
                key = item.data(0)
                if key is not None:          # (not a box still being built, or one going away)
                    return int(key) if self.node_items.get(int(key)) is not None else None
                item = item.parentItem()
        return None

    def _module_of_box(self, key: int) -> str | None:
        return self.folded.module_of_box(key) if self.folded is not None else None

    def _module_for_key(self, key) -> str | None:
        if key is None or self.replay is None:
            return None
        if key < 0:
            return self._module_of_box(key)
        return foldable_module(self.replay, key)
