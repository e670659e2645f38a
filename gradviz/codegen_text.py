"""Python source for PyTorch programs: lines tagged with what they are, literals that read back bit
for bit, safe identifiers and comments. Shared by the exporter (``codegen.export_torch``, the CSV
script) and the clean program (``codegen_program.program``).

Everything user-written (title, description, names, the expression) reaches a script only as a
``#`` comment, a string ``repr``, a sanitised identifier or ``expr.to_python`` of a parsed AST, so
no scenario can inject code.
"""
from __future__ import annotations

import builtins
import keyword
import math
import re
import textwrap
from dataclasses import dataclass, field

import numpy as np

from .scenario import expr
from .scenario.schema import OPTIMIZER_DEFAULTS, SCHEDULER_CLASSES, SCHEDULER_DEFAULTS, SchedulerSpec
from .trace import PHASES  # the phases the code panel lights, as the Session marks them

__all__ = ["WIDTH", "LINE_KINDS", "Line", "Script", "Writer", "ScenarioWriter", "py_number", "py_string",
           "tensor_literal", "comment_lines", "identifiers", "rename_names", "optimizer_args", "scheduler_text",
           "step_lines"]

WIDTH = 100                      # wrap embedded arrays at this many characters
_BUILTINS = frozenset(dir(builtins))


LINE_KINDS = ("script", "setup", "loop", "bookkeeping")


@dataclass(frozen=True)
class Line:
    """One line of the exported script, tagged with what it is.

    ``kind`` is one of LINE_KINDS: ``setup`` for the one-line definitions the loop calls
    (``loss_fn``, ``optimizer``, ``scaler``), ``loop`` for the training loop, ``bookkeeping`` for
    the loop's lines that only collect and print GradViz's CSV row (``row = record(...)``,
    ``if not log(row): break``), ``script`` for everything else (data, model, helpers).
    ``phases`` are the loop phases (``gradviz.trace.PHASES``) this line is the line of; forward and
    loss share one line for an objective. ``aside`` is a trailing comment on the CSV bookkeeping,
    kept apart from ``code`` so that a view of the training alone can leave it out; ``text`` is the
    line as the script has it.
    """
    code: str
    kind: str = "script"
    phases: tuple[str, ...] = ()
    aside: str = ""

    @property
    def text(self) -> str:
        return f"{self.code}  # {self.aside}" if self.aside else self.code


@dataclass
class Script:
    """A runnable PyTorch script and where each loop phase is in it.

    ``lines`` maps the phases the Session reports (``zero_grad``, ``forward``, ``loss``,
    ``backward``, ``step``, ``zero_grad_after``) to 1-based line numbers in ``source``; a phase the
    loop never runs (``zero_grad = "never"``) is absent. ``loop_start``/``loop_end`` are the
    1-based first and last lines of the training loop. ``listing`` is ``source`` line by line,
    each tagged (:class:`Line`), for views that show part of the script.
    """
    source: str
    lines: dict[str, int]
    loop_start: int
    loop_end: int
    variant: str = ""
    listing: tuple[Line, ...] = ()

    @classmethod
    def from_listing(cls, listing: tuple[Line, ...], variant: str = "") -> Script:
        lines: dict[str, int] = {}
        for number, line in enumerate(listing, 1):
            for phase in line.phases:
                lines.setdefault(phase, number)
        loop = [number for number, line in enumerate(listing, 1) if line.kind in ("loop", "bookkeeping")]
        return cls("\n".join(line.text for line in listing) + "\n", lines, loop[0], loop[-1], variant, listing)

    def loop_source(self) -> str:
        """Only the training loop (``for step in range(STEPS): ...``), as the code panel shows it."""
        return "\n".join(self.source.splitlines()[self.loop_start - 1:self.loop_end]) + "\n"

    @property
    def loop_lines(self) -> dict[str, int]:
        """``lines`` relative to :meth:`loop_source` (1-based)."""
        return {phase: line - self.loop_start + 1 for phase, line in self.lines.items()}


# -- formatting values -------------------------------------------------------------------------

def py_number(value) -> str:
    """Python source for one number that reads back bit for bit."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return repr(value)


def _items(array: np.ndarray) -> list[str]:
    """A 1-D array as number strings; a 2-D or deeper one as rows ``[a, b]`` of its last axis."""
    if array.ndim == 1:
        return [py_number(v) for v in array.tolist()]
    # one flat list of numbers, not a list per row: fewer objects for the garbage collector to walk
    # (the code panel writes 100,000-row programs in a thread while the window runs)
    flat, width = [py_number(v) for v in array.reshape(-1).tolist()], array.shape[-1]
    return ["[" + ", ".join(flat[i:i + width]) + "]" for i in range(0, len(flat), width)]


def tensor_literal(head: str, array: np.ndarray, tail: str, indent: str = "") -> list[str]:
    """``head + torch.tensor([...], tail) `` on one line when it fits, else wrapped lists:

        x = torch.tensor([
            0.1, 0.2, ...,
        ], dtype=DTYPE)
    """
    array = np.asarray(array)
    reshape = f".reshape{tuple(array.shape)}" if array.ndim > 2 else ""
    tail = f", {tail}" if tail else ""
    if array.ndim == 0:
        return [f"{indent}{head}torch.tensor({py_number(array.item())}{tail})"]
    if array.size == 0:
        return [f"{indent}{head}torch.zeros({tuple(array.shape)}{tail})"]
    items = _items(array)
    one_line = f"{indent}{head}torch.tensor([{', '.join(items)}]{tail}){reshape}"
    if len(one_line) <= WIDTH:
        return [one_line]
    body, current, inner = [], "", indent + "    "
    for item in items:
        piece = item + ","
        if current and len(inner) + len(current) + 1 + len(piece) > WIDTH:
            body.append(inner + current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    body.append(inner + current)
    return [f"{indent}{head}torch.tensor(["] + body + [f"{indent}]{tail}){reshape}"]


def py_string(text: str) -> str:
    """A Python string literal for ``text`` (double quotes when that is simple)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)


def comment_lines(text: str, prefix: str = "# ") -> list[str]:
    """User text as ``#`` lines: every line break and control character is neutralised."""
    out = []
    for line in str(text).splitlines() or [""]:
        clean = "".join(c if c.isprintable() else " " for c in line).rstrip()
        wrapped = textwrap.wrap(clean, WIDTH - len(prefix)) or [""]
        out.extend((prefix + part).rstrip() for part in wrapped)
    return out


def identifiers(names: list[str], taken: set[str], reserved: frozenset[str] = frozenset()) -> dict[str, str]:
    """A valid, unused Python identifier for each name (``w`` stays ``w``; ``loss`` becomes ``loss_``
    when the script uses ``loss``, i.e. it is ``reserved``, or a builtin's name)."""
    out = {}
    for name in names:
        ident = re.sub(r"\W", "_", name, flags=re.ASCII) or "_"
        if ident[0].isdigit():
            ident = "p_" + ident
        while ident in taken or ident in reserved or ident in _BUILTINS or keyword.iskeyword(ident):
            ident += "_"
        taken.add(ident)
        out[name] = ident
    return out


def _constant(tree: expr.Expr) -> str:
    """Python source for an expression of plain numbers: its value, computed the way GradViz does."""
    try:
        with np.errstate(all="raise"):
            value = float(expr.evaluate(tree, {}))
        if math.isfinite(value):
            return repr(value)
    except (ArithmeticError, TypeError, ValueError):
        pass
    return f"float({expr.to_python(tree)})"        # let Python raise the same error at run time


def rename_names(tree: expr.Expr, mapping: dict[str, str]) -> expr.Expr:
    """The same AST with names replaced by Python text (``x`` -> ``x[idx]``; an atom either way).

    A function of plain numbers (``exp(1)``) gets its argument as ``torch.tensor(1.0)``: torch's
    functions take only tensors, and GradViz makes the same float32 tensor of a number.
    """
    built: list[tuple[expr.Expr, bool]] = []          # (node, is a plain Python number)
    for node in expr._postorder(tree):                # the parser's own explicit-stack walk
        if isinstance(node, expr.Name):
            built.append((expr.Name(mapping.get(node.id, node.id)), False))
        elif isinstance(node, expr.Num):
            built.append((node, True))
        elif isinstance(node, expr.UnaryOp):
            operand, number = built.pop()
            built.append((expr.UnaryOp(node.op, operand), number))
        elif isinstance(node, expr.Call):
            arg, number = built.pop()
            if number:
                arg = expr.Name(f"torch.tensor({_constant(arg)})")
            built.append((expr.Call(node.func, arg), False))
        else:
            (right, right_number), (left, left_number) = built.pop(), built.pop()
            built.append((expr.BinOp(node.op, left, right), left_number and right_number))
    return built.pop()[0]


def optimizer_args(kind: str, hyper: dict) -> str:
    """``lr=0.1, momentum=0.9``: lr always, then every hyperparameter that is not PyTorch's default."""
    defaults = OPTIMIZER_DEFAULTS[kind]
    parts = []
    for key, value in hyper.items():
        if key not in defaults:          # the Session has refused these already; never write them
            continue
        if isinstance(value, (list, tuple)):
            value = tuple(float(v) for v in value)
        default = defaults.get(key)
        if key != "lr" and value == (tuple(default) if isinstance(default, (list, tuple)) else default):
            continue
        if isinstance(value, tuple):
            text = "(" + ", ".join(py_number(v) for v in value) + ")"
        elif isinstance(value, bool):
            text = str(value)
        else:
            text = py_number(float(value) if isinstance(default, float) else value)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _value(value) -> str:
    """Python source for a hyperparameter: a number, a bool, a string or a list of numbers."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return py_string(value)
    return py_number(value)


def scheduler_text(spec: SchedulerSpec, steps) -> str:
    """``torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)``: the arguments torch requires and
    every one that is not its default (OneCycleLR's ``total_steps`` left out is the loop's ``steps``,
    a number or the name of a constant)."""
    parts = ["optimizer"]
    for key, default in SCHEDULER_DEFAULTS[spec.kind].items():
        value = spec.hyper.get(key, default)
        if key == "total_steps" and value is None:
            parts.append(f"total_steps={steps}")
        elif value is not None and (default is None or value != default):
            parts.append(f"{key}={_value(value)}")
    return f"torch.optim.lr_scheduler.{SCHEDULER_CLASSES[spec.kind]}({', '.join(parts)})"


def step_lines(loop, params: str, *, scaler: bool, scaler_note: str) -> list[tuple[str, tuple[str, ...], str]]:
    """The lines from the last ``backward()`` to the end of the optimizer step, in the order of
    docs/contracts.md: (code, phases, kind), indented for the loop body. ``scaler_note``: why the
    exporter unscales when the program would not need to (empty: the program)."""
    lines: list[tuple[str, tuple[str, ...], str]] = []
    clip = loop.clip_grad_norm
    unscale_first = scaler and (bool(loop.unscale_before_clip) or clip is None)
    if unscale_first and (clip is not None or scaler_note):
        note = "  # the true gradients, before clipping them" if clip is not None else scaler_note
        lines.append(("    scaler.unscale_(optimizer)" + note, (), "loop"))
    if clip is not None:
        if scaler and not unscale_first:
            lines.append(("    # no scaler.unscale_(optimizer) first: these grads are still multiplied by the scale, "
                          "so the limit is meaningless", (), "loop"))
        lines.append((f"    total_norm = torch.nn.utils.clip_grad_norm_({params}, max_norm={py_number(float(clip))})",
                      (), "loop"))
        if scaler and not unscale_first and scaler_note:
            lines.append(("    scaler.unscale_(optimizer)  # what scaler.step() would do first; "
                          "the grads step() sees", (), "bookkeeping"))
    if loop.scheduler is not None and loop.scheduler.placement == "before_step":
        lines.append(("    scheduler.step()  # before optimizer.step(): the mistake torch warns about", (), "loop"))
    return lines


# -- the script --------------------------------------------------------------------------------

@dataclass
class Writer:
    lines: list[Line] = field(default_factory=list)

    def add(self, *texts: str, kind: str = "script") -> None:
        self.lines.extend(Line(text, kind) for text in texts)

    def loop(self, code: str, *, phases: tuple[str, ...] = (), kind: str = "loop", aside: str = "") -> None:
        """One line of the training loop, the line of ``phases``."""
        assert set(phases) <= set(PHASES), phases
        self.lines.append(Line(code, kind, phases, aside))

    def blank(self) -> None:
        if self.lines and self.lines[-1].code != "":
            self.lines.append(Line(""))


class ScenarioWriter:
    """What both writers (the CSV exporter and the clean program) read off one variant's run:
    the Session's own data and initial values (``training.build``), the loop and its precision;
    and the header they both start with (title, description, then ``intro``)."""

    def __init__(self, setup, model):
        self.scenario = scenario = setup.scenario
        self.variant_index = setup.variant_index
        self.v = setup.variant_spec
        self.loop = loop = self.v.loop
        self.kind = scenario.model.kind
        self.accumulation_steps = int(loop.accumulation_steps)
        self.float16 = loop.precision == "float16"
        self.autocast = loop.precision if loop.precision in ("float16", "bfloat16") else None
        self.scaler = self.float16 and bool(loop.loss_scaling)
        # The Session's own data (converted to the run's dtype) and initial parameter values.
        self.data = setup.data
        self.initial = {name: p._data for name, p in zip(model.names, model.params)}
        self.n = self.data.n
        self.batch_size = self.n if loop.batch_size is None else int(loop.batch_size)
        self.w = Writer()

    def name_variables(self, names: list[str], taken: set[str], reserved: frozenset[str] = frozenset(), *,
                       layer_params: dict[str, str]) -> None:
        """Python names for the parameters, the inputs and the target (``identifiers``); a layers
        model's are ``layer_params`` (they live in the model) and its input is ``x``."""
        if self.kind == "layers":
            self.param_vars, self.input_vars = layer_params, {"x": "x"}
            taken.add("x")
        else:
            self.param_vars = identifiers(names, taken, reserved)
            self.input_vars = identifiers(list(self.data.inputs), taken, reserved)
        self.target_var = identifiers(["y"], taken, reserved)["y"] if self.kind != "objective" else ""

    def title_lines(self, intro: str) -> None:
        """The title, the description, then ``intro``. The scenario's description is about its
        main run ("lands on w = 1.8"): a comparison's script says whose run it is instead."""
        s, w = self.scenario, self.w
        w.add(*comment_lines(s.title or "GradViz scenario"))
        if self.variant_index > 0:
            main = s.variants()[0].name
            w.add("#")
            w.add(*comment_lines(f"This is the comparison run {self.v.name}. The scenario's description "
                                 f"is about its main run ({main}) and is not repeated here."))
        elif s.description.strip():
            w.add("#")
            w.add(*comment_lines(s.description.strip()))
        w.add("#")
        w.add(*comment_lines(intro))
