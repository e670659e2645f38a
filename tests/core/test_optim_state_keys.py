"""``Optimizer.state_keys(hyper)``: the state each optimizer keeps per parameter, in the order it
creates it. The exporter writes these keys into its CSV header, so they must be what ``step()``
really makes: checked against the state after real steps, and against PyTorch when installed."""
import importlib.util

import numpy as np
import pytest

import gradviz
from gradviz.nn import Parameter
from gradviz.optim import SGD, Adagrad, Adam, AdamW, RMSprop

CASES = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.1)),
    (Adam, dict(lr=0.1, amsgrad=True)),
    (AdamW, dict(lr=0.1)),
    (AdamW, dict(lr=0.1, amsgrad=True)),
    (RMSprop, dict(lr=0.01)),
    (RMSprop, dict(lr=0.01, momentum=0.5)),
    (RMSprop, dict(lr=0.01, centered=True)),
    (RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (Adagrad, dict(lr=0.5)),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for cls, kw in CASES]


@pytest.mark.parametrize("cls, hyper", CASES, ids=IDS)
def test_state_keys_are_the_state_step_creates(cls, hyper):
    p = Parameter(gradviz.tensor(np.array([1.0, -2.0], dtype=np.float32)))
    optimizer = cls([p], **hyper)
    for _ in range(2):
        p.grad = gradviz.tensor(np.array([0.5, 0.25], dtype=np.float32))
        optimizer.step()
    assert list(optimizer.state[p]) == cls.state_keys(hyper)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("cls, hyper", CASES, ids=IDS)
def test_state_keys_are_pytorchs(cls, hyper):
    import torch
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = getattr(torch.optim, cls.__name__)([p], **hyper)
    p.grad = torch.tensor([0.5, 0.25])
    optimizer.step()
    assert list(optimizer.state[p]) == cls.state_keys(hyper)
