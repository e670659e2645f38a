"""One vocabulary for the loop's phases: their names (``gradviz.trace.PHASES``), the short title
every view shows (toolbar, status bar, caption, code panel), the sentence the replay describes a
phase with, and the one way to say "micro-batch i of n".

``zero_grad_after`` is ``optimizer.zero_grad()`` placed after ``step()``: the same call, so the
same title; only the sentence says where it stands.
"""
from __future__ import annotations

from ..trace import PHASES

__all__ = ["PHASES", "PHASE_TITLES", "ACCUMULATING_PHASES", "phase_title", "micro_batch_label", "phase_label",
           "phase_sentence"]

PHASE_TITLES = {
    "zero_grad": "optimizer.zero_grad()",
    "zero_grad_after": "optimizer.zero_grad()",
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
    return PHASE_TITLES.get(phase, phase)


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
