"""The rules of editing a scenario's runs (what the Controls do), on a copy, without any UI.

- ``variant_name``: the name a run gets from its settings (``SGD(lr=0.01) · accum=4``), and
  ``unique_name`` among the others (``... (2)``); ``rename_if_automatic`` keeps a comparison's
  name in step with its settings unless the user named it;
- ``set_optimizer_kind``: another optimizer starts at PyTorch's defaults, keeping the lr;
- ``set_loop_value``: one loop setting (leaving float16 also turns loss scaling off);
- ``set_scheduler_kind``: another scheduler (or none), its required hyperparameters given values
  that fit the run (a StepLR decays three times over the run, a cosine spans it);
- ``add_comparison``: the main run, as it is now, kept as a comparison;
- ``editable_copy``: the copy an edit changes: its own runs and settings, the data arrays, initial
  values and source text shared with the original (nothing edits those in place);
- ``check_scenario``: None when the edited scenario is valid, else the reason in one short line
  for the field that was edited. Given the scenario before the edit, it checks what an edit of the
  runs can change (``checks.validate_edit``), not the data again: an lr change on a 2 MB file
  costs what it costs on a small one. Nothing is serialised: the file text is written on Save.
"""
from __future__ import annotations

import copy

from .checks import validate, validate_edit
from .reader import ScenarioError
from .schema import (
    LIMITS,
    OPTIMIZER_DEFAULTS,
    SCHEDULER_CLASSES,
    SCHEDULER_DEFAULTS,
    LoopSpec,
    OptimizerSpec,
    Scenario,
    SchedulerSpec,
    Variant,
)

MAX_NAME = 80
# The loop settings a name shows when they differ from the defaults, and their short labels.
LOOP_SHORT = dict(zero_grad="zero_grad", set_to_none="set_to_none", accumulation_steps="accum",
                  divide_loss="divide_loss", precision="", loss_scaling="scaler", batch_size="batch",
                  shuffle="shuffle")


def variant_name(optimizer: OptimizerSpec, loop: LoopSpec) -> str:
    """``SGD(lr=0.01)`` plus the loop settings that differ from the defaults."""
    base = LoopSpec()
    parts = []
    for key in ("zero_grad", "set_to_none", "accumulation_steps", "divide_loss", "precision",
                "loss_scaling", "batch_size", "shuffle"):
        value = getattr(loop, key)
        if value != getattr(base, key):
            parts.append(str(value) if key == "precision" else f"{LOOP_SHORT[key]}={value}")
    if loop.clip_grad_norm is not None:
        parts.append(f"clip={loop.clip_grad_norm:g}" + ("" if loop.unscale_before_clip or not loop.loss_scaling
                                                        else " (scaled)"))
    if loop.scheduler is not None:
        parts.append(SCHEDULER_CLASSES[loop.scheduler.kind]
                     + (" before step" if loop.scheduler.placement == "before_step" else ""))
    name = optimizer.label() + (" · " + ", ".join(parts) if parts else "")
    return name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + "…"


def unique_name(name: str, taken) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... if it is taken."""
    taken = set(taken)
    if name not in taken:
        return name
    i = 2
    while f"{name} ({i})" in taken:
        i += 1
    return f"{name} ({i})"


def rename_if_automatic(scenario: Scenario, variant: Variant, before: str) -> None:
    """After an edit of comparison ``variant``: if its name was the one its old settings gave
    (``before``, or ``before (n)``), it takes the name of its new settings."""
    if variant.name == before or variant.name.startswith(before + " ("):
        variant.name = unique_name(variant_name(variant.optimizer, variant.loop),
                                   [c.name for c in scenario.comparisons if c is not variant])


def set_optimizer_kind(spec: OptimizerSpec, kind: str) -> None:
    """Switch ``spec`` to optimizer ``kind``: its hyperparameters start at PyTorch's defaults,
    the learning rate is kept."""
    hyper = dict(OPTIMIZER_DEFAULTS[kind])
    hyper["lr"] = spec.hyper.get("lr", hyper["lr"])
    spec.kind, spec.hyper = kind, hyper


def set_loop_value(loop: LoopSpec, key: str, value) -> None:
    """Set one loop setting; a precision other than float16 turns loss scaling off."""
    setattr(loop, key, value)
    if key == "precision" and value != "float16":
        loop.loss_scaling = False


def scheduler_defaults(kind: str, loop: LoopSpec, lr: float) -> dict:
    """Complete hyperparameters for a new scheduler of ``kind`` on a run of ``loop.steps`` steps
    with learning rate ``lr``: torch's defaults, and for those torch has none (StepLR's step_size,
    ...) values that show the schedule within the run."""
    steps = loop.steps
    hyper = dict(SCHEDULER_DEFAULTS[kind])
    fill = dict(step_size=max(1, steps // 4), milestones=sorted({max(1, steps // 2), max(1, 3 * steps // 4)}),
                gamma=0.1 if kind != "exponential" else float(f"{0.01 ** (1 / max(steps, 1)):.4g}"),
                T_max=steps, max_lr=lr)
    for key, value in hyper.items():
        if value is None and key in fill:
            hyper[key] = fill[key]
    return hyper


def set_scheduler_kind(loop: LoopSpec, kind: str | None, lr: float) -> None:
    """Give ``loop`` a new scheduler of ``kind`` (None: no scheduler); the placement is kept."""
    if kind is None:
        loop.scheduler = None
        return
    placement = loop.scheduler.placement if loop.scheduler is not None else "after_step"
    loop.scheduler = SchedulerSpec(kind, scheduler_defaults(kind, loop, lr), placement)


def add_comparison(scenario: Scenario) -> Variant:
    """Keep the main run, as it is now, as a new comparison named after its settings.

    Raises ValueError when there are already ``LIMITS["max_comparisons"]``."""
    if len(scenario.comparisons) >= LIMITS["max_comparisons"]:
        raise ValueError(f"at most {LIMITS['max_comparisons']} comparisons")
    name = unique_name(variant_name(scenario.optimizer, scenario.loop), [c.name for c in scenario.comparisons])
    variant = Variant(name, copy.deepcopy(scenario.optimizer), copy.deepcopy(scenario.loop))
    scenario.comparisons.append(variant)
    return variant


def editable_copy(scenario: Scenario) -> Scenario:
    """A deep copy of ``scenario`` to edit, sharing its large immutable-by-convention parts: the
    inline data arrays ``x`` and ``y`` and each parameter's initial value (nothing edits them in
    place; an edit of the data replaces them), and the source text (a str). The copy's runs,
    settings and tour are its own, so an edit never changes ``scenario``. Sharing the arrays is
    also what lets ``check_scenario(copy, before=scenario)`` skip them."""
    shared = [scenario.data.x, scenario.data.y] + [p.value for p in scenario.model.parameters.values()]
    memo = {id(value): value for value in shared if isinstance(value, (list, tuple))}
    return copy.deepcopy(scenario, memo)


def check_scenario(scenario: Scenario, before: Scenario | None = None) -> str | None:
    """None when ``scenario`` is valid, else why not: ``"momentum: expected ..., found ..."``.
    ``before``: the (valid) scenario it was edited from, so only what the edit can change is
    checked again (``checks.validate_edit``); the message is the same either way."""
    try:
        if before is None:
            validate(scenario)
        else:
            validate_edit(scenario, before)
    except ScenarioError as exc:
        key = (exc.key or "").split(".")[-1]
        return f"{key + ': ' if key and not key.isdigit() else ''}expected {exc.expected}, found {exc.found}"
    return None
