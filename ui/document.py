"""The open scenario as the views see it: the Scenario, its file, its runs, and whether it changed.

``Document`` owns the Sessions (one per variant) and re-runs them *in chunks* from a zero-interval
QTimer so that long runs never block the event loop; views subscribe to its signals and never
compute anything themselves.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from PySide6 import QtCore

from gradviz.scenario import Scenario, ScenarioError, load, save
from gradviz.training.session import Session

FRAME_BUDGET_S = 0.010     # work per timer tick while re-running: keeps the UI at ~60 Hz


class Document(QtCore.QObject):
    opened = QtCore.Signal()                   # another scenario, not an edit: just before scenarioChanged
    scenarioChanged = QtCore.Signal()          # a different scenario (or edited values) is current
    modifiedChanged = QtCore.Signal(bool)
    runStarted = QtCore.Signal()
    runProgress = QtCore.Signal(int, int)      # steps done, steps total (over all variants)
    runFinished = QtCore.Signal()              # every variant's History is complete
    failed = QtCore.Signal(str)                # a one-line message for the user

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scenario: Scenario | None = None
        self.path: Path | None = None
        self.modified = False
        self.sessions: list[Session] = []
        self._pending: list = []               # (session, chunk iterator) still running
        self._done_steps = 0
        self._total_steps = 0
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._work)
        self._chunk = 10                   # steps per resume: small, the budget loop batches them

    # -- opening and saving ---------------------------------------------------------------------
    def open(self, path: str | Path) -> None:
        """Load ``path``; on error raise ScenarioError and keep the current scenario untouched."""
        scenario = load(Path(path))
        self.set_scenario(scenario, Path(path))

    def set_scenario(self, scenario: Scenario, path: Path | None = None, modified: bool = False) -> None:
        self._drop_runs()
        self.scenario, self.path = scenario, path
        self._set_modified(modified)
        self.opened.emit()
        self.scenarioChanged.emit()
        self.rerun()

    def edit(self, scenario: Scenario) -> None:
        """Replace the scenario by an edited copy (from the controls): marks the document modified."""
        scenario.path = self.scenario.path if self.scenario else None
        if self.scenario is not None:
            scenario.source_text = self.scenario.source_text   # Save edits the original text
        self._drop_runs()
        self.scenario = scenario
        self._set_modified(True)
        self.scenarioChanged.emit()
        self.rerun()

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ScenarioError("<unsaved>", "", None, "a file name", "none (use Save As)")
        save(self.scenario, target)
        self.path = target
        self._set_modified(False)
        return target

    def editable_copy(self) -> Scenario:
        return copy.deepcopy(self.scenario)

    def _set_modified(self, modified: bool) -> None:
        if modified != self.modified:
            self.modified = modified
            self.modifiedChanged.emit(modified)

    # -- running ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._timer.isActive()

    @property
    def total_steps(self) -> int:
        """Steps of the current run over all variants (what ``runProgress`` counts towards)."""
        return self._total_steps

    @property
    def histories(self):
        return [s.history for s in self.sessions]

    def _drop_runs(self) -> None:
        """The runs of the scenario being replaced are not the new one's: while ``scenarioChanged``
        is handled, nothing may show a trace or a History of the old runs as if they were current."""
        self._timer.stop()
        self.sessions, self._pending = [], []

    def rerun(self) -> None:
        """(Re)start every variant's run; progress and completion arrive as signals."""
        self._timer.stop()
        try:
            n = len(self.scenario.variants())
            self.sessions = [Session(self.scenario, i) for i in range(n)]
        except Exception as exc:            # a scenario the loader accepted but the core refuses
            self.sessions, self._pending = [], []
            self.failed.emit(f"{self.scenario.title}: {exc}")
            return
        self._pending = [(s, s.run_chunked(self._chunk)) for s in self.sessions]
        self._total_steps = sum(s.variant_spec.loop.steps for s in self.sessions)
        self._done_steps = 0
        self.runStarted.emit()
        self._timer.start()

    def finish_now(self) -> None:
        """Run whatever is left synchronously (tests, exports that need complete histories)."""
        while self._pending:
            self._work(budget=float("inf"))

    def _work(self, budget: float = FRAME_BUDGET_S) -> None:
        start = time.perf_counter()
        while self._pending and time.perf_counter() - start < budget:
            session, chunks = self._pending[0]
            try:
                done, total = next(chunks)
                self.runProgress.emit(self._done_before(session) + done, self._total_steps)
            except StopIteration:
                self._pending.pop(0)
            except Exception as exc:          # never let a run take the app down
                self._pending.pop(0)
                self.failed.emit(f"{session.variant_spec.name}: {exc}")
        if not self._pending:
            self._timer.stop()
            self.runFinished.emit()

    def _done_before(self, session) -> int:
        steps = 0
        for s in self.sessions:
            if s is session:
                return steps
            steps += s.variant_spec.loop.steps
        return steps
