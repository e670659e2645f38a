"""The open scenario as the views see it: the Scenario, its file, its runs, and whether it changed.

``Document`` owns the Sessions (one per variant) and runs them in a worker thread (``RunThread``,
ui/run_thread.py) so that no run, however long its steps, blocks the event loop: a QTimer on the UI
thread (the pump, every ``PUMP_MS``) reads what the worker published and emits ``runProgress``,
``failed`` and ``runFinished``; ``sessions`` appear once every variant's Session is built, and each
Session's ``history`` is a snapshot of complete rows that grows while it runs. Cancel, an edit, a
re-run or closing stops the worker after the step in progress. Views subscribe to the signals and
never compute anything themselves.

A scenario is a TOML file (data: run in-process by Sessions) or a Python script (a program: run in
the warm worker process, ``ScriptRunner``, with a time limit and a memory cap; its one ScriptRun
then stands where the Sessions stand). The program text the code panel edits is ``source``: the
script's text, or, once the user edits the generated program of a TOML scenario, that edited text
(``source_edited``), which ``run()`` turns into an unsaved script document. A failed script run
says one line (``scriptFailed``) and keeps the previous result.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6 import QtCore

from gradviz.scenario import Scenario, ScenarioError, load, save
from gradviz.scenario.edits import editable_copy

from .run_thread import BREATHER_S, MAX_BREATHER_S, RunThread
from .script_runner import ScriptRunner

LIVE_SPACING = 3.0         # a live runProgress waits 3x as long as the last one took to handle
CLOSE_WAIT_S = 10.0        # closing waits this long for a cancelled run's step (a daemon thread after that)
PUMP_MS = 40               # how often the UI thread reads a run's progress (runProgress at <= 25 Hz)
DEFAULT_TIME_LIMIT_S = 60.0
DEFAULT_MEMORY_MB = 2048
PREFETCH_CHUNK = 20        # iterations one background trace re-run records
_LINE = re.compile(r"^[^:\n]*\.py:(\d+):")   # "lesson.py:4: ..." -> 4


def read_script(path: Path) -> str:
    """The text of a script file (B1's reader when present: size limit, encoding, one clear line)."""
    try:
        from gradviz.scenario.script_source import read_script as read
    except ImportError:
        return path.read_text(encoding="utf-8")
    return read(path)


def script_scenario(path: Path, source: str, result=None) -> Scenario:
    from gradviz.training.script import script_scenario as build
    return build(path, source, result)


def error_line(message: str) -> int:
    """The script line a one-line error names (``lesson.py:4: ...``), 0 when it names none."""
    match = _LINE.match(message)
    return int(match.group(1)) if match else 0


class Document(QtCore.QObject):
    opened = QtCore.Signal()                   # another scenario, not an edit: just before scenarioChanged
    scenarioChanged = QtCore.Signal()          # a different scenario (or edited values) is current
    modifiedChanged = QtCore.Signal(bool)
    runStarted = QtCore.Signal()               # a run began: a TOML run's ``sessions`` are built by now
    runProgress = QtCore.Signal(int, int)      # steps done, steps total (over all variants; 0: unknown)
    runFinished = QtCore.Signal()              # every variant's History is complete (or the run failed)
    failed = QtCore.Signal(str)                # a one-line message for the user
    sourceChanged = QtCore.Signal()            # the program text was replaced (not typed in the panel)
    output = QtCore.Signal(str)                # a script's printed output, GradViz's notes and errors
    scriptFailed = QtCore.Signal(str, int)     # one line naming file:line, and that line (0: none)
    traceReady = QtCore.Signal(object, int)    # (run, iteration) whose on-demand trace arrived

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scenario: Scenario | None = None
        self.path: Path | None = None
        self.modified = False
        self.sessions: list = []
        self._releasing: list = []             # dropped Sessions a worker still used (_let_go_of)
        self.source: str | None = None         # the program text (a script's, or an edited TOML program)
        self.source_edited = False             # a TOML scenario's generated program was edited
        self.last_error: str | None = None     # the last script run's one-line error
        self.time_limit = DEFAULT_TIME_LIMIT_S
        self.memory_mb = DEFAULT_MEMORY_MB
        self.trace_budget: int | None = None   # bytes of traces a script run keeps (None: the runner's)
        self._saved_source: str | None = None  # the script text as on disk
        self._run_path: Path | None = None     # the name an unsaved script runs under
        self._job: RunThread | None = None     # the TOML run in progress (a worker thread)
        self._retired: list[RunThread] = []    # cancelled runs still finishing their step
        self._reported = 0                     # the job's errors already emitted as ``failed``
        self._done_steps = 0
        self._next_live = 0.0                  # the earliest time of the next live runProgress
        self._announced = True                 # runStarted was emitted for the run in progress
        self._last_pump = 0.0                  # when the pump last ran (its lateness: how busy the UI is)
        self._total_steps = 0
        self._timer = QtCore.QTimer(self)      # the pump: the job's progress, errors and end
        self._timer.setInterval(PUMP_MS)
        self._timer.timeout.connect(self._work)
        self.runner = ScriptRunner(self)
        self.runner.progress.connect(self._on_script_progress)
        self.runner.output.connect(self._on_script_output)
        self.runner.done.connect(self._on_script_done)
        self.runner.failed.connect(self._on_script_failed)
        self._run_ticket: int | None = None
        self._ran: tuple[str, Path] | None = None   # (source, path) of the run on screen: traces re-run it
        self._trace_tickets: dict[int, tuple[object, int]] = {}
        # after a script run: the iterations it did not trace, traced in the background in chunks
        # (the last one first, then in order) while the budget lasts; a request goes first
        self._prefetch: list[int] = []
        self._prefetch_job: tuple[int, object, tuple] | None = None    # (ticket, run, iterations)
        self._prefetch_bytes = 0

    # -- opening and saving ---------------------------------------------------------------------
    @property
    def is_script(self) -> bool:
        return self.scenario is not None and self.scenario.script is not None

    @property
    def run_path(self) -> Path:
        """The file name a script runs under (its errors name it): its file, or ``<stem>.py``."""
        return self.path if self.path is not None else (self._run_path or Path("untitled.py"))

    @property
    def script_name(self) -> str:
        return self.run_path.name

    def open(self, path: str | Path) -> None:
        """Load ``path`` (``.toml`` or ``.py``); on error raise ScenarioError (or OSError) and keep the
        current scenario untouched."""
        path = Path(path)
        if path.suffix == ".py":
            source = read_script(path)
            self.set_scenario(script_scenario(path, source), path)
        else:
            self.set_scenario(load(path), path)

    def set_scenario(self, scenario: Scenario, path: Path | None = None, modified: bool = False) -> None:
        self._drop_runs()
        self.scenario, self.path = scenario, path
        self.source = self._saved_source = scenario.script
        self.source_edited, self.last_error, self._ran = False, None, None
        self._set_modified(modified)
        self.opened.emit()
        self.scenarioChanged.emit()
        self.sourceChanged.emit()
        self.rerun()

    def edit(self, scenario: Scenario) -> None:
        """Replace the scenario by an edited copy (from the controls): marks the document modified."""
        if self.is_script:
            return                           # a script's values are its text: the controls do not apply
        scenario.path = self.scenario.path if self.scenario else None
        if self.scenario is not None:
            scenario.source_text = self.scenario.source_text   # Save edits the original text
        self._drop_runs()
        self.scenario = scenario
        self._set_modified(True)
        self.scenarioChanged.emit()
        self.rerun()

    def set_source(self, text: str) -> None:
        """The code panel's text changed (typed, pasted, undone): it is the document now; it runs on
        ``run()``. A script is modified while its text differs from the file's."""
        if self.scenario is None or text == self.source:
            return
        self.source = text
        if self.is_script:
            self._set_modified(text != self._saved_source)
        else:
            self.source_edited = True
            self._set_modified(True)

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ScenarioError("<unsaved>", "", None, "a file name", "none (use Save As)")
        if self.is_script:
            target.write_text(self.source or "", encoding="utf-8")
            self._saved_source = self.source
        else:
            save(self.scenario, target)
        self.path = target
        self._set_modified(False)
        return target

    def mark_saved(self, path: Path, scenario: Scenario) -> None:
        """``scenario``, this document's Scenario when a save began, is in ``path`` now (a save off
        the UI thread, ui/file_jobs.py): the document is that file; it is unmodified if nothing was
        edited since (an edit replaces the Scenario; typing in the code panel sets source_edited)."""
        self.path = path
        current = self.scenario
        if current is not scenario and current is not None:     # edited since: the file is its base now
            current.path, current.source_text = scenario.path, scenario.source_text
        elif not self.source_edited:
            self._set_modified(False)

    def editable_copy(self) -> Scenario:
        """A copy of the scenario to edit (``edits.editable_copy``): its runs and settings its own,
        the data arrays and source text shared, so an edit copies no data."""
        return editable_copy(self.scenario) if self.scenario is not None else None

    def _set_modified(self, modified: bool) -> None:
        if modified != self.modified:
            self.modified = modified
            self.modifiedChanged.emit(modified)

    def close(self) -> None:
        """Stop every run (a run thread ends after its step in progress) and end the worker process."""
        self._drop_runs()
        for job in self._retired:               # each ends after its step in progress
            job.join(CLOSE_WAIT_S)
        self._retired = []
        self.runner.close()

    # -- running ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._job is not None or self._run_ticket is not None

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
        self._stop_run()
        self._let_go_of(self.sessions)
        self.sessions = []
        self._stop_script()

    def _let_go_of(self, sessions) -> None:
        """The runs of ``sessions`` are replaced: their History memory goes back to the pool now
        (``Session.release``), whoever still holds a Session (a finished trace job's key, a closure);
        one a worker is using (a cancelled run's last chunk, a replay) is released once it is free
        (``_release_later``, tried on every pump)."""
        # The memory goes back by release(), not by collecting the old Sessions' cycles: a full
        # gc.collect() before the next runs started took 24-44 ms of a re-run's first turn with the
        # largest expression open; the UI thread's collector (UiThreadGC) gets the cycles later.
        if sessions:
            self._releasing.extend(s for s in sessions if hasattr(s, "release"))
            self._release_later()

    def _release_later(self) -> None:
        self._releasing = [s for s in self._releasing if not s.release()]

    def _stop_run(self) -> None:
        """Cancel the TOML run in progress: its thread ends after the step it is in (joined on close)."""
        self._timer.stop()
        if self._job is not None:
            self._job.cancel()
            self._retired.append(self._job)
            self._job = None
        self._retired = [job for job in self._retired if not job.ended.is_set()]

    def _stop_script(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
        self._run_ticket = None
        self._trace_tickets.clear()
        self._prefetch, self._prefetch_job = [], None

    def run(self) -> None:
        """Ctrl+R: run the program text as it is now. An edited TOML program becomes an unsaved script
        document (named after the scenario) before it runs."""
        if self.scenario is None:
            return
        if not self.is_script and self.source_edited:
            self._become_script()
        self.rerun()

    def _become_script(self) -> None:
        self._run_path = Path((self.path.stem if self.path else "scenario") + ".py")
        scenario = script_scenario(self._run_path, self.source)
        keep = self.sessions[:1]             # the run the panel showed stays on screen until this one ends
        self._stop_run()
        self.scenario, self.path, self.sessions = scenario, None, keep
        self._saved_source, self.source_edited = None, False
        self._set_modified(True)
        self.scenarioChanged.emit()

    def rerun(self) -> None:
        """(Re)start every variant's run; progress and completion arrive as signals."""
        if self.is_script:
            self._run_script()
            return
        self._stop_run()
        self._let_go_of(self.sessions)
        self.sessions = []
        try:
            job = RunThread(self.scenario)
        except Exception as exc:            # e.g. variants the loader accepted but cannot list
            self.failed.emit(f"{self.scenario.title}: {exc}")
            return
        self._job, self._reported = job, 0
        self._next_live = self._last_pump = 0.0
        self._total_steps, self._done_steps = job.total, 0
        self._announced = False              # runStarted goes out once the worker has built the Sessions
        self._timer.start()

    def finish_now(self, timeout: float = 60.0) -> None:
        """Wait for the run in progress and deliver its signals now (tests, exports that need
        complete histories)."""
        if self._job is not None:
            self._job.join(timeout)
            self._work()
        if self.runner.busy:
            self.runner.wait(timeout)

    def _work(self, budget: float = 0.0) -> None:
        """The pump: publish what the run thread did (waiting up to ``budget`` s for it to end
        first): its Sessions once built, its errors, its progress and, once it ended, the end."""
        job = self._job
        if job is None:
            self._timer.stop()
            return
        if budget > 0:                       # a test's nudge: wait for news (a step or the end)
            deadline = time.perf_counter() + budget
            while job.done == self._done_steps and time.perf_counter() < deadline and not job.join(0.005):
                if job.sessions and not self._announced:
                    self._publish(job, False)    # (the runs wait for runStarted: let them start)
        now = time.perf_counter()
        late = now - self._last_pump - PUMP_MS / 1000 if self._last_pump else 0.0
        self._last_pump = now
        # the later this tick, the busier the UI thread: the worker gives it more of the GIL
        job.breather = min(MAX_BREATHER_S, max(BREATHER_S, 0.5 * job.breather + 0.5 * late))
        self._next_live = max(self._next_live, now + LIVE_SPACING * late)    # ... and fewer live updates
        self._publish(job, job.ended.is_set())
        self._last_pump = time.perf_counter()   # lateness counts the loop's other work, not the pump's

    def _publish(self, job: RunThread, ended: bool) -> None:
        if self._releasing:
            self._release_later()
        if job.sessions and self.sessions is not job.sessions:
            self.sessions = job.sessions
        if not self._announced and (job.sessions or ended):
            self._announced = True
            self.runStarted.emit()
            job.go.set()                     # the views show the new Sessions: the runs may start
        now = time.perf_counter()
        if job.done != self._done_steps and (ended or now >= self._next_live):
            self._done_steps = job.done
            self.runProgress.emit(job.done, self._total_steps)      # still running: views wait for the end
            # live updates cost what their handlers do: keep them to at most 1 / LIVE_SPACING of the time
            self._next_live = now + LIVE_SPACING * (time.perf_counter() - now)
        if ended:                            # no longer running while the last signals go out
            self._timer.stop()
            self._job = None
        while self._reported < len(job.errors):
            self._reported += 1
            self.failed.emit(job.errors[self._reported - 1])
        if ended:
            self.runFinished.emit()

    # -- running a script ---------------------------------------------------------------------
    def _run_script(self) -> None:
        self._stop_script()
        source, path = self.source or "", self.run_path
        self._run_ticket = self.runner.submit(source, path, timeout=self.time_limit, memory_mb=self.memory_mb,
                                              trace_budget=self.trace_budget)
        self._running_source = (source, path)
        self._total_steps = self._done_steps = 0
        self.output.emit(f"▶ {path.name}")
        self.runStarted.emit()

    def cancel(self) -> None:
        """Stop the run in progress. A script's previous result stays; a TOML run keeps the steps
        it did (its History says "cancelled after N of M steps"), ``runFinished`` follows."""
        if self._run_ticket is not None:
            self._stop_script()
            self._fail(f"{self.script_name}: run cancelled", 0)
        elif self._job is not None and not self._job.cancelled:
            self._job.cancel()
            self.output.emit(f"{self.scenario.title}: run cancelled")

    def _on_script_progress(self, ticket: int, iterations: int, _elapsed: float) -> None:
        if ticket == self._run_ticket:
            self._done_steps = iterations
            self.runProgress.emit(iterations, 0)

    def _on_script_output(self, ticket: int, text: str) -> None:
        if ticket == self._run_ticket:        # a trace re-run prints the same again: not shown twice
            self.output.emit(text)

    def _on_script_done(self, ticket: int, result) -> None:
        if self._prefetch_job is not None and ticket == self._prefetch_job[0]:
            self._prefetched(result)
            return
        if ticket in self._trace_tickets:
            run, k = self._trace_tickets.pop(ticket)
            trace = result.traces.get(k) if result.error is None else None
            if trace is None:
                self.output.emit(f"could not trace iteration {k}: {result.error or 'no trace came back'}")
            else:
                run.add_trace(trace)
                self.traceReady.emit(run, k)
            self._prefetch_next()
            return
        if ticket != self._run_ticket:
            return
        self._run_ticket = None
        for note in result.notes:
            self.output.emit(f"note: {note}")
        if result.error is not None:
            self._fail(str(result.error), int(result.error.line or 0))
            return
        from gradviz.training.script import ScriptRun
        source, path = self._running_source
        try:
            scenario = script_scenario(path, source, result)
            run = ScriptRun(result, scenario)
        except Exception as exc:              # never let a result take the app down
            self._fail(f"{path.name}: {exc}", 0)
            return
        self.scenario, self.sessions, self._ran, self.last_error = scenario, [run], (source, path), None
        steps = run.history.steps if run.history is not None else 0     # a script may run no iteration
        self.output.emit(f"✓ {path.name}: {steps} iteration{'s' if steps != 1 else ''}")
        self.scenarioChanged.emit()
        self.runFinished.emit()
        self._start_prefetch(run, result)

    # -- tracing in the background ------------------------------------------------------------------
    def _start_prefetch(self, run, result) -> None:
        from gradviz.training.script import untraced
        missing = [] if result.budget_hit or result.history is None else untraced(result)
        if missing and missing[-1] == result.history.steps - 1:
            missing = missing[-1:] + missing[:-1]          # the last iteration first (a run ends there)
        self._prefetch, self._prefetch_job = missing, None
        self._prefetch_bytes = result.trace_bytes
        self._prefetch_next()

    def _budget(self) -> int:
        from gradviz.training.script import TRACE_BUDGET
        return self.trace_budget if self.trace_budget is not None else TRACE_BUDGET

    def _prefetch_next(self) -> None:
        """Submit the next chunk of untraced iterations, when nothing else is waiting (lowest priority)."""
        if self._prefetch_job is not None or not self._prefetch or self._ran is None or not self.sessions:
            return
        if self._run_ticket is not None or self._trace_tickets or self._prefetch_bytes >= self._budget():
            return
        run, (source, path) = self.sessions[0], self._ran
        chunk = [self._prefetch[0]]
        for k in self._prefetch[1:]:
            if k != chunk[-1] + 1 or len(chunk) >= PREFETCH_CHUNK:
                break
            chunk.append(k)
        ticket = self.runner.submit(source, path, timeout=self.time_limit, memory_mb=self.memory_mb,
                                    trace_only=range(chunk[0], chunk[-1] + 1),
                                    trace_budget=self._budget() - self._prefetch_bytes)
        self._prefetch_job = (ticket, run, tuple(chunk))

    def _prefetched(self, result) -> None:
        _ticket, run, chunk = self._prefetch_job
        self._prefetch_job = None
        if result.error is not None or run not in self.sessions:
            self._prefetch = []                     # the same script failed now: stop quietly
            return
        got = {k: t for k, t in result.traces.items() if not run.has_trace(k)}
        self._prefetch_bytes += result.trace_bytes
        self._prefetch = [k for k in self._prefetch if k not in result.traces]
        if result.budget_hit or not result.traces:
            self._prefetch = []
        for trace in got.values():
            run.add_trace(trace)
        for k in got:
            self.traceReady.emit(run, k)
        self._prefetch_next()

    @property
    def prefetching(self) -> bool:
        """Untraced iterations are being traced in the background."""
        return self._prefetch_job is not None or bool(self._prefetch)

    def _on_script_failed(self, ticket: int, message: str, line: int = 0) -> None:
        if self._prefetch_job is not None and ticket == self._prefetch_job[0]:
            self._prefetch, self._prefetch_job = [], None      # e.g. the time limit: stop quietly
        elif ticket in self._trace_tickets:
            _run, k = self._trace_tickets.pop(ticket)
            self.output.emit(f"could not trace iteration {k}: {message}")
            self._prefetch_next()
        elif ticket == self._run_ticket:
            self._run_ticket = None
            self._fail(message, line or error_line(message))

    def _fail(self, message: str, line: int) -> None:
        """A script run failed: say it (one line), light its line; the previous result stays."""
        self.last_error = message
        self.output.emit(message)
        self.scriptFailed.emit(message, line)
        self.runFinished.emit()

    def request_trace(self, run, k: int) -> bool:
        """Ask the worker to record iteration ``k`` of ``run`` (a script run whose trace of ``k`` was
        not kept); ``traceReady(run, k)`` follows. False when there is nothing to re-run."""
        if self._ran is None or run not in self.sessions:
            return False
        if any(asked == (run, k) for asked in self._trace_tickets.values()):
            return True
        job = self._prefetch_job
        if job is not None and job[1] is run and k in job[2] and self.runner.running_ticket == job[0]:
            return True                          # the background chunk running now brings it
        if job is not None:                      # the request goes first: the chunk is done later
            self.runner.cancel(job[0])
            self._prefetch_job = None
        source, path = self._ran
        ticket = self.runner.submit(source, path, timeout=self.time_limit, memory_mb=self.memory_mb,
                                    trace_only=k, front=True)
        self._trace_tickets[ticket] = (run, k)
        return True
