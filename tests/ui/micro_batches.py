"""A ``w * x + b`` lesson with many micro-batches per step: a leaf read by every micro-batch (a wide
fan-out, ``ui/graph/bus.py``) and, from about 43 micro-batches on, a graph over
``sizing.WIDEST_HEAT_NODES`` nodes."""
from __future__ import annotations


def micro_batch_toml(micro_batches: int, *, steps: int, lr: float, noise: float) -> str:
    """One example per micro-batch, the whole data set each step (``accumulation_steps``)."""
    n = micro_batches
    return f"""
[scenario]
title = "{n} micro-batches"
seed = 0

[model]
expression = "w * x + b"

[model.parameters]
w = 1.0
b = 0.0

[data]
kind = "linear"
n = {n}
noise = {noise}

[loss]
kind = "mse"

[optimizer]
kind = "sgd"
lr = {lr}

[loop]
steps = {steps}
batch_size = {n}
accumulation_steps = {n}
"""
