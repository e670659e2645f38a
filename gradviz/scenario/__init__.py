"""Scenarios: what to run, as a TOML file a teacher can write by hand (see docs/scenarios.md).

``load``/``loads`` read and validate a file into a ``Scenario`` (or raise one ``ScenarioError``),
``save``/``dumps`` write one back, and ``bundled()`` lists the scenarios shipped in
``assets/scenarios/``.
"""
from .loader import (DEFAULT_SCENARIO, ScenarioError, bundled, bundled_path, estimate_graph_nodes,
                     load, loads)
from .saver import dumps, save
from .schema import (ACTIVATION_CLASSES, ACTIVATIONS, INITS, LIMITS, LOSS_CLASSES, LOSSES, MODEL_KINDS,
                     OPTIMIZER_CLASSES, OPTIMIZER_DEFAULTS, OPTIMIZERS, PRECISIONS, REDUCTIONS, SCALER_DEFAULTS,
                     ZERO_GRAD_PLACEMENTS, DataSpec, LoopSpec, LossSpec, ModelSpec, OptimizerSpec,
                     ParamInit, Scenario, Variant)

__all__ = [
    "Scenario", "ModelSpec", "DataSpec", "LossSpec", "OptimizerSpec", "LoopSpec", "Variant",
    "ParamInit", "load", "loads", "save", "dumps", "ScenarioError", "bundled", "bundled_path",
    "DEFAULT_SCENARIO", "estimate_graph_nodes", "LIMITS", "MODEL_KINDS", "ACTIVATIONS", "LOSSES",
    "REDUCTIONS", "OPTIMIZERS", "OPTIMIZER_DEFAULTS", "OPTIMIZER_CLASSES", "SCALER_DEFAULTS",
    "ZERO_GRAD_PLACEMENTS", "PRECISIONS", "INITS", "LOSS_CLASSES", "ACTIVATION_CLASSES",
]
