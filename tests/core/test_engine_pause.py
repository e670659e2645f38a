"""``Session.run_chunked(pause=...)``: the app's run thread steps aside for the UI thread between the
phases of a step (ui/run_thread.py ``step_aside``). The core calls ``pause()`` after each
micro-batch's forward and after its backward, in the stepping thread, and nowhere else; the numbers
do not change."""
import numpy as np

from gradviz.scenario import loads
from gradviz.training.session import Session

SCENARIO = """
[scenario]
title = "three micro-batches"
seed = 0

[model]
expression = "w * x + b"

[model.parameters]
w = 0.5
b = 0.0

[data]
kind = "linear"
n = 12
noise = 0.1

[loss]
kind = "mse"

[optimizer]
kind = "sgd"
lr = 0.1

[loop]
steps = 4
batch_size = 12
accumulation_steps = 3
"""


def test_pause_is_called_after_each_micro_batchs_forward_and_backward():
    session = Session(loads(SCENARIO), 0)
    engine = session._engine
    seen = []

    list(session.run_chunked(2, pause=lambda: seen.append(session._done)))
    assert seen == [0] * 12 + [2] * 12         # chunks of 2 steps, each 3 forwards and 3 backwards
    assert engine.pause is None                       # only for that run
    plain = Session(loads(SCENARIO), 0).run()
    assert np.array_equal(session.history.loss, plain.loss)
    assert np.array_equal(session.history.params["w"], plain.params["w"])


def test_no_pause_by_default():
    session = Session(loads(SCENARIO), 0)
    list(session.run_chunked(2))
    assert session._engine.pause is None


def test_no_pause_while_another_thread_waits_for_the_sessions_lock():
    """The run holds the Session's lock for a chunk; a thread tracing an iteration meanwhile (the UI
    thread, for a short trace) waits for it, and must not be the busy UI the run steps aside for."""
    import threading
    import time
    session = Session(loads(SCENARIO), 0)
    calls, traced = [], []

    def pause():
        calls.append(1)
        if len(calls) == 1:
            tracer = threading.Thread(target=lambda: traced.append(session.trace_iteration(0)))
            tracer.start()
            calls.append(tracer)
            deadline = time.monotonic() + 10
            while not session._wanting and time.monotonic() < deadline:
                time.sleep(0.001)
            assert session._wanting
    list(session.run_chunked(10, pause=pause))     # one chunk of 4 steps: the lock held throughout
    tracer = calls[1]
    tracer.join(10)
    assert len(calls) == 2                         # no pause after the tracer began to wait
    assert traced and traced[0].events and not session._wanting
