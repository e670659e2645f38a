"""The script worker process: results come back whole, printed text streams, limits give one line
naming the script's line, crashes and Cancel never take the caller down, and every job starts
from a fresh process state."""
import os
import time

import numpy as np
import pytest

from gradviz.scenario.script_source import read_script
from gradviz.script_checks import find_bundled_script
from gradviz.training.script import TRACE_ITERATIONS, run_script
from gradviz.training.worker import GRACE, Failed, Output, Progress, ScriptWorker, WorkerError

LESSON = "/tmp/lesson.py"          # never read: the worker gets the source; the name is for messages


@pytest.fixture(scope="module")
def worker():
    with ScriptWorker() as w:
        assert w.wait_ready(60)
        yield w


def run(worker, source, **options):
    messages = []
    options.setdefault("timeout", 10)
    try:
        result = worker.run(source, LESSON, on_message=messages.append, **options)
    except WorkerError as exc:
        return exc, messages
    return result, messages


def test_the_tutorial_comes_back_as_run_in_process(worker):
    path = find_bundled_script("01_tutorial_loop")
    source = read_script(path)
    messages = []
    result = worker.run(source, str(path), on_message=messages.append)
    here = run_script(source, str(path))
    assert result.error is None and result.iterations == here.iterations == 100
    assert "w =  tensor([1.8000], requires_grad=True)" in result.stdout
    assert "".join(m.text for m in messages if isinstance(m, Output)) == here.stdout == result.stdout
    for name in here.history.param_names:
        np.testing.assert_array_equal(result.history.params[name], here.history.params[name])
    np.testing.assert_array_equal(result.history.loss, here.history.loss)
    assert sorted(result.traces) == sorted(here.traces) == list(range(TRACE_ITERATIONS))
    assert result.traces[3].event_lines == here.traces[3].event_lines


def test_trace_iterations_and_a_trace_only_range_pass_through(worker):
    path = find_bundled_script("01_tutorial_loop")
    source = read_script(path)
    every = worker.run(source, str(path), trace_iterations=None)
    assert sorted(every.traces) == list(range(100)) and every.traced_all
    chunk = worker.run(source, str(path), trace_only=range(60, 70))
    assert sorted(chunk.traces) == list(range(60, 70)) and chunk.history.steps == 70
    assert chunk.traces[65].event_lines == every.traces[65].event_lines


def test_printed_text_streams_and_fd_1_cannot_corrupt_the_protocol(worker):
    source = "import os, sys\nprint('one')\nos.write(1, b'raw bytes on fd 1\\n')\nprint('two', file=sys.stderr)\n" \
             "print('three')\n"
    result, messages = run(worker, source)
    assert result.error is None and result.stdout == "one\nthree\n"
    out = "".join(m.text for m in messages if isinstance(m, Output) and m.stream == "stdout")
    err = "".join(m.text for m in messages if isinstance(m, Output) and m.stream == "stderr")
    assert out == "one\nthree\n"
    assert "two\n" in err and "raw bytes on fd 1" in err


def test_time_limit_names_the_line_being_run(worker):
    started = time.monotonic()
    result, _ = run(worker, "import torch\nx = 0\nwhile True:\n    x += 1\n", timeout=0.5)
    assert time.monotonic() - started < 0.5 + GRACE + 5     # stopped by the limit, not by the test
    assert result.error.line in (3, 4)
    assert str(result.error) == f"lesson.py:{result.error.line}: the script ran longer than the time limit (0.5 s)"


def test_a_script_that_catches_the_time_limit_is_stopped_anyway(worker):
    source = "x = 0\nwhile True:\n    try:\n        while True:\n            x += 1\n    except BaseException:\n" \
             "        pass\n"
    started = time.monotonic()
    outcome, _ = run(worker, source, timeout=0.4)
    assert time.monotonic() - started < 0.4 + GRACE + 5
    assert "the script ran longer than the time limit (0.4 s)" in str(outcome)
    assert str(outcome).startswith("lesson.py:")


def test_memory_cap_names_the_line(worker):
    source = "import numpy as np\nsmall = np.ones(10)\nhuge = np.ones(1 << 28)\n"     # 2 GB
    result, _ = run(worker, source, memory_mb=100)
    assert str(result.error) == "lesson.py:3: the script used more memory than the cap (100 MB)"
    result, _ = run(worker, "import numpy as np\nbig = np.ones(1 << 22)\nprint(big.sum())\n", memory_mb=100)
    assert result.error is None and result.stdout == "4194304.0\n"          # 32 MB fits in 100


@pytest.mark.parametrize("source, words", [
    ("import ctypes\nctypes.string_at(0)\n", "the script crashed the worker process (SIGSEGV)"),
    ("import os\nos._exit(3)\n", "the worker process exited before the script finished (exit status 3)"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed (SIGKILL"),
])
def test_a_dying_job_is_one_line_and_the_next_job_runs(worker, source, words):
    outcome, _ = run(worker, source)
    assert isinstance(outcome, WorkerError) and str(outcome).startswith("lesson.py: ") and words in str(outcome)
    result, _ = run(worker, "print(6 * 7)\n")
    assert result.error is None and result.stdout == "42\n"


def test_exceptions_and_input_are_script_errors_at_their_line(worker):
    result, _ = run(worker, "x = 1\ny = x / 0\n")
    assert str(result.error) == "lesson.py:2: ZeroDivisionError: division by zero"
    result, _ = run(worker, "print('before')\nname = input()\n")
    assert result.error.line == 2 and "EOFError" in result.error.message and result.stdout == "before\n"


def test_every_job_starts_from_a_fresh_process_state(worker):
    first = "import sys, torch\ntorch.set_default_dtype(torch.float64)\ntorch.manual_seed(5)\nsys.leaked = 1\n" \
            "print(torch.tensor([1.0]).dtype == torch.float64)\n"
    second = "import sys, torch\nprint(torch.tensor([1.0]).dtype == torch.float32, hasattr(sys, 'leaked'), " \
             "torch.randn(2))\n"
    assert run(worker, first)[0].stdout == "True\n"
    again = run(worker, second)[0].stdout
    assert again.startswith("True False") and again == run_script(second, LESSON).stdout


def test_cancel_kills_the_running_job_and_the_next_one_runs(worker):
    job = worker.submit("import time\nwhile True:\n    time.sleep(0.01)\n", LESSON, timeout=30)
    deadline = time.monotonic() + 20
    while worker._running is None or worker._running.pid is None:         # started in its process
        assert time.monotonic() < deadline
        worker.poll()
        time.sleep(0.01)
    pid = worker._running.pid
    worker.cancel()
    messages = worker.poll()
    assert Failed(job, "lesson.py: cancelled") in messages
    started = time.monotonic()
    result, _ = run(worker, "print('after')\n")
    assert result.stdout == "after\n" and time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not worker.busy
    assert not [m for m in worker.poll() if m.job == job]                # nothing more about it


def test_progress_comes_while_the_script_runs(worker):
    source = "import time, torch\nw = torch.tensor([1.0], requires_grad=True)\n" \
             "opt = torch.optim.SGD([w], lr=0.1)\nfor i in range(12):\n    opt.zero_grad()\n" \
             "    (w * w).sum().backward()\n    opt.step()\n    time.sleep(0.02)\n"
    result, messages = run(worker, source)
    counts = [m.iterations for m in messages if isinstance(m, Progress)]
    assert result.error is None and result.iterations == 12
    assert len(counts) >= 2 and counts == sorted(counts) and counts[-1] <= 12


def test_a_large_result_crosses_whole_and_leaves_no_file(worker):
    source = "import torch\ntorch.manual_seed(0)\nw = torch.randn(300, 300, requires_grad=True)\n" \
             "opt = torch.optim.Adam([w], lr=0.01)\nfor i in range(6):\n    opt.zero_grad()\n" \
             "    (w * w).sum().backward()\n    opt.step()\n"
    result, _ = run(worker, source)
    here = run_script(source, LESSON)
    np.testing.assert_array_equal(result.history.params["w"], here.history.params["w"])
    np.testing.assert_array_equal(result.history.state["w"]["exp_avg_sq"], here.history.state["w"]["exp_avg_sq"])
    assert result.history.params["w"].nbytes > (1 << 20)                 # went through a spill file
    assert os.listdir(worker._spill_dir) == []


def test_close_ends_every_process_and_removes_its_files():
    w = ScriptWorker()
    result = w.run("print(1)\n", LESSON, timeout=30)
    assert result.stdout == "1\n"
    pids = [c.process.pid for c in w._children]
    spill = w._spill_dir
    w.close()
    assert pids and not os.path.exists(spill)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        w.submit("print(1)\n", LESSON)


def test_without_forks_each_job_gets_a_new_warm_process():
    with ScriptWorker(forks=False) as w:
        with pytest.raises(WorkerError, match="SIGSEGV"):
            w.run("import ctypes\nctypes.string_at(0)\n", LESSON, timeout=30)
        crashed = w._children[0].process.pid if w._children[0].spent else None
        second = w.run("import os\nprint(os.getpid())\n", LESSON, timeout=30)
        assert second.error is None and int(second.stdout) != crashed


def test_a_worker_that_cannot_start_fails_the_job_in_one_line():
    with ScriptWorker(target="no_such_module_anywhere:run") as w:
        started = time.monotonic()
        with pytest.raises(WorkerError) as info:
            w.run("print(1)\n", LESSON, timeout=5)
        assert time.monotonic() - started < 30
        assert str(info.value).startswith("lesson.py: the worker process could not start: ")
        assert "no_such_module_anywhere" in str(info.value) and "\n" not in str(info.value)


def test_the_parent_kills_a_job_stuck_where_signals_cannot_reach(worker):
    # SIGALRM is blocked: only the parent's deadline (timeout + GRACE) can stop it
    source = "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n" \
             "while True:\n    time.sleep(0.05)\n"
    started = time.monotonic()
    outcome, _ = run(worker, source, timeout=0.3)
    assert isinstance(outcome, WorkerError)
    assert str(outcome) == "lesson.py: the script ran longer than the time limit (0.3 s)"
    assert time.monotonic() - started < 0.3 + GRACE + 5
    assert run(worker, "print(2)\n")[0].stdout == "2\n"

