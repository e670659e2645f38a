"""A training step leaves no reference cycles: every step's activations are freed by reference
counting when the step ends, not later by Python's cycle collector (which let the core loop's peak
memory grow to many steps' worth of activations)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import gradviz
import gradviz.nn as nn
import gradviz.nn.functional as F
import gradviz.optim as optim


@pytest.fixture
def cycle_garbage():
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield lambda: (gc.collect(), list(gc.garbage))[1]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.ReLU])
def test_a_training_step_makes_no_reference_cycles(cycle_garbage, activation):
    gradviz.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), activation(), nn.Linear(8, 8), activation(), nn.Linear(8, 3))
    x = gradviz.tensor(np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2))
    y = gradviz.tensor(np.arange(10) % 3)
    opt = optim.Adam(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y) + out.exp().mean() * 0.01 + F.log_softmax(out, 1).sum() * 0.0
        loss.backward()
        opt.step()

    step()                               # the optimizer state exists from here on
    cycle_garbage()
    gc.garbage.clear()                   # what building the model left behind is not the step's
    for _ in range(3):
        step()
    leaked = cycle_garbage()
    assert [type(o).__name__ for o in leaked] == []


def test_the_inplace_error_still_names_the_node_that_saved_its_output():
    a = gradviz.tensor([1.0, 2.0], requires_grad=True)
    out = a.exp()
    out.add_(1)
    with pytest.raises(RuntimeError, match=r"\[torch.FloatTensor \[2\]\], which is output 0 of Exp, is at version 1; "
                                           "expected version 0"):
        out.sum().backward()
