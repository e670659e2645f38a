"""One vocabulary for the loop's phases: their names (``gradviz.trace.PHASES``), the short title
every view shows (toolbar, status bar, caption, code panel), the sentence the replay describes a
phase with, and the one way to say "micro-batch i of n".

``zero_grad_after`` is ``optimizer.zero_grad()`` placed after ``step()``: the same call, titled
with where it stands (``"optimizer.zero_grad() (after step)"``). A view shows a phase only through
``phase_title``/``phase_label``, never its key.
"""
from __future__ import annotations

import math

import numpy as np

from ..trace import PHASES
from .format import brief, format_number

__all__ = ["PHASES", "PHASE_TITLES", "ACCUMULATING_PHASES", "phase_title", "micro_batch_label", "phase_label",
           "phase_sentence", "manual_update_sentence", "clip_sentence", "scheduler_sentence"]

PHASE_TITLES = {
    "zero_grad": "optimizer.zero_grad()",
    "zero_grad_after": "optimizer.zero_grad() (after step)",
    "forward": "forward pass",
    "loss": "loss",
    "backward": "loss.backward()",
    "step": "optimizer.step()",
}

_SENTENCES = {
    "zero_grad": "optimizer.zero_grad(): clear every parameter's .grad",
    "zero_grad_after": "optimizer.zero_grad() after the step: clear every parameter's .grad",
    "forward": "Forward pass: compute the prediction node by node",
    "loss": "Loss: compare the prediction with the target",
    "backward": "loss.backward(): send ∂loss/∂· back through the graph, node by node",
    "step": "optimizer.step(): move every parameter against its .grad",
}

ACCUMULATING_PHASES = ("forward", "loss", "backward")   # run once per micro-batch


def phase_title(phase: str | None) -> str:
    """``"loss.backward()"`` for ``"backward"``; ``"start"`` before the first phase."""
    if not phase:
        return "start"
    return PHASE_TITLES.get(phase) or phase.replace("_", " ")    # an unknown key still reads as words


def micro_batch_label(micro_batch: int, accumulation_steps: int) -> str:
    """``"micro-batch 2 of 4"`` for the 0-based ``micro_batch`` 1 of ``accumulation_steps`` 4."""
    return f"micro-batch {micro_batch + 1} of {accumulation_steps}"


def phase_label(phase: str | None, micro_batch: int = 0, accumulation_steps: int = 1) -> str:
    """The title, with the micro-batch when the loop accumulates and the phase runs per micro-batch:
    ``"loss.backward() · micro-batch 2 of 4"``."""
    text = phase_title(phase)
    if accumulation_steps > 1 and phase in ACCUMULATING_PHASES:
        text += " · " + micro_batch_label(micro_batch, accumulation_steps)
    return text


def phase_sentence(phase: str, micro_batch: int = 0, accumulation_steps: int = 1) -> str:
    """One sentence saying what the phase does (the replay's description of a PhaseEvent)."""
    text = _SENTENCES.get(phase, f"Phase {phase}")
    if accumulation_steps > 1 and phase in ACCUMULATING_PHASES:
        text += f" ({micro_batch_label(micro_batch, accumulation_steps)})"
    return text + "."


# -- the script's own calls: one sentence each (the replay's description of their events) -----------
_OPERATORS = {"-=", "+=", "*=", "/=", "[]=", "data ="}


def manual_update_sentence(name: str, event) -> str:
    """``"w.sub_(…): w 1.0 → 1.8 (by hand, outside autograd)."``; ``"w -= …: …"`` for an operator."""
    call = f"{name} {event.op} …" if event.op in _OPERATORS else f"{name}.{event.op}(…)"
    if event.op == "data =":
        call = f"{name}.data = …"
    return f"{call}: {name} {brief(event.before)} → {brief(event.after)} (a manual update, outside autograd)."


def clip_sentence(event) -> str:
    """``"clip_grad_norm_(max_norm=1.0): ‖g‖ = 5.3 > 1.0, grads × 0.189."``"""
    if event.kind == "value":
        return (f"clip_grad_value_(clip_value={format_number(event.limit)}): every .grad clamped to "
                f"[−{format_number(event.limit)}, {format_number(event.limit)}].")
    order = "" if event.norm_type == 2 else f", norm_type={format_number(event.norm_type)}"
    norm_name = "‖g‖" if event.norm_type == 2 else ("‖g‖∞" if math.isinf(event.norm_type)
                                                   else f"‖g‖_{format_number(event.norm_type)}")
    head = f"clip_grad_norm_(max_norm={format_number(event.limit)}{order}): {norm_name} = " \
           f"{format_number(event.total_norm)}"
    if event.clip_coef is not None and event.clip_coef < 1:
        return f"{head} > {format_number(event.limit)}, grads × {format_number(event.clip_coef, 3)}."
    if event.total_norm is not None and not np.isfinite(event.total_norm):
        return f"{head}: not finite, grads × {format_number(event.clip_coef, 3)}."
    return f"{head} ≤ {format_number(event.limit)}: grads unchanged."


def scheduler_sentence(event) -> str:
    """``"StepLR.step(): lr 0.1 → 0.01."`` (every param group's lr when there are several)."""
    def lrs(values):
        return format_number(values[0]) if len(values) == 1 else "[" + ", ".join(map(format_number, values)) + "]"
    same = list(event.lr_before) == list(event.lr_after)
    tail = " (unchanged)" if same else ""
    return f"{event.scheduler}.step(): lr {lrs(event.lr_before)} → {lrs(event.lr_after)}{tail}, epoch {event.epoch}."
