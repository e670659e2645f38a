"""The GradViz main window: builds the models (Document, ViewState, Player) and the views that take
them (graph in the centre, code panel, inspector, dashboards, controls), wires actions and menus, and
does the window's own jobs: title, transport toolbar, status bar, files, and loading the
trace of the ViewState's (variant, iteration) into the Player."""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import DEFAULT_SCENARIO, ScenarioError, bundled_path
from gradviz.view.phases import phase_label
from gradviz.view.replay import Replay

from . import icons
from .code_view import CodePanel, CodeView
from .controls import ControlsPanel
from .dashboards import DashboardExporter, Dashboards
from .dialogs import APP, ORG, BundledDialog, ask_to_run, settings  # noqa: F401  (ORG, APP: re-exported)
from .document import Document, read_script
from .export_actions import ExportActions
from .file_jobs import FileJobs
from .graph import GraphView
from .help import HelpMenu
from .inspector import Inspector
from .key_router import KeyRouter
from .lesson import LessonPanel, lesson_scroll, raise_plot
from .player import Player
from .script_actions import SCRIPT_FILTER, ScriptActions
from .theme import theme_menu, variant_swatch
from .trace_jobs import TraceJobs
from .view_state import ViewState
from .welcome import show_welcome
from .window_layout import Scrubber, WindowLayout

MAX_RECENT = 8
LESSON_LAYOUT_KEY = "layout/lesson"      # a saved layout that places the Lesson dock
LESSON_SHARE = 0.5            # of the right column's height: the lesson above, the controls / inspector below
CODE_DOCK_WIDTH = 330         # in a 1400 px window (a share of any other): long lines wrap, the graph keeps the room
SCENARIO_FILTER = "GradViz scenarios (*.toml *.py);;TOML scenarios (*.toml);;Python scripts (*.py);;All files (*)"


class ElidedLabel(QtWidgets.QLabel):
    """A one-line label that shrinks below its text's width, ending in "…" (the whole text in its
    tooltip): in a narrow status bar it gives up room instead of being overlapped."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self.setToolTip(text if text else "")
        self._elide()

    def text(self) -> str:
        """The whole text (``shown_text`` is what fits)."""
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802
        return QtCore.QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, QtCore.Qt.TextElideMode.ElideRight, max(self.width(), 0))
        if shown != super().text():
            super().setText(shown)


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("GradVizMainWindow")
        self.setAcceptDrops(True)
        self.document = Document(self)
        # made before every view, so that it has fitted itself to a new scenario before they look
        self.view_state = ViewState(self.document, self)
        self.player = Player(parent=self)
        self._traced = (None, -1)               # (session, iteration) whose trace the Player shows
        self.traces = TraceJobs(self)           # long replays go to a worker thread
        self.pending = False                    # a new scenario is running: nothing to show yet
        self._pending_shown: str | None = None

        self.graph = GraphView(self.player, self.view_state)
        self.setCentralWidget(self.graph)
        self.code = CodeView(self.document, self.view_state, self.player)
        self.inspector = Inspector(self.player, self.view_state, self.document)
        self._build_actions()
        self.scripts = ScriptActions(self)
        self.code_panel = CodePanel(self.document, self.code, self.scripts.act_run)
        self.code_dock = self._dock("Code", self.code_panel, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        # the lesson beside the graph: on top of the right column, the inspector and controls below it
        self.lesson = LessonPanel(self.document, self.view_state, self.player, show_node=self.graph.go_to_node,
                                  show_plot=lambda title: raise_plot(self.dashboards_dock, self.dashboards, title))
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        self.lesson_dock = self._dock("Lesson", lesson_scroll(self.lesson), right)
        self.addActions([self.lesson.act_back, self.lesson.act_next])
        self.inspector_dock = self._dock("Inspector", self.inspector, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector.setMinimumHeight(60)          # it scrolls: a short column leaves room for the Lesson
        self._build_menus()
        self._build_transport()
        self._build_status()

        self.document.scenarioChanged.connect(self._on_scenario_changed)
        self.document.modifiedChanged.connect(lambda _m: self._update_title())
        self.document.runStarted.connect(self._on_run_started)
        self.document.runProgress.connect(self._on_run_progress)
        self.document.runFinished.connect(self._on_run_finished)
        self.document.opened.connect(self._on_opened)
        self.document.failed.connect(self.show_error)
        self.document.failed.connect(self._on_run_failed)
        self.player.replayChanged.connect(self._on_replay_changed)
        self.player.positionChanged.connect(self._on_position)
        self.player.iterationEndReached.connect(self._on_iteration_end)
        self.view_state.variantChanged.connect(self._show_variant)
        for changed in (self.view_state.variantChanged, self.view_state.iterationChanged):
            changed.connect(self._show_iteration_box)
            changed.connect(self._show_trace)
        self.traces.ready.connect(self._on_trace_ready)
        self.traces.started.connect(lambda k: self.statusBar().showMessage(f"Replaying iteration {k}…"))
        self.traces.ended.connect(self.statusBar().clearMessage)
        self.graph.nodeClicked.connect(self._on_node_clicked)
        self.graph.moduleClicked.connect(self.inspector.select_module)     # a folded module's box
        self.graph.moduleClicked.connect(self._on_node_clicked)

        self._build_dashboards()
        self.scripts.install(self.run_menu, self.file_menu, self.export_sep)
        self.files = FileJobs(self)                 # large files open, and documents save, in a worker
        self.help = HelpMenu(self)                  # last: it lists every other action's shortcut
        self.keys = KeyRouter(self, self._player_actions + [self.lesson.act_back, self.lesson.act_next],
                              [self.act_open, self.act_open_bundled, self.act_save, self.act_save_as, self.act_quit,
                               self.scripts.act_run, self.help.act_shortcuts])
        self.welcome = None                         # the first launch's welcome, over the graph
        self.window_layout = WindowLayout(self)
        self.window_layout.place_default()
        # Restore the user's layout only now that every dock exists (restoreState matches by objectName);
        # the first show checks that it fits (``showEvent``).
        self.window_layout.restore(settings())
        if settings().value("windowState") and not settings().value(LESSON_LAYOUT_KEY):
            self.reset_layout()                    # saved before the Lesson existed: it goes on top
        self._shown = False
        # A QGraphicsScene accepts every drag-enter, so the graph and the plots would swallow a
        # scenario file dropped on them: let drags through to the window's dropEvent instead.
        for view in self.findChildren(QtWidgets.QGraphicsView):
            view.setAcceptDrops(False)
            view.viewport().setAcceptDrops(False)

    # -- construction -------------------------------------------------------------------------
    def _dock(self, title, widget, area) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text, slot, shortcut=None, tip=None, icon=None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if icon is not None:
            action.setIcon(icons.icon(icon))
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QtGui.QKeySequence(shortcut)])
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)          # shortcuts work wherever focus is in the window
        return action

    def _build_actions(self):
        K = QtGui.QKeySequence
        self.act_open = self._action("&Open…", self.open_dialog, K.StandardKey.Open, "Open a scenario file")
        self.act_open_bundled = self._action("Open &bundled scenario…", self.open_bundled_dialog, "Ctrl+B",
                                             "Choose one of the scenarios that ship with GradViz")
        for a in (self.act_open, self.act_open_bundled):     # also from a floating dock or right after a dialog
            a.setShortcutContext(QtCore.Qt.ShortcutContext.ApplicationShortcut)
        self.act_save = self._action("&Save", self.save, K.StandardKey.Save, "Save the scenario")
        self.act_save_as = self._action("Save &As…", self.save_as, K.StandardKey.SaveAs, "Save under a new name")
        self.exports = ExportActions(self)           # File ▸ Export: graph, GIF, PyTorch script
        # StandardKey.Quit is empty on some platforms (offscreen, plain X11 without a desktop theme)
        self.act_quit = self._action("&Quit", self.close, "Ctrl+Q")
        self.act_play = self._action("Play", self.player.toggle, "Space", "Play / pause (Space)", "play")
        self.act_back = self._action("Step back", self.player.step_back, "Left", "One event back (Left)",
                                     "step_back")
        self.act_fwd = self._action("Step", self.player.step_forward, "Right", "One event forward (Right)",
                                    "step_forward")
        self.act_prev_phase = self._action("Previous phase", self.player.prev_phase, "Shift+Left",
                                           "To the start of the previous phase (Shift+Left)", "prev_phase")
        self.act_next_phase = self._action("Next phase", self.player.next_phase, "Shift+Right",
                                           "To the start of the next phase (Shift+Right)", "next_phase")
        self.act_start = self._action("To start", self.player.to_start, "Home", "Start of the iteration (Home)",
                                      "to_start")
        self.act_end = self._action("To end", self.player.to_end, "End", "End of the iteration (End)", "to_end")
        self.act_prev_iter = self._action("Previous iteration", lambda: self.set_iteration(self.iteration - 1),
                                          ["PgUp", "Ctrl+Left"], "Previous iteration (Page Up)", "prev_iteration")
        self.act_next_iter = self._action("Next iteration", lambda: self.set_iteration(self.iteration + 1),
                                          ["PgDown", "Ctrl+Right"], "Next iteration (Page Down)", "next_iteration")
        self.act_fit = self._action("Fit graph to view", self.fit_graph, "F", "Fit the whole graph in view (F)")
        self.act_fit.setIconText("Fit graph")
        self.act_reset_layout = self._action("&Reset layout", self.reset_layout, None,
                                             "Put every panel back where it starts, at its default size")
        self._player_actions = [self.act_play, self.act_back, self.act_fwd, self.act_prev_phase, self.act_next_phase,
                                self.act_start, self.act_end, self.act_prev_iter, self.act_next_iter, self.act_fit]
        for a in self._player_actions:
            a.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        self.player.playingChanged.connect(self._on_playing_changed)

    def _build_menus(self):
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addActions([self.act_open, self.act_open_bundled])
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as])
        self.export_sep = m.addSeparator()
        self.export_menu = exp = m.addMenu("&Export")
        exp.addActions(self.exports.actions)
        m.addSeparator()
        m.addAction(self.act_quit)
        self.file_menu = m
        play = bar.addMenu("&Play")
        play.addActions([self.act_play, self.act_back, self.act_fwd, self.act_prev_phase, self.act_next_phase,
                         self.act_start, self.act_end])
        play.addSeparator()
        play.addActions([self.act_prev_iter, self.act_next_iter])
        self.run_menu = bar.addMenu("&Run")
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addAction(self.act_fit)
        self.view_menu.addAction(self.act_reset_layout)
        self.view_menu.addMenu(theme_menu(self))           # System / Light / Dark (ui/theme.py)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.lesson_dock.toggleViewAction())
        self.view_menu.addAction(self.code_dock.toggleViewAction())
        self.view_menu.addAction(self.inspector_dock.toggleViewAction())

    def _build_dashboards(self):
        """The plots (bottom dock) and the controls (right, a tab beside the inspector), their View
        entries and File ▸ Export entries; a click on a plotted point picks that iteration."""
        Area = QtCore.Qt.DockWidgetArea
        # the Data view maps a selected node to its layer; the panels are made when first shown
        self.dashboards = Dashboards(self.document, self.view_state, player=self.player)
        self.controls = ControlsPanel(self.document, self.view_state)
        self.dashboards_dock = self._dock("Dashboards", self.dashboards, Area.BottomDockWidgetArea)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        # too narrow a column scrolls sideways rather than clip the controls
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.controls)
        self.controls_dock = self._dock("Controls", scroll, Area.RightDockWidgetArea)
        # one column on the right: the controls in front, the inspector a tab away (raised on a click)
        self.tabifyDockWidget(self.inspector_dock, self.controls_dock)
        self.controls_dock.raise_()

        self.view_menu.addSeparator()
        self.view_menu.addAction(self.dashboards_dock.toggleViewAction())
        self.view_menu.addAction(self.controls_dock.toggleViewAction())
        self.act_dash_grid = self.dashboards.grid_action
        self.view_menu.addAction(self.act_dash_grid)

        self.dashboard_exporter = DashboardExporter(self.document, self.dashboards, self)
        self.dashboard_exporter.wrote.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.dashboard_exporter.failed.connect(self.show_error)
        self.export_menu.addSeparator()
        self.export_menu.addActions(self.dashboard_exporter.menu_actions)

    def _toolbar(self, title: str, name: str) -> QtWidgets.QToolBar:
        tb = QtWidgets.QToolBar(title, self)
        tb.setObjectName(name)
        tb.setMovable(False)
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.setIconSize(QtCore.QSize(20, 20))
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, tb)
        return tb

    def _build_transport(self):
        """Two toolbars: the transport (buttons and the event scrubber) and the view (fit, iteration,
        variant, speed). They share a row when the window is wide enough and wrap onto two rows when
        it is not (``WindowLayout``): every control stays in sight, none in an overflow menu."""
        tb = self._toolbar("Transport", "transport")
        tb.addActions([self.act_prev_iter, self.act_start, self.act_prev_phase, self.act_back, self.act_play,
                       self.act_fwd, self.act_next_phase, self.act_end, self.act_next_iter])
        tb.addSeparator()
        self.scrubber = Scrubber()
        self.scrubber.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.scrubber.setToolTip("Events of this iteration: drag to seek")
        self.scrubber.valueChanged.connect(self._on_scrub)
        tb.addWidget(self.scrubber)
        self.auto_box = QtWidgets.QCheckBox("Continue into next iteration")
        self.auto_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.auto_box.setToolTip("When playing reaches the end of an iteration, go on with the next one")
        tb.addWidget(self.auto_box)
        self.transport = tb

        vb = self._toolbar("View", "view_bar")
        vb.addAction(self.act_fit)
        fit = vb.widgetForAction(self.act_fit)
        fit.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        fit.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.fit_button = fit
        vb.addSeparator()
        vb.addWidget(QtWidgets.QLabel(" Iteration "))
        self.iteration_box = QtWidgets.QSpinBox()
        self.iteration_box.setKeyboardTracking(False)
        self.iteration_box.setToolTip("Jump to optimizer step k (0-based)")
        self.iteration_box.valueChanged.connect(self.view_state.set_iteration)
        # after Enter, give the keys back to the transport shortcuts (Space, arrows, Home/End)
        self.iteration_box.lineEdit().returnPressed.connect(lambda: self.graph.setFocus())
        vb.addWidget(self.iteration_box)
        self.iteration_total = QtWidgets.QLabel(" of 0 ")
        vb.addWidget(self.iteration_total)
        vb.addSeparator()
        self.variant_title = QtWidgets.QLabel(" Run ")
        vb.addWidget(self.variant_title)
        self.variant_box = QtWidgets.QComboBox()
        self.variant_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.variant_box.setToolTip("The current run, chosen here only: the graph, code, plots and Controls follow it")
        self.variant_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.variant_box.setMaximumWidth(280)          # a lesson's run name; the full name is its tooltip
        self.variant_box.activated.connect(self.view_state.set_variant)
        vb.addWidget(self.variant_box)
        vb.addSeparator()
        self.speed_title = QtWidgets.QLabel(" Speed ")
        vb.addWidget(self.speed_title)
        self.speed_box = QtWidgets.QComboBox()
        self.speed_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.speed_box.setToolTip("How fast Play steps through the events")
        for label, eps in (("0.5×", 1.0), ("1×", 2.0), ("2×", 4.0), ("4×", 8.0), ("8×", 16.0), ("16×", 32.0)):
            self.speed_box.addItem(label, eps)
        self.speed_box.setCurrentIndex(1)          # 1× = 2 events a second: time to read the caption
        self.speed_box.currentIndexChanged.connect(lambda _i: self.player.set_speed(self.speed_box.currentData()))
        self.player.set_speed(self.speed_box.currentData())
        vb.addWidget(self.speed_box)
        self.view_bar = vb

    def _build_status(self):
        """Title · variant · iteration · phase · what the event did, then the run's progress bar. The
        labels give up room (the event's text and the title elide) rather than slide under the bar."""
        sb = self.statusBar()
        self.title_label = ElidedLabel()
        self.title_label.setMinimumWidth(60)
        self.variant_label = ElidedLabel()
        self.variant_label.setMinimumWidth(60)
        self.iteration_label = QtWidgets.QLabel()
        self.phase_label = QtWidgets.QLabel()
        self.event_label = ElidedLabel()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFixedWidth(170)
        self.progress.setVisible(False)
        sb.addWidget(self.title_label, 1)
        sb.addWidget(self._sep())
        sb.addWidget(self.variant_label, 1)
        self.variant_sep = self._sep()
        sb.addWidget(self.variant_sep)
        self.position_widgets = [self.iteration_label, self._sep(), self.phase_label, self._sep()]
        for widget in self.position_widgets:          # hidden while a new scenario's run is pending
            sb.addWidget(widget)
        sb.addWidget(self.event_label, 4)
        sb.addPermanentWidget(self.progress)

    @staticmethod
    def _sep():
        line = QtWidgets.QFrame()
        line.setFrameShape(QtWidgets.QFrame.Shape.VLine)
        return line

    # -- files --------------------------------------------------------------------------------
    def open_path(self, path: str | Path, *, confirm: bool = True) -> bool:
        """Open ``path``; a bad file shows its one-line error and leaves the current scenario open.
        True when it opened, or when a large file started loading in a worker (``self.files``)."""
        if confirm and not self.maybe_discard():
            return False
        error = self.load(path)
        if error is not None:
            if error:
                self.show_error(error)
            return False
        if not self.files.opening:
            self.graph.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)   # the keys step through the new scenario
        return True

    def load(self, path: str | Path) -> str | None:
        """Open ``path`` without asking about unsaved edits: None when it opened (or a large file
        started loading in a worker: its error comes as a message), else the one-line error ("" when
        the user declined to run a script)."""
        path = Path(path)
        try:
            if path.suffix == ".py" and not ask_to_run(self, settings(), path, read_script(path)):
                return ""
            if self.files.open(path):
                return None
            self.document.open(path)
        except ScenarioError as exc:
            return str(exc)
        except (OSError, UnicodeDecodeError) as exc:
            return f"{path}: {getattr(exc, 'strerror', None) or exc}"
        self.add_recent(path)
        return None

    def open_default(self) -> None:
        self.open_path(bundled_path(DEFAULT_SCENARIO), confirm=False)

    def open_dialog(self) -> None:
        start = str(self.document.path.parent) if self.document.path else str(Path.home())
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open scenario", start, SCENARIO_FILTER)
        if path:
            self.open_path(path)

    def open_bundled_dialog(self) -> None:
        dialog = BundledDialog(self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted and dialog.selected_path():
            self.open_path(dialog.selected_path())

    def save(self) -> bool:
        doc = self.document
        if doc.path is None or self._is_bundled(doc.path) or (not doc.is_script and doc.source_edited):
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        doc = self.document
        if not doc.is_script and doc.source_edited:
            return self.scripts.save_as_script()      # the edited program is a script now, not TOML
        suffix = ".py" if doc.is_script else ".toml"
        start = str(doc.path) if doc.path else str(Path.home() / ("scenario" + suffix))
        if doc.is_script and doc.path is None:
            start = str(Path.home() / doc.script_name)
        if doc.path and self._is_bundled(doc.path):
            start = str(Path.home() / doc.path.name)
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save scenario as", start,
                                                        SCRIPT_FILTER if doc.is_script else SCENARIO_FILTER)
        if not path:
            return False
        if not path.endswith(suffix):
            path += suffix
        if doc.is_script:
            from .dialogs import trust
            trust(settings(), Path(path), doc.source or "")   # the user wrote what is saved
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        """True when saved (a script), or when a worker has started writing the document (``self.files``)."""
        return self.files.save(path)

    @staticmethod
    def _is_bundled(path: Path) -> bool:
        try:
            folder = path.resolve().parent
            return folder in (bundled_path(DEFAULT_SCENARIO).resolve().parent,
                              bundled_path(DEFAULT_SCENARIO).resolve().parent.parent / "scripts")
        except OSError:
            return False

    def maybe_discard(self) -> bool:
        """True when there are no unsaved edits, or the user saved or chose to discard them."""
        self.files.finish_save()                   # a save being written ends first (it is bounded)
        if not self.document.modified:
            return True
        B = QtWidgets.QMessageBox.StandardButton
        answer = QtWidgets.QMessageBox.question(
            self, "Unsaved changes", f"“{self.document.scenario.title}” has unsaved changes. Save them first?",
            B.Save | B.Discard | B.Cancel, B.Save)
        if answer == B.Save:
            return self.save() and self.files.finish_save()
        return answer == B.Discard

    @staticmethod
    def _recent() -> list[str]:
        # an INI file gives a one-entry list back as a plain string (iterating it would give letters)
        recent = settings().value("recent") or []
        return [recent] if isinstance(recent, str) else list(recent)

    def add_recent(self, path: Path) -> None:
        resolved = str(path.resolve())                 # once (it was resolved again for every entry)
        recent = [p for p in self._recent() if p != resolved]
        settings().setValue("recent", [resolved] + recent[:MAX_RECENT - 1])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for p in recent:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_path(p)).setToolTip(p)
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        QtWidgets.QMessageBox.warning(self, "GradViz", message)

    # -- drag and drop ------------------------------------------------------------------------
    def dragEnterEvent(self, event):
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(files[0])

    # -- the current variant and iteration ------------------------------------------------------
    @property
    def variant(self) -> int:
        return self.view_state.variant

    @property
    def iteration(self) -> int:
        return self.view_state.iteration

    @property
    def replay(self) -> Replay | None:
        return self.player.replay

    @property
    def session(self):
        sessions = self.document.sessions
        return sessions[self.variant] if self.variant < len(sessions) else None

    def set_iteration(self, k: int) -> None:
        """Show optimizer step ``k``, as typing it into the iteration box does."""
        self.view_state.set_iteration(k)

    def _show_trace(self, *_) -> None:
        """Load the trace of the ViewState's (variant, iteration) into the Player, once. While the
        Document runs there is nothing to trace yet: the end of the run comes back here."""
        session, k = self.session, self.view_state.iteration
        if self.document.running or session is None or k >= self.view_state.steps:
            return
        if self._traced[0] is session and self._traced[1] == k:
            return
        try:
            trace = self.traces.get(session, k)   # None: a worker replays it, ready comes back here
        except Exception as exc:
            if type(exc).__name__ == "TraceNotRecorded":      # a script run kept no trace of k
                self.scripts.request_trace(session, k)
                return
            self.show_error(f"Could not replay iteration {k}: {exc}")
            return
        if trace is None:
            return
        self._traced = (session, k)
        was_playing = self.player.playing
        self.player.set_replay(self.traces.replay_of(trace))
        self._end_pending()
        node = self.view_state.selected_node
        if node is not None and node not in self.replay.nodes:
            self.view_state.select_node(None)      # a variant may trace another graph: nothing to show
        if was_playing:
            self.player.play()

    def _on_trace_ready(self) -> None:
        """A trace replayed in a worker is there: show it (and, for a newly opened scenario, fit it)."""
        opened = self.pending
        self._show_trace()
        if self.replay is not None:
            self._show_iteration_box()
            if opened:
                self.graph.fit_to_view()

    def _show_iteration_box(self, *_) -> None:
        """The box shows the ViewState's iteration, within the finished run's steps (its range and
        its value are set together: a value beyond an old range would be clamped and sent back)."""
        n = self.view_state.steps
        self.iteration_box.blockSignals(True)
        if not self.document.running:
            self.iteration_box.setRange(0, max(n - 1, 0))
            self.iteration_total.setText(f" of {n} ")
        self.iteration_box.setValue(self.view_state.iteration)
        self.iteration_box.blockSignals(False)

    def _show_variant(self, *_) -> None:
        """The toolbar's variant box and the status bar name the ViewState's variant."""
        variants = self.document.scenario.variants() if self.document.scenario else []
        i = self.view_state.variant
        self.variant_box.setCurrentIndex(i)
        self.variant_label.setText(f"Run: {variants[i].name if i < len(variants) else ''}")
        self.variant_label.setVisible(len(variants) > 1)
        self.variant_sep.setVisible(len(variants) > 1)

    def _on_iteration_end(self) -> None:
        if self.auto_box.isChecked() and self.iteration + 1 < self.view_state.steps:
            self.view_state.set_iteration(self.iteration + 1)
            self.player.play()

    def _on_scrub(self, value: int) -> None:
        if value != self.player.position:
            self.player.seek(value)

    def _on_replay_changed(self) -> None:
        self.scrubber.blockSignals(True)
        self.scrubber.setRange(0, max(self.player.count - 1, 0))
        self.scrubber.blockSignals(False)

    def _on_position(self, pos: int) -> None:
        frame = self.player.frame
        if frame is None:
            return
        self.scrubber.blockSignals(True)
        self.scrubber.setValue(pos)
        self.scrubber.blockSignals(False)
        message = bool(self.statusBar().currentMessage())     # (it hides the labels meanwhile)
        for widget in self.position_widgets:                  # back after a pending run's text
            if message:         # with the others once the message is gone; shown now, over it
                widget.setAttribute(QtCore.Qt.WidgetAttribute.WA_WState_ExplicitShowHide, False)
            else:
                widget.setVisible(True)
        self.phase_label.setText("Phase: " + phase_label(frame.phase, frame.micro_batch,
                                                         self.replay.accumulation_steps))
        self.event_label.setText(frame.description)
        self.iteration_label.setText(f"Iteration {self.replay.iteration} / {self.view_state.steps}"
                                     f" · event {pos}/{max(self.player.count - 1, 0)}")

    def _on_node_clicked(self, _node_id: int) -> None:
        """The inspector (a tab behind the controls) comes to the front to show the clicked node."""
        self.inspector_dock.show()
        self.inspector_dock.raise_()

    def _on_playing_changed(self, playing: bool) -> None:
        self.act_play.setIcon(icons.icon("pause" if playing else "play"))
        self.act_play.setText("Pause" if playing else "Play")

    # -- document signals ---------------------------------------------------------------------
    def _on_scenario_changed(self) -> None:
        self._update_title()
        variants = self.document.scenario.variants()
        self.variant_box.clear()
        for i, v in enumerate(variants):
            self.variant_box.addItem(variant_swatch(i), v.name)
            self.variant_box.setItemData(i, v.name, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.variant_box.setEnabled(len(variants) > 1)
        self._show_variant()
        self.title_label.setText(self.document.scenario.title)

    def _update_title(self) -> None:
        sc, star = self.document.scenario, "*" if self.document.modified else ""
        self.setWindowTitle(f"{star}{sc.title if sc else ''} — {self._name()} — GradViz")

    def _name(self) -> str:
        doc = self.document
        if doc.path is not None:
            return doc.path.name
        return doc.script_name if doc.is_script else "untitled"

    # -- a new scenario's run: nothing of the previous one stays on screen ----------------------------
    def _on_opened(self) -> None:
        """Another scenario replaces the one shown: until its first trace is ready, the graph, the
        caption, the status bar and the plots say that it is being computed (with progress), and the
        transport keys have nothing to step through (the old trace is gone, not merely hidden)."""
        self.pending = True
        self._traced = (None, -1)
        self.player.pause()
        self.player.set_replay(None)
        self._show_pending(0, 0)
        show = getattr(self.dashboards, "show_pending", None)     # the plots clear it as the new run's data comes
        if show is not None:
            show(self._pending_shown)

    def _pending_text(self, done: int, total: int) -> str:
        doc = self.document
        name = doc.script_name if doc.is_script else (doc.scenario.title if doc.scenario else "")
        if total > 0:
            return f"Running {name}… {min(100, int(100 * done / total))} %"
        if done > 0:
            return f"Running {name}… iteration {done}"
        return f"Running {name}…"

    def _show_pending(self, done: int, total: int, text: str | None = None) -> None:
        text = text or self._pending_text(done, total)
        if text == self._pending_shown:
            return
        self._pending_shown = text
        show = getattr(self.graph, "show_pending", None)
        if show is not None:
            show(text)
        for widget in self.position_widgets:
            widget.setVisible(False)
        self.event_label.setText(text)
        self.iteration_total.setText(" of … ")
        self.scrubber.setRange(0, 0)

    def _end_pending(self) -> None:
        self.pending = False
        self._pending_shown = None

    def _on_run_started(self) -> None:
        self.player.pause()
        self.progress.setVisible(True)
        if self.pending:
            self._show_pending(0, self.document.total_steps)
        if self.document.is_script:
            return                               # ScriptActions shows a script's progress
        self.progress.setRange(0, max(self.document.total_steps, 1))
        self.progress.setValue(0)

    def _on_run_progress(self, done: int, total: int) -> None:
        if self.pending:
            self._show_pending(done, total)
        if self.document.is_script:
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_run_failed(self, _message: str) -> None:
        if self.pending and not self.document.running and not self.document.sessions:
            self._show_pending(0, 0, f"{self._name()}: the run failed, nothing to show")

    def _on_run_finished(self) -> None:
        opened = self.pending          # a newly opened scenario, not a re-run after an edit
        self.progress.setVisible(False)
        self._show_iteration_box()
        history = self.session.history if self.session else None
        if history is not None and history.diverged_at is not None:
            self.statusBar().showMessage(history.message, 10000)
        self._show_trace()
        if self.replay is not None:
            self._end_pending()
            if opened:                 # a re-run keeps the zoom and scroll the user chose
                self.graph.fit_to_view()
        elif self.pending:
            self._show_pending(0, 0, f"{self._name()}: the run failed, nothing to show"
                               if not self.document.sessions or self.view_state.steps == 0
                               else f"{self._name()}: tracing iteration {self.iteration}…")

    # -- fitting, layout, focus ---------------------------------------------------------------------
    def fit_graph(self) -> None:
        """The toolbar's Fit button and F: the whole graph in view (GraphView's ``fit``)."""
        fit = getattr(self.graph, "fit", None)
        (fit if callable(fit) else self.graph.fit_to_view)()

    def reset_layout(self) -> None:
        """View ▸ Reset layout: every dock back in its place, at its default share of the window."""
        self.lesson_dock.setFloating(False)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, self.lesson_dock)   # on top:
        for dock in (self.inspector_dock, self.controls_dock):     # the reset adds these below it
            self.removeDockWidget(dock)
        self.lesson_dock.show()
        self.window_layout.reset()
        QtCore.QTimer.singleShot(0, self._size_lesson)

    def _size_lesson(self) -> None:
        """The Lesson takes the top LESSON_SHARE of the right column, the controls the rest."""
        below = self.controls_dock if not self.controls_dock.visibleRegion().isEmpty() else self.inspector_dock
        if (self.lesson_dock.isVisible() and not self.lesson_dock.isFloating() and below.isVisible()
                and self.dockWidgetArea(below) == self.dockWidgetArea(self.lesson_dock)):
            column = self.lesson_dock.height() + below.height()
            lesson = int(column * LESSON_SHARE)
            self.resizeDocks([self.lesson_dock, below], [lesson, column - lesson], QtCore.Qt.Orientation.Vertical)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if getattr(self, "_shown", False):     # the Lesson keeps its share of the right column
            QtCore.QTimer.singleShot(0, self._size_lesson)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.keys.attach()                     # again, if the window was closed and shown anew
        if not self._shown:
            self._shown = True
            # the first show: a restored arrangement that does not fit is dropped; the keyboard is ours
            QtCore.QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        self.window_layout.apply(force=True)
        self.window_layout.validate()
        self._size_lesson()
        self.activateWindow()
        if QtWidgets.QApplication.focusWidget() is None:
            self.graph.setFocus(QtCore.Qt.FocusReason.ActiveWindowFocusReason)
        self.welcome = show_welcome(self.graph, settings(), dismiss_on=[self.act_play, self.act_fwd, self.act_next_iter,
                                                                       self.lesson.act_next])

    # -- closing ------------------------------------------------------------------------------
    def closeEvent(self, event):
        if not self.maybe_discard():
            event.ignore()
            return
        self.files.cancel_open(quiet=True)
        self.player.pause()
        self.document.close()
        self.window_layout.save(settings())
        settings().setValue(LESSON_LAYOUT_KEY, True)
        self.keys.detach()
        event.accept()
