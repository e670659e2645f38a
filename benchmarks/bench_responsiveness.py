"""Does the window stay responsive, and how much memory does it take, with a scenario at the limits?

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_responsiveness.py [SCENARIO ...] [--quick] [-v]

Each scenario is opened in the real main window (``ui.app.make_window``, offscreen, 1400 x 860,
settings in a temporary directory with the first-run welcome marked seen, message boxes recorded
instead of shown), in a process of its own, which then, step by step, as a user would:

0. ``startup``: builds the window with the tutorial (as the app does) and shows it (the UI modules
   are imported before the clock starts). Reported on its own, not in the longest stall: it runs
   before the window exists, so there is no window to freeze (a user waits for it to appear);
1. ``open``: File > Open of the file in that window (``open_path``), until a large file's load in a
   worker (``window.files``) has ended and the scenario is on screen;
2. ``run``: lets every variant's run finish and the first trace appear;
3. ``play``: plays one iteration from its start to its end (at the speed that takes about
   ``--play-seconds``);
4. ``iteration``: changes the iteration three times in the toolbar's box (the last, the middle, the
   second), each time until its trace is shown; ``jump``: then, each time, sets the event scrubber
   near the iteration's end, to its middle and to three quarters (as a click on it does);
5. ``expand/collapse``: toggles every foldable module of the graph and back
   (``GraphView.set_collapsed``), one relayout each (``MAX_TOGGLED`` of them, evenly spread, in a graph
   of more); then expands all of them and collapses all of them (the graph's context menu:
   ``set_modules_collapsed``, one fold each), until drawn;
6. ``edit lr``: types half the learning rate into the Controls' lr field and presses Enter;
   ``re-run``: lets the runs that edit starts finish;
7. ``save``: File > Save As to a temporary file (the dialog answered by the benchmark), until a
   large document's save in a worker has ended.

A step ends when what it waits for holds and then the event loop has been quiet for ``--settle``
ms (at most two gaps over 7 ms in that time: an idle loop turns every 5 ms, a time-sliced job
makes every gap longer), or after 5 s: work a step deferred (time-sliced layouts, repaints) counts
to the step. A script (``.py``) skips ``edit lr``: the Controls do not edit a script.

All along, a 5 ms timer measures the gaps in the event loop: the longest gap is the longest time
the window could not repaint or react to a click, and it is attributed to the step under way when
it ended. With ``--sample``, a thread samples the main thread's Python stack every 10 ms while the
loop is stalled (with ``faulthandler.dump_traceback``); the
``cause`` line names where the longest stall spent its time (the path most samples share and the
innermost function most often on top). Sampling is off by default because it perturbs what it
measures: each sample takes the GIL and dumps every thread's stack, and on 2 cores limit_data's run
took 225 s with it and 169 s without, with 26 gaps over 50 ms against 6. Peak memory is the
process's ``ru_maxrss`` (it includes Python, numpy and Qt: about 125 MB before the window is built,
180 MB with the tutorial open).

Prints one line per file, then the cause::

    limit_mlp.toml: longest stall 14966 ms, peak memory 2219 MB (in run)
        cause: ui/document.py:_work > gradviz/training/session.py:_run > … > gradviz/functions.py:_addmm_bw
        [71% of 1061 samples]; on top: …

``-v`` adds, per step, the longest gap, the time the step took and its cause. Targets (issue 12):
longest stall under 50 ms, peak memory within the document budget.

With no scenario it uses the files of ``limit_files.py`` (the largest data, MLP, expression, the
most micro-batches, the most variants, the most modules), written to a temporary directory; ``--quick`` writes small
versions (a smoke run of a minute or so). A name of one of them (``limit_mlp``) generates just that
file. Each file has ``--timeout`` seconds (a step that waits longer is reported, and a window that
stops turning is stopped and, with py-spy next to the interpreter, its stack shown), and the
process is stopped at ``--max-memory`` MB (reported with the step it reached).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TICK_MS = 5                    # the timer that measures the gaps
SAMPLE_AFTER_S = 0.030         # a gap this long is a stall: the sampler starts taking stacks
SAMPLE_EVERY_S = 0.010
MEMORY_EVERY_S = 0.050
TARGET_STALL_MS = 50
MAX_TOGGLED = 24               # modules toggled one at a time (a graph of 499 modules: each fold 0.3-0.9 s)
QUIET_GAP_S = 0.007           # a gap over this: the loop is busy (a step has not settled yet) ...
BUSY_GAPS = 2                  # ... when there are more than this many in the settle time
MAX_SETTLE_S = 5.0
KILL_GRACE_S = 30              # after --timeout, how long a child that stopped turning gets to report
RESULT, STEP, WORST, MEMORY = "RESULT ", "STEP ", "WORST ", "MEMORY "   # the child's lines to the parent


# ====================================================================================================
# The child: one scenario in one process
# ====================================================================================================

def _label(filename: str) -> str:
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


class StackReader:
    """The main thread's stack, read with ``faulthandler.dump_traceback`` (CPython's own dump for hangs:
    it reads the frames without making frame objects; walking ``sys._current_frames()`` from another
    thread crashed CPython 3.11 here) into a temporary file."""

    def __init__(self, thread_id: int):
        self.file = tempfile.TemporaryFile(mode="w+")
        self.header = f"Thread 0x{thread_id:016x}"
        self.here = os.path.abspath(__file__)
        self.labels: dict[str, str] = {}

    def read(self) -> list[str]:
        """``file:function`` of every frame, outermost first, without this benchmark's own frames."""
        import faulthandler
        self.file.seek(0)
        self.file.truncate()
        faulthandler.dump_traceback(self.file, all_threads=True)
        self.file.flush()
        self.file.seek(0)
        out, mine = [], False
        for line in self.file.read().splitlines():
            if line.startswith(("Thread 0x", "Current thread 0x")):
                mine = self.header in line
                continue
            if mine and line.startswith('  File "'):
                filename, _, rest = line[len('  File "'):].partition('", line ')
                function = rest.partition(" in ")[2]
                if filename != self.here:
                    label = self.labels.get(filename) or self.labels.setdefault(filename, _label(filename))
                    out.append(f"{label}:{function}")
        return out[::-1]


def cause(samples: list[list[str]]) -> str:
    """Where a stall spent its time: the call path most samples share (followed while a child keeps at
    least half of them), and the innermost function most often on top."""
    if not samples:
        return "not sampled (too short, or one C call holding the GIL)"
    if not any(samples):
        return "Qt's own C++ work (no Python frame on the stack: painting, widget layout)"
    samples = [s or ["Qt C++ (no Python frame)"] for s in samples]
    n = len(samples)
    path, group = [], samples
    while True:
        counts: dict[str, int] = {}
        depth = len(path)
        for s in group:
            if len(s) > depth:
                counts[s[depth]] = counts.get(s[depth], 0) + 1
        if not counts:
            break
        best, count = max(counts.items(), key=lambda item: item[1])
        if count * 2 < n:
            break
        path.append(best)
        group = [s for s in group if len(s) > depth and s[depth] == best]
    shown = path if len(path) <= 7 else path[:2] + ["…"] + path[-4:]
    share = 100 * len(group) // n
    leaves: dict[str, int] = {}
    for s in samples:
        leaves[s[-1]] = leaves.get(s[-1], 0) + 1
    top = sorted(leaves.items(), key=lambda item: -item[1])[:2]
    hottest = ", ".join(f"{name} {100 * c // n}%" for name, c in top)
    return f"{' > '.join(shown) or '(various)'} [{share}% of {n} samples]; on top: {hottest}"


class Meter:
    """The gap timer, the stack sampler and the memory cap of one process."""

    def __init__(self, max_memory_mb: float, sample: bool = True):
        from PySide6 import QtCore
        self.step = "start"
        self.steps: list[dict] = []        # {name, kind, start, end, gap, cause}
        self.worst = {"gap": 0.0, "step": "", "cause": ""}
        self.stalls: list[tuple[float, str]] = []       # (gap s, step) of every stall
        self.last = time.perf_counter()
        self.busy: list[float] = []        # when the last few busy gaps ended
        self.max_memory = max_memory_mb * 1e6
        self.sample = sample
        self._samples: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()
        self.reader = StackReader(threading.main_thread().ident)
        self._stop = threading.Event()
        self.timer = QtCore.QTimer()
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self.last = time.perf_counter()
        self.timer.start()
        self.thread.start()

    def stop(self) -> None:
        self.timer.stop()
        self._stop.set()

    def begin(self, name: str, kind: str | None = None) -> None:
        now = time.perf_counter()
        if self.steps and self.steps[-1]["end"] is None:
            self.steps[-1]["end"] = now
        self.steps.append(dict(name=name, kind=kind or name, start=now, end=None, gap=0.0, cause=""))
        self.step = name
        print(f"{STEP}{name}", flush=True)

    def tick(self) -> None:
        now = time.perf_counter()
        gap, started = now - self.last, self.last
        self.last = now
        if gap > QUIET_GAP_S:
            self.busy.append(now)
            del self.busy[:-BUSY_GAPS - 1]
        step = self.steps[-1] if self.steps else None
        stall = gap >= SAMPLE_AFTER_S
        if stall:
            with self._lock:
                stacks = [s for key, s in self._samples if key == started]
                self._samples = []
            self.stalls.append((gap, self.step))
        if step is not None and gap > step["gap"]:
            step["gap"], step["cause"] = gap, cause(stacks) if stall and self.sample else ""
        if gap > self.worst["gap"] and (step is None or step["kind"] != "startup"):   # no window yet
            self.worst = {"gap": gap, "step": self.step, "cause": step["cause"] if step else ""}
            if stall:
                print(f"{WORST}{gap * 1000:.0f} {self.step}", flush=True)

    def _watch(self) -> None:
        """Wakes only when there may be something to do: a stack to take once the loop has been
        quiet for SAMPLE_AFTER_S, the memory every MEMORY_EVERY_S. Each wake takes the GIL, and with
        the run thread on one core and the UI on the other, a thread that woke every 10 ms made
        stalls of its own (perf: 330 µs of CPU a wake under load; with such a thread, 1-5 gaps over
        50 ms in 100 s of limit_data's run, without it 0-1)."""
        next_memory = 0.0
        page = os.sysconf("SC_PAGE_SIZE")
        wait = SAMPLE_EVERY_S
        while not self._stop.wait(wait):
            now, last = time.perf_counter(), self.last
            if self.sample and now - last > SAMPLE_AFTER_S:
                stack = self.reader.read()
                with self._lock:
                    self._samples.append((last, stack))
                wait = SAMPLE_EVERY_S
            else:           # the loop turned lately: look again when it could first be a stall
                wait = max(SAMPLE_EVERY_S, min(last + SAMPLE_AFTER_S - now, MEMORY_EVERY_S)) \
                    if self.sample else MEMORY_EVERY_S
            if now >= next_memory:
                next_memory = now + MEMORY_EVERY_S
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * page
                if rss > self.max_memory:
                    print(f"{MEMORY}{rss / 1e6:.0f} {self.step}", flush=True)
                    os._exit(3)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KB on Linux


class Bench:
    """The steps, as a generator the driver timer resumes when the condition it yields holds."""

    def __init__(self, path: Path, args, meter: Meter, tmp: Path):
        self.path, self.args, self.meter, self.tmp = path, args, meter, tmp
        self.window = None
        self.messages: list[str] = []
        self.failures: list[str] = []
        self.notes: list[str] = []

    # -- the plan -------------------------------------------------------------------------------
    def steps(self):
        from PySide6 import QtCore
        from PySide6.QtTest import QTest

        from ui.app import make_window
        m = self.meter
        m.begin("startup")
        w = self.window = make_window(None)
        w.resize(1400, 860)
        w.show()
        doc = w.document
        doc.failed.connect(self.failures.append)
        m.tick()                                   # building the window: before it shows
        yield "the tutorial's run", lambda: self._shown() or self.failures

        m.begin("open")
        opened = []
        doc.opened.connect(lambda: opened.append(True))
        w.open_path(str(self.path), confirm=False)
        files = getattr(w, "files", None)          # a large file is loaded in a worker (ui/file_jobs.py)
        yield "the file to load", lambda: (files is None or not files.busy) and (opened or self.messages)
        if self.messages:
            raise Abort(f"could not open: {self.messages[0]}")

        m.begin("run")
        yield "the runs to finish", lambda: self._shown() or self.failures
        if self.failures:
            raise Abort(f"the run failed: {self.failures[0]}")

        m.begin("play")
        player = w.player
        player.seek(0)
        player.set_speed(max(32.0, player.count / max(self.args.play_seconds, 0.1)))
        player.play()
        yield "one iteration to play", lambda: not player.playing

        steps = w.view_state.steps
        targets = []
        for k in (steps - 1, steps // 2, 1):
            if 0 <= k < steps and k != w.view_state.iteration and k not in targets:
                targets.append(k)
        for k in targets:
            m.begin(f"iteration {k}", "iteration")
            w.iteration_box.setValue(k)
            yield f"iteration {k}'s trace", lambda k=k: self._shown(k)
            m.begin(f"jumps in iteration {k}", "jump")       # the scrubber set as a click on it does
            for at in (0.98, 0.5, 0.75):
                w.scrubber.setValue(int(at * (w.player.count - 1)))
                yield "the jump drawn", lambda: True
        if not targets:
            self.notes.append("one iteration only: no iteration change")

        graph = w.graph
        modules = list(graph.collapsible_modules())
        toggled = modules
        if len(modules) > MAX_TOGGLED:             # evenly spread (all of them fold in "expand all" below)
            toggled = [modules[i] for i in np.linspace(0, len(modules) - 1, MAX_TOGGLED).round().astype(int)]
            self.notes.append(f"{MAX_TOGGLED} of {len(modules)} modules toggled one at a time")
        for module in toggled:
            for _ in range(2):
                folded = graph.is_collapsed(module)
                m.begin(f"{'expand' if folded else 'collapse'} module {module}", "expand/collapse")
                graph.set_collapsed(module, not folded)
                yield "the relayout", lambda: True
        if modules:                                # the context menu's "Expand all" / "Collapse all": one fold
            opened = [m for m in modules if not graph.is_collapsed(m)]
            for label, collapsed in (("expand all modules", False), ("collapse all modules", True)):
                m.begin(label, "expand/collapse")
                graph.set_modules_collapsed(modules, collapsed)
                yield "the fold drawn", lambda: graph._refold_job is None and graph._build_job is None
            graph.set_modules_collapsed(opened, False)           # as the file opened
            yield "the fold drawn", lambda: graph._refold_job is None and graph._build_job is None
        if not modules:
            self.notes.append("no foldable module")

        if doc.is_script:
            self.notes.append("a script: its values are its text, the Controls do not edit it (no lr edit)")
            yield from self.save(doc)
            return
        controls = w.controls
        lr = float(doc.scenario.variants()[w.view_state.variant].optimizer.hyper["lr"])
        text = f"{lr / 2:.6g}"
        m.begin("edit lr")
        edit = controls.lr_edit
        edit.setFocus()
        edit.selectAll()
        QTest.keyClicks(edit, text)
        QTest.keyClick(edit, QtCore.Qt.Key.Key_Return)
        m.tick()                                   # the edit's own stall; the re-run starts at once
        new = float(doc.scenario.variants()[w.view_state.variant].optimizer.hyper["lr"])
        if not doc.modified or abs(new - float(text)) > 1e-12 * max(1.0, abs(new)):
            self.notes.append(f"lr edit not applied ({lr} -> {new}, typed {text}; "
                              f"{'; '.join(self.messages) or 'no message'})")
        m.begin("re-run")
        yield "the re-run to finish", lambda: self._shown() or self.failures
        yield from self.save(doc)

    def save(self, doc):
        w, m = self.window, self.meter
        m.begin("save")
        target = self.tmp / f"saved-{self.path.stem}{'.py' if doc.is_script else '.toml'}"
        self.save_to = target
        w.act_save_as.trigger()
        files = getattr(w, "files", None)          # a large document is written in a worker
        yield "the save", lambda: files is None or not files.busy
        if not target.exists() or target.stat().st_size == 0:
            self.notes.append(f"save wrote nothing ({'; '.join(self.messages) or 'no message'})")
        m.begin("end")

    def _shown(self, k: int | None = None) -> bool:
        """The runs have finished and the trace (of iteration ``k``) is in the player."""
        w = self.window
        replay = w.player.replay
        if w.document.running or replay is None:
            return False
        return k is None or getattr(replay, "iteration", k) == k

    # -- dialogs -------------------------------------------------------------------------------------
    def patch_dialogs(self) -> None:
        from PySide6 import QtWidgets
        B = QtWidgets.QMessageBox.StandardButton

        def record(parent, title, text, *a, **k):
            self.messages.append(str(text))
            return B.Ok

        QtWidgets.QMessageBox.warning = staticmethod(record)
        QtWidgets.QMessageBox.critical = staticmethod(record)
        QtWidgets.QMessageBox.information = staticmethod(record)
        QtWidgets.QMessageBox.question = staticmethod(     # a script the benchmark is given may run
            lambda parent, title, *a, **k: B.Yes if title == "Run this script?" else B.Discard)
        QtWidgets.QFileDialog.getSaveFileName = staticmethod(
            lambda *a, **k: (str(getattr(self, "save_to", self.tmp / "saved.toml")), ""))


class Abort(Exception):
    pass


def run_child(args) -> int:
    import faulthandler
    faulthandler.enable()                # a crash prints every thread's stack to stderr (shown by the parent)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tmp = Path(args.home or tempfile.mkdtemp(prefix="gradviz-bench-"))
    os.environ["HOME"] = str(tmp)
    from PySide6 import QtCore, QtWidgets
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    app.setApplicationName("GradViz")
    app.setOrganizationName("GradViz")
    from ui import theme
    theme.apply(app)
    try:
        from ui.dialogs import settings
        from ui.welcome import SEEN_KEY
        settings().setValue(SEEN_KEY, True)
    except ImportError:
        pass
    import ui.main_window  # noqa: F401  (imported before the clock starts: "open" is not Python's imports)
    baseline = peak_mb()
    meter = Meter(args.max_memory, args.sample)
    bench = Bench(Path(args.child), args, meter, tmp)
    bench.patch_dialogs()
    plan = bench.steps()
    deadline = time.perf_counter() + args.timeout
    state = {"wait": None, "what": "", "since": None, "error": None}
    driver = QtCore.QTimer()
    driver.setInterval(10)

    def finish(error: str | None = None) -> None:
        driver.stop()
        meter.stop()
        state["error"] = error
        app.quit()

    def drive() -> None:
        now = time.perf_counter()
        if state["wait"] is not None:
            if now > deadline:
                finish(f"timed out after {args.timeout:.0f} s waiting for {state['what']} in step "
                       f"'{meter.step}'")
                return
            if state["since"] is None:
                if not state["wait"]():
                    return
                state["since"] = now                        # holds: let the loop settle, then go on
            settle = args.settle / 1000
            quiet = now - state["since"] >= settle and sum(t > now - settle for t in meter.busy) <= BUSY_GAPS
            if not quiet and now - state["since"] < MAX_SETTLE_S:
                return
            if not quiet:
                bench.notes.append(f"the loop was still busy {MAX_SETTLE_S:.0f} s after step '{meter.step}'")
        try:
            state["what"], state["wait"] = next(plan)
            state["since"] = None
            meter.tick()                 # the step's action ran in this callback: its gap ends here
        except StopIteration:
            finish()
        except Abort as exc:
            finish(str(exc))
        except Exception as exc:                          # a bug in the app or here: say which step
            import traceback
            traceback.print_exc()
            finish(f"{type(exc).__name__} in step '{meter.step}': {exc}")

    driver.timeout.connect(drive)
    meter.start()
    QtCore.QTimer.singleShot(50, driver.start)
    app.exec()
    steps = [dict(s, end=s["end"] or time.perf_counter()) for s in meter.steps if s["name"] != "end"]
    result = dict(
        file=str(args.child), error=state["error"], notes=bench.notes, baseline_mb=baseline, peak_mb=peak_mb(),
        worst=meter.worst, steps=[dict(name=s["name"], kind=s["kind"], gap=s["gap"], seconds=s["end"] - s["start"],
                                       cause=s["cause"]) for s in steps],
        stalls=sorted(meter.stalls, reverse=True)[:5], stall_count=sum(g * 1000 > TARGET_STALL_MS
                                                                         for g, _ in meter.stalls))
    print(RESULT + json.dumps(result), flush=True)
    if bench.window is not None:
        bench.window.document.modified = False
        bench.window.player.pause()
        close = getattr(bench.window.document, "close", None)
        if close is not None:
            close()
    os._exit(0)         # the window, its threads and worker process go with the process


# ====================================================================================================
# The parent: one child per file, with a time limit
# ====================================================================================================

def pyspy_dump(pid: int) -> str:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return ""
    try:
        out = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return "\n".join("        " + line for line in lines[:14])


def measure(path: Path, args) -> dict:
    """Run the child on ``path`` (its settings and saved file in a temporary directory removed after);
    -> its result, or what is known when it was stopped."""
    with tempfile.TemporaryDirectory(prefix="gradviz-bench-") as home:
        return _measure(path, args, home)


def _measure(path: Path, args, home: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", str(path), "--timeout", str(args.timeout),
               "--max-memory", str(args.max_memory), "--settle", str(args.settle),
               "--play-seconds", str(args.play_seconds), "--home", home] + (["--sample"] if args.sample else [])
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             cwd=str(ROOT))
    lines: queue.Queue = queue.Queue()
    errors: list[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout] + [lines.put(None)],
                     daemon=True).start()
    threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True).start()
    known = {"step": "start", "worst": None}
    limit = time.perf_counter() + args.timeout + KILL_GRACE_S
    while True:
        try:
            line = lines.get(timeout=max(0.1, limit - time.perf_counter()))
        except queue.Empty:
            stack = pyspy_dump(child.pid)
            child.kill()
            child.wait()
            return dict(stopped=f"stopped turning: no answer {args.timeout + KILL_GRACE_S:.0f} s after the start, "
                                f"in step '{known['step']}'", stack=stack, **known)
        if line is None:
            break
        if line.startswith(RESULT):
            child.wait()
            return json.loads(line[len(RESULT):])
        if line.startswith(STEP):
            known["step"] = line[len(STEP):].strip()
        elif line.startswith(WORST):
            gap, step = line[len(WORST):].strip().split(" ", 1)
            known["worst"] = (float(gap), step)
        elif line.startswith(MEMORY):
            rss, step = line[len(MEMORY):].strip().split(" ", 1)
            known["memory"] = float(rss)
            known["step"] = step
    code = child.wait()
    if "memory" in known:
        return dict(stopped=f"stopped at the memory cap ({args.max_memory:.0f} MB): {known['memory']:.0f} MB "
                            f"in step '{known['step']}'", **known)
    tail = "".join(errors).strip().splitlines()[-3:]
    return dict(stopped=f"exited with code {code} in step '{known['step']}': " + " | ".join(tail), **known)


def report(name: str, result: dict, verbose: bool) -> list[str]:
    if "stopped" in result:
        worst = result.get("worst")
        so_far = f" (longest stall so far {worst[0]:.0f} ms in {worst[1]})" if worst else ""
        lines = [f"{name}: {result['stopped']}{so_far}"]
        if result.get("stack"):
            lines.append("    py-spy dump:\n" + result["stack"])
        return lines
    worst = result["worst"]
    line = (f"{name}: longest stall {worst['gap'] * 1000:.0f} ms, peak memory {result['peak_mb']:.0f} MB "
            f"(in {worst['step'] or '-'})")
    startup = [s for s in result.get("steps", []) if s["kind"] == "startup"]
    if startup:
        line += f"; startup {startup[0]['gap'] * 1000:.0f} ms (the window built, before it shows)"
    if result["error"]:
        line += f"; INCOMPLETE: {result['error']}"
    lines = [line]
    if worst["cause"]:
        lines.append(f"    cause: {worst['cause']}")
    for note in result["notes"]:
        lines.append(f"    note: {note}")
    if verbose:
        lines.append(f"    {result['stall_count']} stalls over {TARGET_STALL_MS} ms; memory before opening "
                     f"{result['baseline_mb']:.0f} MB")
        kinds: dict[str, dict] = {}
        for s in result["steps"]:
            k = kinds.setdefault(s["kind"], dict(gap=0.0, seconds=0.0, count=0, name="", cause=""))
            k["seconds"] += s["seconds"]
            k["count"] += 1
            if s["gap"] >= k["gap"]:
                k.update(gap=s["gap"], name=s["name"], cause=s["cause"])
        lines.append(f"    {'step':<18} {'longest gap':>11} {'took':>9}  worst / cause")
        for kind, k in kinds.items():
            times = f" x{k['count']}" if k["count"] > 1 else ""
            where = f"{k['name']}: " if k["count"] > 1 else ""
            lines.append(f"    {kind + times:<18} {k['gap'] * 1000:8.0f} ms {k['seconds']:7.2f} s  "
                         f"{where}{k['cause'] or '-'}")
    return lines


def scenario_paths(args, directory: Path) -> list[Path]:
    import limit_files
    if not args.scenarios:
        print(f"generating the {'quick ' if args.quick else ''}limit files in {directory} ...", flush=True)
        paths = limit_files.generate(directory, args.quick)
        for path in paths:
            print("  " + limit_files.describe(path), flush=True)
        return paths
    paths = []
    for arg in args.scenarios:
        name = next((n for n in (arg, arg + ".toml", arg + ".py") if n in limit_files.FILES), arg)
        if not Path(arg).exists() and name in limit_files.FILES:
            path = limit_files.generate(directory, args.quick, [name])[0]
            print("  " + limit_files.describe(path), flush=True)
            paths.append(path)
        else:
            paths.append(Path(arg))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="scenario files (default: the generated limit files)")
    parser.add_argument("--quick", action="store_true", help="small versions of the generated files")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per file (default 600, with --quick 120)")
    parser.add_argument("--max-memory", type=float, default=4096, help="stop a file's process above this RSS (MB)")
    parser.add_argument("--settle", type=float, default=150, help="ms the loop idles after each step")
    parser.add_argument("--play-seconds", type=float, default=3.0, help="how long playing one iteration takes")
    parser.add_argument("--sample", action="store_true",
                        help="sample the stack in stalls to name their cause (this perturbs what it measures)")
    parser.add_argument("--keep", metavar="DIR", help="write the generated files here (kept)")
    parser.add_argument("-v", "--verbose", action="store_true", help="every step's longest gap, time and cause")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 120.0 if args.quick else 600.0
    if args.child:
        return run_child(args)
    with tempfile.TemporaryDirectory(prefix="gradviz-limits-") as tmp:
        directory = Path(args.keep) if args.keep else Path(tmp)
        over = 0
        for path in scenario_paths(args, directory):
            result = measure(path, args)
            name = path.name if not args.scenarios or path.parent == directory else str(path)
            for line in report(name, result, args.verbose):
                print(line, flush=True)
            worst = result.get("worst")
            gap = worst["gap"] * 1000 if isinstance(worst, dict) else (worst[0] if worst else 0)
            over += "stopped" in result or bool(result.get("error")) or gap > TARGET_STALL_MS
    print(f"target: longest stall under {TARGET_STALL_MS} ms; {over} file(s) over it or incomplete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
