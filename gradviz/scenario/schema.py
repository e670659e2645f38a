"""What a scenario *is*: plain dataclasses, the one schema every other part reads.

A scenario file (TOML, see ``docs/scenarios.md``) is loaded into a ``Scenario``; the Session runs
it; the saver writes it back; the exporter translates it into a PyTorch script. Nothing here does
any I/O or computing.

Vocabulary (the same words PyTorch and the UI use):
- *batch_size*: examples per optimizer step (default: the whole data set);
- *accumulation_steps*: that batch is split into this many equal micro-batches, each with its own
  forward/loss/backward, and the grads accumulate before the one ``optimizer.step()``;
- *divide_loss*: each micro-batch loss is divided by ``accumulation_steps`` before ``backward()``
  (without it the accumulated gradient is ``accumulation_steps`` times too large);
- *zero_grad*: where ``optimizer.zero_grad()`` is called: ``before_backward`` (the usual place, at
  the top of the iteration), ``after_step``, or ``never`` (the classic bug: grads keep growing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_KINDS = ("expression", "objective", "layers")
ACTIVATIONS = ("tanh", "relu", "sigmoid")
LOSSES = ("mse", "l1", "bce_with_logits", "cross_entropy")
REDUCTIONS = ("mean", "sum")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
ZERO_GRAD_PLACEMENTS = ("before_backward", "after_step", "never")
PRECISIONS = ("float32", "float64", "float16", "bfloat16")
INITS = ("value", "zeros", "ones", "normal", "uniform")
FULL_BATCH = "full"            # ``batch_size = "full"`` in a file: the whole data set (None here)

# Every hyperparameter each optimizer accepts, with PyTorch's defaults (the loader fills these in).
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False),
    "rmsprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    maximize=False),
    "adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False),
}
# The class names in gradviz.optim / torch.optim, torch.nn's loss modules and gradviz.nn / torch.nn.
OPTIMIZER_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}
LOSS_CLASSES = {"mse": "MSELoss", "l1": "L1Loss", "bce_with_logits": "BCEWithLogitsLoss",
                "cross_entropy": "CrossEntropyLoss"}
ACTIVATION_CLASSES = {"tanh": "Tanh", "relu": "ReLU", "sigmoid": "Sigmoid"}

# Learning-rate schedulers (torch.optim.lr_scheduler), stepped once per optimizer step. A value of
# None in the defaults is required in the file (``onecycle``'s total_steps defaults to loop.steps).
SCHEDULERS = ("step", "multistep", "exponential", "cosine", "linear", "onecycle")
SCHEDULER_CLASSES = {"step": "StepLR", "multistep": "MultiStepLR", "exponential": "ExponentialLR",
                     "cosine": "CosineAnnealingLR", "linear": "LinearLR", "onecycle": "OneCycleLR"}
SCHEDULER_DEFAULTS: dict[str, dict[str, Any]] = {
    "step": dict(step_size=None, gamma=0.1),
    "multistep": dict(milestones=None, gamma=0.1),
    "exponential": dict(gamma=None),
    "cosine": dict(T_max=None, eta_min=0.0),
    "linear": dict(start_factor=1.0 / 3, end_factor=1.0, total_iters=5),
    "onecycle": dict(max_lr=None, total_steps=None, pct_start=0.3, anneal_strategy="cos",
                     div_factor=25.0, final_div_factor=1e4, three_phase=False),
}
SCHEDULER_PLACEMENTS = ("after_step", "before_step")   # before_step: the classic mistake (torch warns)

# A guided tour's stops (``[[tour]]``): where a stop stands (a phase of the loop, the kind of event)
# and which plot it shows. The phases are ``gradviz.trace.PHASES``; the plots the dashboards' tabs.
TOUR_PHASES = ("zero_grad", "forward", "loss", "backward", "step", "zero_grad_after")
TOUR_EVENTS = ("forward", "backward", "accumulate", "zero_grad", "step", "scaler", "clip", "scheduler",
               "manual_update")
TOUR_PLOTS = ("Loss", "Parameters", "Gradients", "Parameter space", "Optimizer state", "LR and clipping",
              "Data")
MAX_TOUR_STOPS = 50

SCALER_DEFAULTS: dict[str, Any] = dict(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                                       growth_interval=2000)

# Limits that keep a hand-written file from freezing the app (documented in docs/scenarios.md).
LIMITS = dict(
    max_steps=100_000,           # optimizer steps per run
    max_points=100_000,          # data points
    max_features=64,             # input features
    max_layer_width=256,         # units per layer
    max_layers=8,                # entries in `layers` (including input and output)
    max_param_elements=100_000,  # elements over all parameters
    max_graph_nodes=2_000,       # ops recorded in one traced iteration
    max_comparisons=8,
    max_accumulation_steps=1_024,
    max_file_bytes=2_000_000,
    max_recorded_values=50_000_000,   # steps x parameter elements (the History keeps every step)
)


@dataclass
class ParamInit:
    """Initial value of one named parameter of an expression/objective model.

    ``init="value"`` uses ``value`` (a number or nested lists); the random inits draw from the
    scenario's seeded generator with ``shape`` (``std`` for normal, ``low``/``high`` for uniform).
    """
    init: str = "value"
    value: Any = 0.0
    shape: tuple[int, ...] = ()
    std: float = 1.0
    low: float = -1.0
    high: float = 1.0


@dataclass(frozen=True)
class LayerModule:
    """One module of a layers model, named as ``torch.nn.Sequential`` names it."""
    name: str                                 # its index in the Sequential: "0", "1", ...
    kind: str                                 # its class: "Linear", or the activation's (ACTIVATION_CLASSES)
    in_features: int
    out_features: int

    def parameters(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[("0.weight", (out, in)), ("0.bias", (out,))]`` for a Linear; ``[]`` for an activation."""
        if self.kind != "Linear":
            return []
        return [(f"{self.name}.weight", (self.out_features, self.in_features)),
                (f"{self.name}.bias", (self.out_features,))]


@dataclass
class ModelSpec:
    kind: str = "expression"                  # one of MODEL_KINDS
    expression: str = ""                      # expression/objective: the formula (safe grammar, see expr.py)
    parameters: dict[str, ParamInit] = field(default_factory=dict)   # expression/objective
    layers: list[int] = field(default_factory=list)                  # layers: sizes, e.g. [2, 16, 16, 1]
    activation: str = "tanh"                  # layers: between hidden layers (none after the last)

    def layer_modules(self) -> list[LayerModule]:
        """A layers model's modules in order: a ``Linear`` at indices 0, 2, 4, ..., the activation at
        1, 3, ... between two Linears (none after the last); ``[]`` for an expression or objective.

        The one statement of this rule: the Session builds, names and traces the model by it, the
        landscape evaluates it, the exporter writes it and the loader's estimates count it.
        """
        if self.kind != "layers":
            return []
        sizes = [int(s) for s in self.layers]
        modules: list[LayerModule] = []
        for i in range(len(sizes) - 1):
            modules.append(LayerModule(str(len(modules)), "Linear", sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                modules.append(LayerModule(str(len(modules)), ACTIVATION_CLASSES[self.activation],
                                           sizes[i + 1], sizes[i + 1]))
        return modules


@dataclass
class DataSpec:
    """Inline arrays (``x``, ``y``) or a seeded generator (``kind`` in datasets.DATASETS).

    ``kind="none"`` (objectives only) means no data at all. Inputs are named for expressions:
    one feature is ``x``; several are ``x1``, ``x2``, ... (``input_names`` overrides).
    """
    kind: str = "inline"                      # "inline", "none", or a datasets.DATASETS kind
    x: Any = None                             # inline: list (n) or list of lists (n, d)
    y: Any = None                             # inline: list (n) or (n, k); class indices for cross_entropy
    n: int = 100                              # generator: number of points
    noise: float = 0.1                        # generator: noise level
    options: dict[str, Any] = field(default_factory=dict)   # generator-specific (slope, factor, centers, ...)
    input_names: list[str] = field(default_factory=list)
    target_name: str = "y"


@dataclass
class LossSpec:
    kind: str = "mse"                         # one of LOSSES
    reduction: str = "mean"                   # one of REDUCTIONS


@dataclass
class OptimizerSpec:
    kind: str = "sgd"                         # one of OPTIMIZERS
    hyper: dict[str, Any] = field(default_factory=dict)   # complete: defaults filled in by the loader

    def label(self) -> str:
        defaults = OPTIMIZER_DEFAULTS[self.kind]
        shown = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in self.hyper.items() if k == "lr" or v != defaults.get(k)]
        return f"{OPTIMIZER_CLASSES[self.kind]}({', '.join(shown)})"


@dataclass
class SchedulerSpec:
    """``torch.optim.lr_scheduler.<SCHEDULER_CLASSES[kind]>(optimizer, **hyper)``, its
    ``scheduler.step()`` called once per optimizer step, after ``optimizer.step()`` (``placement =
    "before_step"``: before it, the mistake torch warns about)."""
    kind: str = "step"                        # one of SCHEDULERS
    hyper: dict[str, Any] = field(default_factory=dict)   # complete: defaults filled in by the loader
    placement: str = "after_step"             # one of SCHEDULER_PLACEMENTS


@dataclass
class LoopSpec:
    steps: int = 100
    batch_size: int | None = None             # examples per optimizer step; None = full batch
    shuffle: bool = False
    accumulation_steps: int = 1
    divide_loss: bool = True
    zero_grad: str = "before_backward"        # one of ZERO_GRAD_PLACEMENTS
    set_to_none: bool = True
    precision: str = "float32"                # one of PRECISIONS
    loss_scaling: bool = False                # float16 only: use amp.GradScaler
    scaler: dict[str, Any] = field(default_factory=lambda: dict(SCALER_DEFAULTS))
    # torch.nn.utils.clip_grad_norm_(params, max_norm=clip_grad_norm) after backward (after
    # scaler.unscale_(optimizer) when loss scaling), before optimizer.step(); None: no clipping.
    clip_grad_norm: float | None = None
    unscale_before_clip: bool = True          # False: clip the *scaled* grads (the classic mistake)
    scheduler: SchedulerSpec | None = None


@dataclass
class Variant:
    """A comparison: the same model, data and seed with another optimizer and/or loop."""
    name: str
    optimizer: OptimizerSpec
    loop: LoopSpec


@dataclass(frozen=True)
class TourStop:
    """One stop of a guided tour: a place in the replay of one iteration, and what to read there.

    The stop is at ``iteration`` of the run ``run`` (a variant's name; None: the main run): at the
    first event of kind ``event`` (about ``node``, when given) within ``phase`` (of ``micro_batch``),
    or at the start of ``phase``, or at the start of the iteration when neither is given.
    ``node`` (a parameter or input name, or an op's grad_fn name such as ``MulBackward0``) is
    highlighted in the graph, ``plot`` (one of TOUR_PLOTS) is the dashboard tab shown.
    """
    iteration: int
    text: str
    phase: str | None = None                  # one of TOUR_PHASES
    event: str | None = None                  # one of TOUR_EVENTS
    micro_batch: int | None = None            # 0-based
    node: str | None = None
    plot: str | None = None                   # one of TOUR_PLOTS
    run: str | None = None                    # a variant's name; None: the main run


@dataclass
class Scenario:
    title: str
    description: str = ""
    seed: int = 0
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=lambda: DataSpec(kind="none"))
    loss: LossSpec = field(default_factory=LossSpec)
    optimizer: OptimizerSpec = field(default_factory=lambda: OptimizerSpec("sgd", dict(OPTIMIZER_DEFAULTS["sgd"])))
    loop: LoopSpec = field(default_factory=LoopSpec)
    comparisons: list[Variant] = field(default_factory=list)
    path: Path | None = field(default=None, compare=False)   # where it was loaded from, if anywhere
    # The TOML text it was loaded from: lets the saver edit that document, keeping comments and order.
    source_text: str | None = field(default=None, compare=False, repr=False)
    # A script scenario (a .py file): its Python source. The worker runs it on the core; the other
    # fields then only describe it (title, description from its header comment; the optimizer and
    # steps its run used) and nothing here is validated as TOML.
    script: str | None = field(default=None, compare=False, repr=False)
    # The main run's name in the legend and the run boxes: ``[scenario] run = "forgot zero_grad
    # (bug)"`` names it for the lesson; a script's run is named by what it ran ("manual update").
    run_name: str | None = None
    tour: list[TourStop] = field(default_factory=list)      # ``[[tour]]``: the guided tour, in order

    def variants(self) -> list[Variant]:
        """The main run first (named after its optimizer), then each comparison."""
        name = self.run_name or self.optimizer.label()
        return [Variant(name, self.optimizer, self.loop)] + list(self.comparisons)
