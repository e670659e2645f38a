"""Scenarios: what to run, as a TOML file a teacher can write by hand (see docs/scenarios.md).

``load``/``loads`` read a file into a ``Scenario`` (or raise one ``ScenarioError``), ``validate``
checks a ``Scenario`` however it was made, ``save``/``dumps`` write one back, and ``bundled()``
lists the scenarios that ship with GradViz.

Modules: ``schema`` (the dataclasses), ``loader`` (reading a file) with ``toml_source`` (the text:
guards, parsing, lines of keys) and ``reader`` (checking one value; ``ScenarioError``), ``checks``
(every rule; ``validate``) with ``shapes`` (shapes and graph size of a model), ``expr`` (the safe
expression language), ``datasets`` (generated data), ``saver`` (writing), ``edits`` (the rules of
editing a scenario: variant names, comparisons) and ``bundled`` (the shipped files).
"""
from .bundled import DEFAULT_SCENARIO, bundled, bundled_path, find_bundled
from .checks import estimate_graph_nodes, validate
from .loader import load, loads
from .reader import ScenarioError
from .saver import dumps, save
from .schema import (
                     ACTIVATION_CLASSES,
                     ACTIVATIONS,
                     INITS,
                     LIMITS,
                     LOSS_CLASSES,
                     LOSSES,
                     MODEL_KINDS,
                     OPTIMIZER_CLASSES,
                     OPTIMIZER_DEFAULTS,
                     OPTIMIZERS,
                     PRECISIONS,
                     REDUCTIONS,
                     SCALER_DEFAULTS,
                     ZERO_GRAD_PLACEMENTS,
                     DataSpec,
                     LoopSpec,
                     LossSpec,
                     ModelSpec,
                     OptimizerSpec,
                     ParamInit,
                     Scenario,
                     Variant,
)

__all__ = [
    "Scenario", "ModelSpec", "DataSpec", "LossSpec", "OptimizerSpec", "LoopSpec", "Variant",
    "ParamInit", "load", "loads", "validate", "save", "dumps", "ScenarioError", "bundled", "bundled_path",
    "find_bundled", "DEFAULT_SCENARIO", "estimate_graph_nodes", "LIMITS", "MODEL_KINDS", "ACTIVATIONS",
    "LOSSES", "REDUCTIONS", "OPTIMIZERS", "OPTIMIZER_DEFAULTS", "OPTIMIZER_CLASSES", "SCALER_DEFAULTS",
    "ZERO_GRAD_PLACEMENTS", "PRECISIONS", "INITS", "LOSS_CLASSES", "ACTIVATION_CLASSES",
]
