"""What runs inside the script worker process (``python -m gradviz.training.worker_child``): the
messages it sends, their framing, the limits, and one job's run. The parent's side is
``gradviz.training.worker.ScriptWorker``; read its docstring first.
"""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from .script import ScriptAbort

GRACE = 2.0                 # seconds past the time limit before the job's process is killed
PROGRESS_EVERY = 0.05       # seconds between Progress messages
OUTPUT_FLUSH_EVERY = 0.05   # seconds the script's printed text may wait before it is sent
OUTPUT_CAP = 8 << 20        # characters of printed text sent per job; the rest is cut
SPILL_OVER = 1 << 20        # bytes: larger messages cross through a file
_HEADER = struct.Struct("<Q")
_MB = 1 << 20


# -- messages (worker -> parent) ---------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    job: int
    iterations: int           # iterations the script has completed
    elapsed: float            # seconds since the job started


@dataclass(frozen=True)
class Output:
    job: int
    text: str                 # what the script printed, as it came
    stream: str = "stdout"    # "stdout" or "stderr"


@dataclass(frozen=True)
class Done:
    job: int
    result: Any               # gradviz.training.script.ScriptResult (its .error may be set)
    elapsed: float = 0.0


@dataclass(frozen=True)
class Failed:
    job: int
    message: str              # one line: "lesson.py: cancelled", "lesson.py:4: the script ran ..."
    line: int | None = None   # the script line, when known


@dataclass(frozen=True)
class _Ready:                 # the warm process has imported everything
    pid: int
    forks: bool               # True: it runs each job in a fork and stays; False: one job, then exits


@dataclass(frozen=True)
class _Started:               # the job's process (a fork, or the warm process itself)
    job: int
    pid: int


@dataclass(frozen=True)
class _Alarm:                 # the time limit fired at this script line
    job: int
    line: int | None


@dataclass(frozen=True)
class _Ended:                 # the job's process is gone: its exit code (negative: killed by a signal)
    job: int
    code: int


class TimeLimitExceeded(ScriptAbort):
    """Raised inside the script by SIGALRM. A ScriptAbort (an Exception) so that the runner turns
    it into a ScriptError at the script line and keeps the iterations done so far; a script that
    swallows it is interrupted again every half second, then stopped."""


# -- framing -----------------------------------------------------------------------------------

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _frame(message) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete frames at the start of ``buffer`` (payloads only)."""
    frames, start = [], 0
    while len(buffer) - start >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, start)
        end = start + _HEADER.size + size
        if len(buffer) < end:
            break
        frames.append(bytes(buffer[start + _HEADER.size:end]))
        start = end
    del buffer[:start]
    return frames


def _read_frame_blocking(fd: int) -> bytes | None:
    """One frame from a blocking fd, or None at end of file (the worker's side only)."""
    buffer = bytearray()
    while True:
        frames = _split_frames(buffer)
        if frames:
            return frames[0]
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        buffer += chunk


def _grow_pipe(fd: int) -> None:
    """Ask for a 1 MB pipe buffer (Linux), so a large result crosses in fewer, larger reads."""
    with contextlib.suppress(AttributeError, OSError):
        import fcntl
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _MB)


# -- the worker process ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spilled:               # a large message, pickled into this file (the parent reads and deletes it)
    path: str


def _write_spill(path: str, payload: bytes, buffers: list, sizes: list[int]) -> None:
    """A message as a file: the count and sizes of its out-of-band buffers (the numpy arrays'
    bytes, written without copying them into the pickle), the pickle, then the buffers."""
    with open(path, "wb") as file:
        file.write(struct.pack(f"<QQ{len(sizes)}Q", len(payload), len(sizes), *sizes))
        file.write(payload)
        for buffer in buffers:
            file.write(buffer.raw())


def read_spill(path: str):
    """The message :func:`_write_spill` wrote; its arrays share one writable block read in one go."""
    import numpy as np

    with open(path, "rb", buffering=0) as file:
        # np.empty, not bytearray(n): a bytearray is zero-filled while holding the GIL (a large
        # result's pages would all be touched then); readinto fills them with the GIL released, so
        # a thread reading a result (the app's) does not stop the UI thread
        data = np.empty(os.fstat(file.fileno()).st_size, dtype=np.uint8)
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            got = file.readinto(view[done:done + 8 * _MB])
            if not got:
                raise EOFError(f"{path} ended early")
            done += got
    size, count = struct.unpack_from("<QQ", view)
    sizes = struct.unpack_from(f"<{count}Q", view, 16)
    start = 16 + 8 * count
    payload, start = view[start:start + size], start + size
    buffers = []
    for nbytes in sizes:
        buffers.append(view[start:start + nbytes])
        start += nbytes
    return pickle.loads(payload, buffers=buffers)


class _Channel:
    """The worker's end of the message pipe. ``busy`` guards against a signal handler writing in
    the middle of another frame. A message over SPILL_OVER bytes goes through a file in
    ``spill_dir`` (tmpfs where there is one): a pipe moves a 32 MB result several times slower."""

    def __init__(self, fd: int, spill_dir: str = ""):
        self.fd, self.spill_dir, self.busy = fd, spill_dir, False
        self.spilled = 0

    def send(self, message) -> bool:
        if self.busy:
            return False
        self.busy = True
        try:
            buffers: list[pickle.PickleBuffer] = []
            payload = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
            sizes = [buffer.raw().nbytes for buffer in buffers]
            if self.spill_dir and len(payload) + sum(sizes) > SPILL_OVER:
                self.spilled += 1
                path = os.path.join(self.spill_dir, f"{os.getpid()}-{self.spilled}.pickle")
                _write_spill(path, payload, buffers, sizes)
                frame = _frame(_Spilled(path))
            else:
                frame = _frame(message)
            _write_all(self.fd, frame)
        finally:
            self.busy = False
        return True


class _OutputStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` of a job: text goes back as Output messages, in batches."""

    def __init__(self, channel: _Channel, job: int, stream: str):
        super().__init__()
        self.channel, self.job, self.stream = channel, job, stream
        self.parts: list[str] = []
        self.pending = self.sent = 0
        self.last = time.monotonic()

    @property
    def encoding(self):
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.parts.append(text)
        self.pending += len(text)
        if self.pending >= 1 << 14 or time.monotonic() - self.last >= OUTPUT_FLUSH_EVERY:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self.parts or self.channel.busy:
            return
        text, self.parts, self.pending = "".join(self.parts), [], 0
        self.last = time.monotonic()
        if self.sent >= OUTPUT_CAP:
            return
        if self.sent + len(text) > OUTPUT_CAP:
            text = text[:OUTPUT_CAP - self.sent] + f"\n[GradViz: output cut after {OUTPUT_CAP // _MB} MB]\n"
        self.sent += len(text)
        self.channel.send(Output(self.job, text, self.stream))


def _script_line(frame, path: str) -> int | None:
    """The line of the innermost frame of the script file, walking out from ``frame``."""
    name = os.path.basename(path)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == path or os.path.basename(filename) == name:
            return frame.f_lineno
        frame = frame.f_back
    return None


def _traceback_line(exc: BaseException, path: str) -> int | None:
    """The line of the innermost traceback entry in the script file."""
    name, line, tb = os.path.basename(path), None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == path or os.path.basename(filename) == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _memory_cap(memory_mb: float | None):
    """RLIMIT_AS = the current address space + ``memory_mb`` while the block runs (Linux; a no-op
    where the address space cannot be measured or limited)."""
    try:
        import resource
    except ImportError:
        resource = None
    used = _address_space()
    if resource is None or used is None or not memory_mb:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + int(memory_mb * _MB)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _TimeLimit:
    """SIGALRM after ``timeout`` s raises TimeLimitExceeded at the running line; again every half
    second if the script catches it; past the grace the process reports and exits by itself."""

    def __init__(self, channel: _Channel, job: int, path: str, timeout: float | None):
        self.channel, self.job, self.path, self.timeout = channel, job, path, timeout
        self.fired = False
        self.line: int | None = None
        self.message = f"the script ran longer than the time limit ({timeout:g} s)" if timeout else ""

    def __enter__(self):
        if self.timeout and hasattr(signal, "setitimer"):
            self.hard_stop = time.monotonic() + self.timeout + GRACE * 0.75
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
        return self

    def __exit__(self, *exc):
        if self.timeout and hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        return False

    def _on_alarm(self, signum, frame):
        line = _script_line(frame, self.path)
        self.line = line if line is not None else self.line
        if not self.fired:
            self.fired = True
            self.channel.send(_Alarm(self.job, self.line))
        if time.monotonic() >= self.hard_stop:          # the script keeps catching it: stop here
            if self.channel.send(Failed(self.job, _prefix(self.path, self.line) + self.message, self.line)):
                os._exit(0)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        raise TimeLimitExceeded(self.message)


def _prefix(path: str, line: int | None) -> str:
    name = os.path.basename(str(path))
    return f"{name}:{line}: " if line is not None else f"{name}: "


def _rewrite_error(result, message: str, line: int | None) -> None:
    """Put GradViz's words for a limit on the result's ScriptError (keeping its line when known)."""
    error = getattr(result, "error", None)
    if error is None:
        return
    if getattr(error, "line", None) is None and line is not None:
        error.line = line
    error.message = message


def _is_memory_error(error) -> bool:
    return getattr(error, "kind", None) == "memory" or str(getattr(error, "message", "")).startswith("MemoryError")


def _run_job(job: dict, fd: int, target, spill_dir: str) -> None:
    """Run one job in this process and send its messages; the caller exits afterwards."""
    channel, number, path = _Channel(fd, spill_dir), job["job"], job["path"]
    start = time.monotonic()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)                          # input() in a script gets EOF, not our job pipe
    os.close(null)
    sys.stdin = open(os.devnull)              # lives as long as the process
    stdout, stderr = _OutputStream(channel, number, "stdout"), _OutputStream(channel, number, "stderr")
    sys.stdout, sys.stderr = stdout, stderr
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder):
        sys.path.insert(0, folder)            # as `python lesson.py` does: sibling modules import
    last_progress = [0.0]

    def progress(iterations: int) -> bool:
        now = time.monotonic()
        if now - last_progress[0] >= PROGRESS_EVERY:
            last_progress[0] = now
            channel.send(Progress(number, int(iterations), now - start))
        return True

    options = {key: job[key] for key in ("trace_only", "trace_budget") if job.get(key) is not None}
    if "trace_iterations" in job:             # None (trace every iteration) is a choice too
        options["trace_iterations"] = job["trace_iterations"]
    limit = _TimeLimit(channel, number, path, job.get("timeout"))
    memory_mb = job.get("memory_mb")
    memory_message = f"the script used more memory than the cap ({memory_mb:g} MB)" if memory_mb else ""
    result = failure = None
    try:
        with limit, _memory_cap(memory_mb):
            result = target(job["source"], path, progress=progress, stdout=stdout, stderr=stderr, **options)
    except TimeLimitExceeded:
        failure = Failed(number, _prefix(path, limit.line) + limit.message, limit.line)
    except MemoryError as exc:
        line = _traceback_line(exc, path)
        failure = Failed(number, _prefix(path, line) + memory_message, line)
    except BaseException as exc:              # the runner's own failure: still one line
        line = getattr(exc, "line", None) or _traceback_line(exc, path)
        text = getattr(exc, "message", None) or " ".join(str(exc).split()) or type(exc).__name__
        failure = Failed(number, _prefix(path, line) + text, line)
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    stdout.flush()
    stderr.flush()
    if failure is None:
        error = getattr(result, "error", None)
        if error is not None and limit.fired:
            _rewrite_error(result, limit.message, limit.line)
        elif error is not None and memory_mb and _is_memory_error(error):
            _rewrite_error(result, memory_message, None)
        try:
            channel.send(Done(number, result, time.monotonic() - start))
            return
        except Exception as exc:              # an unpicklable result is a GradViz bug: one line
            failure = Failed(number, f"{_prefix(path, None)}the result could not be sent back: "
                                     f"{type(exc).__name__}: {exc}")
    channel.send(failure)


def _relay(job: int, read_fd: int, channel: _Channel) -> None:
    """Forward the forked job's complete frames to the parent; a frame cut short by a kill is
    dropped, so the parent's stream stays whole."""
    buffer = bytearray()
    while True:
        chunk = os.read(read_fd, _MB)
        if not chunk:
            return
        buffer += chunk
        for payload in _split_frames(buffer):
            _write_all(channel.fd, _HEADER.pack(len(payload)) + payload)


def _run_forked(job: dict, channel: _Channel, target, spill_dir: str) -> None:
    read_fd, write_fd = os.pipe()
    _grow_pipe(write_fd)
    pid = os.fork()
    if pid == 0:                              # the job's process: a fresh copy of the warm one
        code = 0
        try:
            os.close(read_fd)
            os.close(channel.fd)
            _run_job(job, write_fd, target, spill_dir)
        except BaseException:                 # the parent cannot be told: it sees the exit code
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    channel.send(_Started(job["job"], pid))
    try:
        _relay(job["job"], read_fd, channel)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    channel.send(_Ended(job["job"], os.waitstatus_to_exitcode(status)))


DEFAULT_TARGET = "gradviz.training.script:run_script"
_WARM_UP = """
import torch
from torch import nn
model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, y = torch.randn(4, 2), torch.randn(4, 1)
for _ in range(2):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
print(loss, model[0].weight)
"""


def _warm_up(target) -> None:
    """Run a tiny training loop once, so that what every run builds lazily (the torch namespace,
    first-call caches) is built before the fork, not in each job; then freeze the heap so the
    forks' garbage collector does not copy its pages."""
    import gc
    with contextlib.suppress(Exception):
        target(_WARM_UP, "<gradviz warm-up>", stdout=None)
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()


def _import_target(spec: str):
    from importlib import import_module
    module, _, name = spec.partition(":")
    return getattr(import_module(module), name)


def _child_main(argv: list[str]) -> int:
    msg_fd, forks, spec, spill_dir = int(argv[0]), argv[1] == "fork", argv[2], argv[3]
    os.dup2(2, 1)                             # the script's fd 1 writes land with stderr, never in the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = _Channel(msg_fd)
    import numpy  # noqa: F401  (warm: what every script needs, loaded before the first job)

    import gradviz  # noqa: F401
    import gradviz.training  # noqa: F401
    target = _import_target(spec)
    if spec == DEFAULT_TARGET:
        _warm_up(target)
    channel.send(_Ready(os.getpid(), forks))
    while True:
        payload = _read_frame_blocking(0)
        if payload is None:                   # the parent is gone
            return 0
        job = pickle.loads(payload)
        if not forks:
            channel.send(_Started(job["job"], os.getpid()))
            _run_job(job, msg_fd, target, spill_dir)
            channel.send(_Ended(job["job"], 0))
            return 0
        _run_forked(job, channel, target, spill_dir)


if __name__ == "__main__":
    from gradviz.training import worker_child as _child  # the classes pickled must be this module's
    sys.exit(_child._child_main(sys.argv[1:]))
