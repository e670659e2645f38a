"""Export a scenario as a self-contained PyTorch script: the same run, written the way a PyTorch
user would write it.

    script = export_torch(scenario)            # variant=i exports comparisons[i - 1]
    script.source                              # python script.py > history.csv
    script.lines["backward"]                   # 1-based line of ``loss.backward()`` in source
    script.listing                             # every line, tagged: setup / loop / bookkeeping, phases
    script.loop_source(), script.loop_lines    # just the training loop

The script imports only torch, numpy and math. It embeds the data and GradViz's initial parameter
values (``repr`` of a float64 round-trips exactly, and a float32 value is exactly a float64), feeds
the batches in the order of ``docs/contracts.md`` and runs the loop the toggles describe:
``zero_grad`` placement and ``set_to_none``, gradient accumulation with or without dividing the
loss, float16 autocast and a ``GradScaler``. Each optimizer step prints one CSV row with the
columns of ``History.columns()`` (loss, parameters before the step, their grads, the optimizer state
after it, the grad scale), and the run stops where a Session stops: at the first loss, gradient or
parameter that is not finite.

Everything user-written (title, description, names, the expression) reaches the script only as
a ``#`` comment, a string ``repr``, a sanitised identifier or ``expr.to_python`` of a parsed AST, so
no scenario can inject code (``codegen_text``). ``program`` (``codegen_program``) writes the same
run as the clean PyTorch program, without the CSV bookkeeping.
"""
from __future__ import annotations

from . import optim
from .codegen_program import program
from .codegen_text import (
    LINE_KINDS,
    PHASES,
    WIDTH,
    Line,
    ScenarioWriter,
    Script,
    comment_lines,
    optimizer_args,
    py_number,
    py_string,
    rename_names,
    scheduler_text,
    step_lines,
    tensor_literal,
)
from .scenario import expr
from .scenario.schema import LOSS_CLASSES, OPTIMIZER_CLASSES, SCALER_DEFAULTS, Scenario
from .training.build import Model, Setup, build

__all__ = ["Script", "Line", "export_torch", "program", "PHASES", "LINE_KINDS"]


_DTYPES = {"float64": "torch.float64", "float32": "torch.float32", "float16": "torch.float32",
           "bfloat16": "torch.float32"}


# Names the script itself defines or uses; a scenario name equal to one of these is renamed.
_SCRIPT_NAMES = frozenset("""
    torch np math DTYPE STEPS BATCH_SIZE ACCUMULATION_STEPS MICRO_BATCH STATE_KEYS HEADER
    model params loss_fn optimizer scaler scheduler batches batch_order element_names flat record log
    step micro idx mb pred loss losses row scale skipped total_norm
""".split())


def export_torch(scenario: Scenario, variant: int = 0) -> Script:
    """The PyTorch script for one variant of ``scenario`` (0 = main run, i = ``comparisons[i-1]``).

    Raises ``SessionError`` (a ValueError) when the scenario cannot run, like ``Session`` does:
    the data and initial values are built and checked by the Session's own code (``training.build``),
    so they cannot drift apart.
    """
    setup, model = build(scenario, variant)
    return _Exporter(setup, model).build()


class _Exporter(ScenarioWriter):
    def __init__(self, setup: Setup, model: Model):
        super().__init__(setup, model)
        # Batches are spelled out only when they differ from "all the data at once".
        self.batched = self.kind != "objective" and (
            self.batch_size < self.n or self.loop.shuffle or self.accumulation_steps > 1)
        self.name_variables(model.names, set(), _SCRIPT_NAMES, layer_params={n: n for n in model.names})

    # -- sections ---------------------------------------------------------------------------
    def build(self) -> Script:
        self.header()
        self.data_section()
        self.model_section()
        self.optimizer_section()
        self.batches_section()
        self.logging_section()
        self.training_loop()
        return Script.from_listing(tuple(self.w.lines), self.v.name)

    def header(self) -> None:
        w = self.w
        self.title_lines(
            f"Exported from GradViz, variant {self.v.name}: the same run as in the app, with the same "
            "data, the same initial values and the same training loop. It prints one CSV row per "
            "optimizer step with the columns of GradViz's History (the loss, each parameter before the "
            "step, its gradient, the optimizer state after the step):")
        w.add("#     python this_script.py > history.csv",
              "import math",
              "",
              "import numpy as np",
              "import torch",
              "")
        precision = self.loop.precision
        note = {"float64": "", "float32": "",
                "float16": "  # float32 master weights; autocast runs Linear/matmul in float16",
                "bfloat16": "  # float32 master weights; autocast runs Linear/matmul in bfloat16"}[precision]
        w.add(f"DTYPE = {_DTYPES[precision]}{note}",
              f"STEPS = {int(self.loop.steps)}")

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
        dtype_tail = "dtype=DTYPE"
        for name, values in self.data.inputs.items():
            w.add(*tensor_literal(f"{self.input_vars[name]} = ", values, dtype_tail))
        target = self.data.target
        if target.dtype.kind in "iu":
            w.add("# class indices (int64), as CrossEntropyLoss expects")
            w.add(*tensor_literal(f"{self.target_var} = ", target, ""))
        else:
            w.add(*tensor_literal(f"{self.target_var} = ", target, dtype_tail))

    def model_section(self) -> None:
        s, w = self.scenario, self.w
        w.blank()
        if self.kind == "layers":
            w.add("model = torch.nn.Sequential(")
            for module in s.model.layer_modules():
                w.add(f"    torch.nn.Linear({module.in_features}, {module.out_features})," if module.kind == "Linear"
                      else f"    torch.nn.{module.kind}(),")
            w.add(").to(DTYPE)")
            w.add(f"# GradViz's initial weights (seed {s.seed}), so that both runs start at the same point")
            w.add("with torch.no_grad():")
            for name, value in self.initial.items():
                module, attr = name.rsplit(".", 1)
                literal = tensor_literal(f"model[{module}].{attr}.copy_(", value, "dtype=DTYPE", indent="    ")
                literal[-1] += ")"
                w.add(*literal)
            w.add("params = dict(model.named_parameters())")
        else:
            model = s.model
            what = "objective" if self.kind == "objective" else "model"
            w.add(*comment_lines(f"The {what}: {expr.to_text(expr.parse(model.expression))}"))
            for name, value in self.initial.items():
                init = model.parameters[name]
                note = {"normal": f"normal(0, {init.std:g})", "uniform": f"uniform({init.low:g}, {init.high:g})"}
                if init.init in note:
                    w.add(f"# {self.param_vars[name]}: drawn from {note[init.init]} by GradViz (seed {s.seed})")
                w.add(*tensor_literal(f"{self.param_vars[name]} = ", value, "dtype=DTYPE, requires_grad=True"))
            entries = ", ".join(f"{py_string(n)}: {v}" for n, v in self.param_vars.items())
            w.add(f"params = {{{entries}}}")
        if self.kind != "objective":
            reduction = s.loss.reduction
            args = "" if reduction == "mean" else f"reduction={py_string(reduction)}"
            w.add(f"loss_fn = torch.nn.{LOSS_CLASSES[s.loss.kind]}({args})", kind="setup")

    def optimizer_section(self) -> None:
        opt, loop, w = self.v.optimizer, self.loop, self.w
        w.blank()
        params = "model.parameters()" if self.kind == "layers" else "list(params.values())"
        w.add(f"optimizer = torch.optim.{OPTIMIZER_CLASSES[opt.kind]}({params}, {optimizer_args(opt.kind, opt.hyper)})",
              kind="setup")
        if self.scaler:
            scaler = dict(SCALER_DEFAULTS, **dict(loop.scaler))
            args = ", ".join(f"{k}={py_number(v)}" for k, v in scaler.items()
                             if k in SCALER_DEFAULTS and v != SCALER_DEFAULTS[k])
            w.add("# scales the loss up before backward() so that small float16 gradients do not become 0")
            w.add(f'scaler = torch.amp.GradScaler("cpu"{", " + args if args else ""})', kind="setup")
        if loop.scheduler is not None:
            w.add(f"scheduler = {scheduler_text(loop.scheduler, 'STEPS')}", kind="setup")

    def batches_section(self) -> None:
        w, loop = self.w, self.loop
        if self.accumulation_steps > 1 and not self.batched:  # an objective: no data, no batches
            w.blank()
            w.add(f"ACCUMULATION_STEPS = {self.accumulation_steps}  "
                  "# forward/backward passes per optimizer step")
        if not self.batched:
            return
        w.blank()
        w.add(f"BATCH_SIZE = {self.batch_size}  # examples per optimizer step")
        if self.accumulation_steps > 1:
            w.add(f"ACCUMULATION_STEPS = {self.accumulation_steps}  # micro-batches per optimizer step",
                  "MICRO_BATCH = BATCH_SIZE // ACCUMULATION_STEPS")
        w.add("",
              "",
              "def batch_order(n, batch_size, shuffle, seed):",
              '    """One index array per optimizer step, forever (the order GradViz uses)."""',
              "    rng = np.random.default_rng(seed + 1)  # only for shuffling",
              "    per_epoch = n // batch_size  # a partial last batch is dropped",
              "    while True:",
              "        order = rng.permutation(n) if shuffle else np.arange(n)",
              "        for i in range(per_epoch):",
              "            yield order[i * batch_size:(i + 1) * batch_size]",
              "",
              "",
              f"batches = batch_order({self.n}, BATCH_SIZE, shuffle={bool(loop.shuffle)}, "
              f"seed={int(self.scenario.seed)})")

    def logging_section(self) -> None:
        w = self.w
        keys = getattr(optim, OPTIMIZER_CLASSES[self.v.optimizer.kind]).state_keys(self.v.optimizer.hyper)
        micro = (f' + [f"micro_loss[{{j}}]" for j in range({self.accumulation_steps})]'
                 if self.accumulation_steps > 1 else "")
        w.blank()
        w.add("# -- printing GradViz's History columns (bookkeeping, not part of the training) --",
              "")
        name = OPTIMIZER_CLASSES[self.v.optimizer.kind]
        w.add(f"STATE_KEYS = {keys!r}  # " + (f"what {name} keeps per parameter" if keys else
                                            f"{name} without momentum keeps no state"),
              "",
              "",
              "def element_names(name, shape):",
              '    """GradViz\'s column names: w for a scalar, else one per element: 0.weight[1,0]."""',
              "    if len(shape) == 0:",
              "        return [name]",
              "    return [f\"{name}[{','.join(map(str, i))}]\" for i in np.ndindex(*shape)]",
              "",
              "",
              "def flat(tensor, numel):",
              '    """The elements of a tensor as floats; nan for a missing one (a grad that is None)."""',
              "    if tensor is None:",
              "        return [math.nan] * numel",
              "    return torch.as_tensor(tensor).detach().flatten().tolist()",
              "",
              "",
              "def record(step, losses):",
              '    """The row so far: the loss, each parameter before the step and the grad step() will use."""',
              "    row = [step, sum(losses) / len(losses)]" + (" + losses" if self.accumulation_steps > 1 else ""),
              "    row += [v for p in params.values() for v in flat(p, p.numel())]",
              "    row += [v for p in params.values() for v in flat(p.grad, p.numel())]",
              "    return row",
              "",
              "",
              "def log(row, grad_scale=1.0, skipped=False, total_norm=None):",
              '    """Add the optimizer state after the step, the step\'s learning rate (and the gradient',
              '    norm before clipping) and print the CSV row. False when GradViz stops the run here: a',
              '    loss, gradient or new parameter value that is not finite."""',
              "    for p in params.values():",
              "        state = optimizer.state.get(p, {})",
              "        for key in STATE_KEYS:",
              "            row += flat(state.get(key), 1 if key == \"step\" else p.numel())",
              "    row += [grad_scale, float(skipped), optimizer.param_groups[0][\"lr\"]]")
        if self.loop.clip_grad_norm is not None:
            w.add("    row.append(total_norm.item())")
        w.add(
              "    print(\",\".join(map(repr, row)))",
              "    finite = math.isfinite(row[1]) and all(torch.isfinite(p).all() for p in params.values())")
        if not self.scaler:        # with a GradScaler, inf/nan grads only skip the step
            w.add("    finite = finite and all(p.grad is None or torch.isfinite(p.grad).all() "
                  "for p in params.values())")
        w.add("    return finite",
              "",
              "",
              f'HEADER = ["step", "loss"]{micro}',
              "HEADER += [n for name, p in params.items() for n in element_names(name, p.shape)]",
              'HEADER += ["grad." + n for name, p in params.items() for n in element_names(name, p.shape)]',
              "HEADER += [f\"state.{n}.{key}\" for name, p in params.items() for key in STATE_KEYS",
              "           for n in element_names(name, () if key == \"step\" else p.shape)]",
              'HEADER += ["grad_scale", "skipped", "lr"' + (', "clip_norm"]' if self.loop.clip_grad_norm is not None
                                                           else "]"),
              "print(\",\".join(f'\"{c}\"' if \",\" in c else c for c in HEADER))",
              "")

    # -- the loop ---------------------------------------------------------------------------
    def forward_text(self, rows: str) -> str:
        """``model(x[idx])`` or the expression with its names bound: ``w * x[idx] + b``."""
        if self.kind == "layers":
            return f"model(x{rows})"
        mapping = {name: var + rows for name, var in self.input_vars.items()}
        for name, var in self.param_vars.items():
            if name not in self.input_vars:      # an input shadows a parameter (as in the Session)
                mapping[name] = var
        return expr.to_python(rename_names(expr.parse(self.scenario.model.expression), mapping))

    def training_loop(self) -> None:
        loop, w, accumulation_steps = self.loop, self.w, self.accumulation_steps
        set_to_none = "" if loop.set_to_none else "set_to_none=False"
        zero_note = "" if loop.set_to_none else "  # zero the grads in place (they stay tensors, not None)"
        w.loop("for step in range(STEPS):")
        if loop.zero_grad == "before_backward":
            w.loop(f"    optimizer.zero_grad({set_to_none}){zero_note}", phases=("zero_grad",))
        elif loop.zero_grad == "never":
            w.loop("    # optimizer.zero_grad() is never called: gradients keep accumulating (the classic bug)")
        else:
            w.loop("    # optimizer.zero_grad() comes after optimizer.step(), at the end of the iteration")
        if self.batched:
            w.loop("    idx = next(batches)")
        indent = "    "
        if accumulation_steps > 1:
            w.loop("    losses = []", kind="bookkeeping")
            w.loop(f"    for micro in range(ACCUMULATION_STEPS):  "
                   f"# {accumulation_steps} forward/backward passes, one step")
            if self.batched:
                w.loop("        mb = idx[micro * MICRO_BATCH:(micro + 1) * MICRO_BATCH]")
            indent = "        "
        rows = ("[mb]" if accumulation_steps > 1 else "[idx]") if self.batched else ""
        body = indent
        if self.autocast:
            dtype = self.autocast
            w.loop(f'{indent}with torch.autocast("cpu", dtype=torch.{dtype}):  # Linear/matmul in {dtype}')
            body = indent + "    "
        if self.kind == "objective":
            line = f"{body}loss = {self.forward_text('')}"
            note = "  # the objective is the loss"
            w.loop(line + note if len(line + note) <= WIDTH else line, phases=("forward", "loss"))
        else:
            w.loop(f"{body}pred = {self.forward_text(rows)}", phases=("forward",))
            w.loop(f"{body}loss = loss_fn(pred, {self.target_var}{rows})", phases=("loss",))
        if accumulation_steps > 1:
            w.loop(f"{indent}losses.append(loss.item())", kind="bookkeeping")
            if loop.divide_loss:
                w.loop(f"{indent}loss = loss / ACCUMULATION_STEPS  # so the summed grads are the batch mean")
            else:
                w.loop(f"{indent}# the loss is not divided by ACCUMULATION_STEPS: the accumulated gradient "
                       f"is {accumulation_steps}x too large")
        if self.scaler:
            w.loop(f"{indent}scaler.scale(loss).backward()  # backward of loss * scale", phases=("backward",))
        else:
            w.loop(f"{indent}loss.backward()", phases=("backward",))
        losses = "losses" if accumulation_steps > 1 else "[loss.item()]"
        params = "model.parameters()" if self.kind == "layers" else "list(params.values())"
        note = "  # grads back to their true size (the ones GradViz records)"
        for code, phases, kind in step_lines(loop, params, scaler=self.scaler, scaler_note=note):
            w.loop(code, phases=phases, kind=kind)
        norm = ", total_norm=total_norm" if loop.clip_grad_norm is not None else ""
        if self.scaler:
            w.loop(f"    row = record(step, {losses})", kind="bookkeeping")
            w.loop("    scale = scaler.get_scale()  # what the loss was multiplied by", kind="bookkeeping")
            w.loop("    scaler.step(optimizer)  # optimizer.step(), skipped if a gradient is inf/nan", phases=("step",))
            w.loop("    scaler.update()  # back off the scale after a skipped step, grow it after a long run")
            w.loop(f"    if not log(row, scale, skipped=scaler.get_scale() < scale{norm}):", kind="bookkeeping",
                   aside="print the CSV row")
        else:
            w.loop(f"    row = record(step, {losses})", kind="bookkeeping",
                   aside="loss, parameters and grads before the step")
            w.loop("    optimizer.step()", phases=("step",))
            w.loop(f"    if not log(row{norm}):", kind="bookkeeping",
                   aside="print the CSV row; stop where GradViz stops")
        w.loop("        break", kind="bookkeeping")
        if loop.scheduler is not None and loop.scheduler.placement == "after_step":
            w.loop("    scheduler.step()  # after optimizer.step(): the next step's learning rate")
        if loop.zero_grad == "after_step":
            w.loop(f"    optimizer.zero_grad({set_to_none}){zero_note}", phases=("zero_grad_after",))

