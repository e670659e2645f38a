"""The clean PyTorch program of a TOML scenario: the run GradViz shows, as a PyTorch user writes it.

    script = program(scenario)            # variant=i: comparisons[i - 1]; a codegen.Script
    script.source                         # python lesson.py prints the final loss and parameters
    script.lines["backward"]              # 1-based line of ``loss.backward()``: what the code panel lights

Imports, data, model, loss, optimizer and loop, and nothing that is not PyTorch: no CSV, no
History helpers (those stay in ``export_torch``, the exporter). It runs unchanged under real
torch and under GradViz's script runner, and gives the Session's numbers:

- the data and any random initial values of an expression's parameters are embedded (``repr`` of a
  float round-trips exactly); a layers model is built after ``torch.manual_seed(seed)`` as the
  Session builds it, so ``nn.Linear`` draws the same initial weights from torch's generator;
- float64 runs call ``torch.set_default_dtype(torch.float64)`` first; float16/bfloat16 runs keep
  float32 weights and compute under ``torch.autocast("cpu", dtype=...)``;
- batches are rows ``start:start + BATCH_SIZE`` in order (the last partial batch of an epoch is
  dropped, as the Session does); a shuffled run draws each epoch's order with numpy's generator
  seeded ``seed + 1``, the order GradViz uses (the one line of the program that is not PyTorch);
- the optimizer step is docs/contracts.md's: ``scaler.unscale_`` (only when clipping comes next),
  ``clip_grad_norm_``, ``scheduler.step()`` before or after ``optimizer.step()``.

The Session stops at the first loss, gradient or parameter that is not finite; the program runs
on and prints what it reaches. User text reaches the program only as comments, string literals,
sanitised identifiers and parsed expressions (the exporter's helpers).

Regenerating after an edit costs what the edit changed, not the data: the embedded arrays' lines
are kept (``_literal``, keyed on the arrays' bytes, so an lr edit of a 100,000-point scenario reuses
its 3 MB data section), and the one forward pass that checks the model runs on the data (the
check ``training.build`` does) is kept by the shapes and dtypes it depends on (``_build``).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np

from .codegen_text import (
    WIDTH,
    Line,
    ScenarioWriter,
    Script,
    comment_lines,
    optimizer_args,
    py_number,
    rename_names,
    scheduler_text,
    step_lines,
    tensor_literal,
)
from .scenario import expr
from .scenario.schema import LOSS_CLASSES, OPTIMIZER_CLASSES, SCALER_DEFAULTS, Scenario
from .training.build import Model, Setup, build_loss, build_model, check, prepare

__all__ = ["program"]

# Names the program itself uses; a parameter or input with one of these names is renamed (w_).
_PROGRAM_NAMES = frozenset("""
    torch np rng order start rows batch micro step pred loss loss_fn model optimizer scaler scheduler
    total_norm STEPS BATCH_SIZE BATCHES_PER_EPOCH ACCUMULATION_STEPS MICRO_BATCH N
""".split())


def _short(values: np.ndarray) -> np.ndarray:
    """float32 values as the float64 numbers of their shortest decimal form (0.37689346, not
    0.37689346075057983) wherever that form rounds back to the same float32 (torch.tensor parses a
    literal as a Python float, then rounds it to float32); other dtypes unchanged.

    Vectorised in chunks of ``SHORT_CHUNK`` values (numpy's float32 ``str`` is the shortest form): one
    C call per chunk, and the GIL offered to other threads between chunks, so that a worker writing a
    100,000-value array lets the window have it (a loop of ``str(np.float32(v))`` makes no call a
    profile hook sees, and held the GIL for the whole array while the window waited)."""
    values = np.asarray(values)
    if values.dtype != np.float32:
        return values
    out = values.astype(np.float64)
    flat, flat32 = out.reshape(-1), values.reshape(-1)
    for start in range(0, flat32.size, SHORT_CHUNK):
        if start:
            time.sleep(0)            # the GIL offered to the other threads (the window's)
        part = flat32[start:start + SHORT_CHUNK]
        with np.errstate(all="ignore"):
            short = part.astype(str).astype(np.float64)
            keep = short.astype(np.float32) == part          # nan never equals: kept as it is
        flat[start:start + SHORT_CHUNK][keep] = short[keep]
    return out


SHORT_CHUNK = 2048           # values per C call of _short (about 2 ms)


# -- what a regeneration keeps ----------------------------------------------------------------
CACHE_MIN_VALUES = 2_000     # arrays at least this large keep their lines (smaller ones are cheap to write)
CACHE_ENTRIES = 4            # arrays whose lines are kept (the most recently used: x and y in two dtypes)
_LITERALS: OrderedDict[tuple, tuple[Line, ...]] = OrderedDict()
_CHECKED: OrderedDict[tuple, None] = OrderedDict()
_LOCK = threading.Lock()     # the code panel writes large programs in a thread of its own


def _literal(head: str, values: np.ndarray, tail: str) -> tuple[Line, ...]:
    """``tensor_literal(head, _short(values), tail)`` as lines; for a large array, the lines made the
    last time the same bytes (same dtype and shape) were written under the same head."""
    values = np.asarray(values)
    if values.size < CACHE_MIN_VALUES:
        return tuple(Line(text) for text in tensor_literal(head, _short(values), tail))
    key = (head, tail, values.dtype.str, values.shape, values.tobytes())
    with _LOCK:
        lines = _LITERALS.get(key)
        if lines is not None:
            _LITERALS.move_to_end(key)
            return lines
    lines = tuple(Line(text) for text in tensor_literal(head, _short(values), tail))
    with _LOCK:
        _LITERALS[key] = lines
        while len(_LITERALS) > CACHE_ENTRIES:
            _LITERALS.popitem(last=False)
    return lines


def _build(scenario: Scenario, variant: int, draw_weights: bool = True) -> tuple[Setup, Model]:
    """``training.build`` (prepare, build the model, check it on the first micro-batch), the check
    skipped when it already passed for the same shapes and dtypes: it runs the model on the data
    (seconds for a wide MLP on 100,000 points) and depends on nothing else, so an lr edit does
    not run it again. A layers model's initial weights are not written into the program (it calls
    ``torch.manual_seed``): once checked, or with ``draw_weights=False``, it is not built at all."""
    setup = prepare(scenario, variant)
    spec, data = scenario.model, setup.data
    layers = spec.kind == "layers"
    model = Model([], [], lambda inputs: None) if layers else build_model(setup)   # expressions: a local rng
    key = (spec.kind, "" if layers else spec.expression,
           tuple((m.kind, m.in_features, m.out_features) for m in spec.layer_modules()),
           tuple((name, p._data.shape, p._data.dtype.str) for name, p in zip(model.names, model.params)),
           tuple((name, a.shape, a.dtype.str) for name, a in data.inputs.items()),
           None if data.target is None else (data.target.shape, data.target.dtype.str),
           scenario.loss.kind, scenario.loss.reduction, str(setup.dtype), str(setup.autocast_dtype),
           setup.micro_size, setup.objective)
    with _LOCK:
        checked = key in _CHECKED
    if not checked and (draw_weights or not layers):
        checked_model = build_model(setup) if layers else model
        check(setup, checked_model, build_loss(setup))
        with _LOCK:
            _CHECKED[key] = None
            while len(_CHECKED) > 64:
                _CHECKED.popitem(last=False)
    return setup, model


def program(scenario: Scenario, variant: int = 0, *, draw_weights: bool = True) -> Script:
    """The clean program of one variant (0 = main run, i = ``comparisons[i - 1]``).

    Raises ``SessionError`` (a ValueError) when the scenario cannot run, as ``Session`` does: the
    data and initial values come from the Session's own building code (``training.build``).
    ``draw_weights=False`` (for a thread other than the one that builds the runs): a layers model is
    not built, so nothing draws from the global generator a run being built in another thread draws
    its initial weights from; its forward pass is then not checked (the run's own check reports
    such an error). The text is the same.
    """
    setup, model = _build(scenario, variant, draw_weights)
    return _Program(setup, model).build()


class _Program(ScenarioWriter):
    def __init__(self, setup: Setup, model: Model):
        super().__init__(setup, model)
        loop = self.loop
        self.steps = int(loop.steps)
        self.per_epoch = self.n // self.batch_size if self.n else 1
        self.shuffle = self.kind != "objective" and bool(loop.shuffle)
        self.name_variables(model.names, set(_PROGRAM_NAMES), layer_params={})
        self.params_text = ("model.parameters()" if self.kind == "layers"
                            else "[" + ", ".join(self.param_vars.values()) + "]")

    def build(self) -> Script:
        self.header()
        self.data_section()
        self.model_section()
        self.training_section()
        self.loop_section()
        self.result_section()
        return Script.from_listing(tuple(self.w.lines), self.v.name)

    # -- sections ---------------------------------------------------------------------------
    def header(self) -> None:
        w = self.w
        self.title_lines(
            f"The PyTorch program of this GradViz scenario (run: {self.v.name}): the same data, initial "
            "values and training loop as in the app. Run it with python, or edit it in GradViz and "
            "press Ctrl+R.")
        w.add("import torch")
        if self.shuffle:
            w.add("import numpy as np  # only to shuffle in the order GradViz uses")
        if self.loop.precision == "float64":
            w.blank()
            w.add("torch.set_default_dtype(torch.float64)  # every tensor and nn.Linear below is float64")

    def data_section(self) -> None:
        if self.kind == "objective":
            return
        spec, w = self.scenario.data, self.w
        w.blank()
        if spec.kind == "inline":
            w.add(f"# The data: {self.n} example{'s' if self.n != 1 else ''}, as written in the scenario.")
        else:
            options = "".join(f", {k}={v!r}" for k, v in dict(spec.options).items())
            w.add(*comment_lines(
                f'The data: {self.n} points of the "{spec.kind}" data set (noise {spec.noise:g}, '
                f"seed {self.scenario.seed}{options}), generated by GradViz and embedded here."))
        for name, values in self.data.inputs.items():
            w.lines.extend(_literal(f"{self.input_vars[name]} = ", values, ""))
        target = self.data.target
        if target.dtype.kind in "iu":
            w.add("# class indices (int64), as CrossEntropyLoss expects")
        w.lines.extend(_literal(f"{self.target_var} = ", target, ""))

    def model_section(self) -> None:
        s, w = self.scenario, self.w
        w.blank()
        if self.kind == "layers":
            w.add(f"torch.manual_seed({int(s.seed)})  # nn.Linear draws its initial weights from torch's generator")
            w.add("model = torch.nn.Sequential(")
            for module in s.model.layer_modules():
                w.add(f"    torch.nn.Linear({module.in_features}, {module.out_features})," if module.kind == "Linear"
                      else f"    torch.nn.{module.kind}(),")
            w.add(")")
        else:
            model = s.model
            what = "objective" if self.kind == "objective" else "model"
            w.add(*comment_lines(f"The {what}: {expr.to_text(expr.parse(model.expression))}"))
            for name, value in self.initial.items():
                init = model.parameters[name]
                note = {"normal": f"normal(0, {init.std:g})", "uniform": f"uniform({init.low:g}, {init.high:g})"}
                if init.init in note:
                    w.add(f"# {self.param_vars[name]}: drawn from {note[init.init]} by GradViz (seed {s.seed})")
                w.lines.extend(_literal(f"{self.param_vars[name]} = ", value, "requires_grad=True"))

    def training_section(self) -> None:
        s, opt, loop, w = self.scenario, self.v.optimizer, self.loop, self.w
        w.blank()
        if self.kind != "objective":
            args = "" if s.loss.reduction == "mean" else f'reduction="{s.loss.reduction}"'
            w.add(f"loss_fn = torch.nn.{LOSS_CLASSES[s.loss.kind]}({args})", kind="setup")
        w.add(f"optimizer = torch.optim.{OPTIMIZER_CLASSES[opt.kind]}({self.params_text}, "
              f"{optimizer_args(opt.kind, opt.hyper)})", kind="setup")
        if self.scaler:
            scaler = dict(SCALER_DEFAULTS, **dict(loop.scaler))
            args = "".join(f", {k}={py_number(v)}" for k, v in scaler.items()
                           if k in SCALER_DEFAULTS and v != SCALER_DEFAULTS[k])
            w.add("# multiplies the loss before backward() so that small float16 gradients do not become 0")
            w.add(f'scaler = torch.amp.GradScaler("cpu"{args})', kind="setup")
        if loop.scheduler is not None:
            w.add(f"scheduler = {scheduler_text(loop.scheduler, self.steps)}", kind="setup")
        if self.kind == "objective" or not (self.batch_size < self.n or self.shuffle or self.accumulation_steps > 1):
            if self.accumulation_steps > 1:
                w.add(f"ACCUMULATION_STEPS = {self.accumulation_steps}  # forward/backward passes per optimizer step")
            return
        dropped = self.n - self.per_epoch * self.batch_size
        note = f" (the last {dropped} of each epoch are left out)" if dropped else ""
        w.add(f"BATCH_SIZE = {self.batch_size}  # examples per optimizer step{note}")
        if self.per_epoch > 1:
            w.add(f"BATCHES_PER_EPOCH = {self.per_epoch}")
        if self.accumulation_steps > 1:
            w.add(f"ACCUMULATION_STEPS = {self.accumulation_steps}  # micro-batches per optimizer step",
                  "MICRO_BATCH = BATCH_SIZE // ACCUMULATION_STEPS")
        if self.shuffle:
            w.add(f"rng = np.random.default_rng({int(self.scenario.seed) + 1})")

    # -- the loop ---------------------------------------------------------------------------
    def rows(self) -> str:
        """The indexing of the inputs and target in the loop body: "" (all the data), ``[rows]`` ..."""
        batched = self.kind != "objective" and (self.batch_size < self.n or self.shuffle or self.accumulation_steps > 1)
        if not batched:
            return ""
        start = "start + " if self.per_epoch > 1 else ""
        w = self.w
        if self.accumulation_steps > 1:
            lo, hi = f"{start}micro * MICRO_BATCH", f"{start}(micro + 1) * MICRO_BATCH"
            w.loop(f"        rows = order[{lo}:{hi}]" if self.shuffle else f"        rows = slice({lo}, {hi})")
            return "[rows]"
        if self.shuffle:
            if self.per_epoch == 1:
                return "[order]"
            w.loop("    rows = order[start:start + BATCH_SIZE]")
            return "[rows]"
        return "[start:start + BATCH_SIZE]"

    def forward_text(self, rows: str) -> str:
        if self.kind == "layers":
            return f"model(x{rows})"
        mapping = {name: var + rows for name, var in self.input_vars.items()}
        for name, var in self.param_vars.items():
            if name not in self.input_vars:      # an input shadows a parameter (as in the Session)
                mapping[name] = var
        return expr.to_python(rename_names(expr.parse(self.scenario.model.expression), mapping))

    def loop_section(self) -> None:
        loop, w = self.loop, self.w
        w.blank()
        w.loop(f"for step in range({self.steps}):")
        if self.shuffle:
            w.loop("    if step % BATCHES_PER_EPOCH == 0:  # a new epoch: a new order" if self.per_epoch > 1
                   else "    # a new epoch every step: a new order")
            indent = "        " if self.per_epoch > 1 else "    "
            w.loop(f"{indent}order = torch.tensor(rng.permutation({self.n}))")
        set_to_none = "" if loop.set_to_none else "set_to_none=False"
        zero_note = "" if loop.set_to_none else "  # zero the grads in place (they stay tensors, not None)"
        if loop.zero_grad == "before_backward":
            w.loop(f"    optimizer.zero_grad({set_to_none}){zero_note}", phases=("zero_grad",))
        elif loop.zero_grad == "never":
            w.loop("    # optimizer.zero_grad() is never called: gradients keep accumulating (the classic bug)")
        if self.kind != "objective" and self.per_epoch > 1:
            w.loop("    start = step % BATCHES_PER_EPOCH * BATCH_SIZE")
        indent = "    "
        if self.accumulation_steps > 1:
            w.loop(f"    for micro in range(ACCUMULATION_STEPS):  # {self.accumulation_steps} forward/backward "
                   "passes, one step")
            indent = "        "
        rows = self.rows()
        body = indent
        if self.autocast:
            w.loop(f'{indent}with torch.autocast("cpu", dtype=torch.{self.autocast}):  '
                   f"# Linear/matmul in {self.autocast}")
            body = indent + "    "
        if self.kind == "objective":
            line = f"{body}loss = {self.forward_text('')}"
            note = "  # the objective is the loss"
            w.loop(line + note if len(line + note) <= WIDTH else line, phases=("forward", "loss"))
        else:
            w.loop(f"{body}pred = {self.forward_text(rows)}", phases=("forward",))
            w.loop(f"{body}loss = loss_fn(pred, {self.target_var}{rows})", phases=("loss",))
        if self.accumulation_steps > 1:
            if loop.divide_loss:
                w.loop(f"{indent}loss = loss / ACCUMULATION_STEPS  # so the summed grads are the batch mean")
            else:
                w.loop(f"{indent}# the loss is not divided by ACCUMULATION_STEPS: the accumulated gradient "
                       f"is {self.accumulation_steps}x too large")
        backward = "scaler.scale(loss).backward()  # backward of loss * scale" if self.scaler else "loss.backward()"
        w.loop(f"{indent}{backward}", phases=("backward",))
        for code, phases, kind in step_lines(loop, self.params_text, scaler=self.scaler, scaler_note=""):
            w.loop(code, phases=phases, kind=kind)
        if self.scaler:
            w.loop("    scaler.step(optimizer)  # unscales, then optimizer.step() unless a gradient is inf/nan",
                   phases=("step",))
            w.loop("    scaler.update()  # back off the scale after a skipped step, grow it after a long run")
        else:
            w.loop("    optimizer.step()", phases=("step",))
        if loop.scheduler is not None and loop.scheduler.placement == "after_step":
            w.loop("    scheduler.step()")
        if loop.zero_grad == "after_step":
            w.loop(f"    optimizer.zero_grad({set_to_none}){zero_note}", phases=("zero_grad_after",))

    def result_section(self) -> None:
        w = self.w
        w.blank()
        if self.accumulation_steps > 1 and self.loop.divide_loss:
            w.add('print("loss of the last micro-batch:", loss.item() * ACCUMULATION_STEPS)')
        elif self.accumulation_steps > 1:
            w.add('print("loss of the last micro-batch:", loss.item())')
        else:
            w.add('print("loss at the last step:", loss.item())')
        if self.kind == "layers":
            w.add("print(model.state_dict())")
        else:
            for var in self.param_vars.values():
                w.add(f'print("{var} =", {var})')

