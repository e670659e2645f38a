"""Read a scenario file (TOML) into a ``Scenario``, or raise one clear ``ScenarioError``.

Everything a hand-written file can get wrong is checked here, before anything runs: unknown keys
(with a "did you mean"), types, enums, ranges, the expression (through the safe parser in
``expr.py``), names, shapes, the model/data/loss fit, and the limits in ``schema.LIMITS`` that keep
a file from freezing the app. The format is documented in ``docs/scenarios.md``.

Every error names the file, the dotted key path (``comparison[1].optimizer.lr``, comparisons
counted from 0), the line of that key when it can be found, what was expected and what was found::

    lesson.toml:14: [optimizer.lrr] expected one of kind, lr, momentum, ..., found unknown key 'lrr';
        did you mean 'lr'?            (one line, wrapped here)

The loader never evaluates anything and walks nested values only to a small fixed depth, so any
input, however hostile, is rejected quickly.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import keyword
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import datasets, expr
from .schema import (ACTIVATIONS, INITS, LIMITS, LOSSES, OPTIMIZER_DEFAULTS, OPTIMIZERS,
                     PRECISIONS, REDUCTIONS, SCALER_DEFAULTS, ZERO_GRAD_PLACEMENTS, DataSpec,
                     LossSpec, LoopSpec, ModelSpec, OptimizerSpec, ParamInit, Scenario, Variant)

MAX_PARAM_NDIM = 4
MAX_TITLE_LENGTH = 200
MAX_NAME_LENGTH = 64
FULL_BATCH = "full"            # ``batch_size = "full"``: the whole data set (the default)

# Ops a traced micro-batch adds besides the model: the loss (with its target leaf) and the
# division by accumulation_steps / multiplication by the loss scale. Rough, on the safe side.
_LOSS_NODES = {"mse": 4, "l1": 4, "bce_with_logits": 12, "cross_entropy": 8}
_NODES_PER_LINEAR = 7          # weight, bias, transpose, matmul, add (+ 2 float16 casts)
MAX_INTERMEDIATE = 10_000_000  # elements of any array an expression computes for one micro-batch


# Column names of a History (and of the exported script's CSV): a parameter must not shadow them.
RESERVED_NAMES = ("step", "loss", "grad_scale", "skipped", "torch", "np", "math")

class ScenarioError(ValueError):
    """A scenario that cannot be loaded (or saved).

    Attributes: ``file``, ``key`` (the dotted key path, or None), ``line`` (1-based, or None),
    ``expected``, ``found``, and for expressions the ``column``. ``str()`` is one line:
    ``"<file>:<line>: [<key>] expected <expected>, found <found>"`` (no line or key when unknown).
    """

    def __init__(self, file: str = "<string>", key: str | None = None, line: int | None = None,
                 expected: str = "", found: str = "", column: int | None = None):
        self.file, self.key, self.line, self.column = str(file), key or None, line, column
        self.expected, self.found = _one_line(expected), _one_line(found)
        where = f"{_one_line(self.file)}:{line}" if line else _one_line(self.file)
        key_part = f" [{self.key}]" if self.key else ""
        super().__init__(f"{where}:{key_part} expected {self.expected}, found {self.found}")

    def __reduce__(self):          # picklable (e.g. across a worker process)
        return type(self), (self.file, self.key, self.line, self.expected, self.found, self.column)


def _error(expected: str, found: str, *, file: str, key: str | None = None, line: int | None = None,
           column: int | None = None) -> ScenarioError:
    return ScenarioError(file, key, line, expected, found, column)


def _one_line(text: str, limit: int = 300) -> str:
    text = str(text).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --- describing values ----------------------------------------------------------------------

def _type_name(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _show(value) -> str:
    """``'0.1' (a string)``, ``true (a boolean)``, ``a table``: what was found, briefly."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "[...]" if len(value) > 8 else repr(value)
    else:
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(value)})"


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean {close[0]!r}?" if close else ""


def _dotted(path: tuple) -> str:
    """``comparison[1].optimizer.lr``; keys that are not bare TOML keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = part if len(part) <= 40 else part[:37] + "..."
            if not re.fullmatch(r"[A-Za-z0-9_-]+", part):
                part = json.dumps(part)
            out += ("." if out else "") + part
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- finding the line of a key --------------------------------------------------------------

_KEYPART = r'''(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')'''
_KEY = rf"{_KEYPART}(?:[ \t]*\.[ \t]*{_KEYPART})*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_KEY})[ \t]*\]")
_ASSIGN = re.compile(rf"[ \t]*({_KEY})[ \t]*=")
_PART = re.compile(_KEYPART)
_SPECIAL = re.compile(r"[\"'{}#]")


def _split_key(key: str) -> tuple[str, ...]:
    parts = []
    for part in _PART.findall(key):
        parts.append(part[1:-1] if part[:1] in "\"'" else part)
    return tuple(parts)


class _KeyLines:
    """Where each key path is defined in the source: a line scanner, not a parser.

    It follows table headers (``[a.b]``, ``[[comparison]]`` with its running index), ``key =``
    assignments (dotted keys too) and the keys of inline tables, and skips strings, comments and
    continuation lines of multi-line arrays and strings. Good enough to point at a line; when a
    path is not found, the line of its closest enclosing key is used.
    """

    def __init__(self, text: str):
        self.index: dict[tuple, int] = {}
        aot: dict[tuple, int] = {}            # array-of-tables path -> current index
        current: tuple = ()
        depth = 0                             # open '[' / '{' of a value continuing on later lines
        in_string = None                      # the delimiter of an open multi-line string
        for lineno, line in enumerate(text.splitlines()[:200_000], 1):
            if len(line) > 10_000:
                line = line[:10_000]
            if in_string:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if depth > 0:
                depth, in_string = self._scan_value(line, 0, (), lineno, depth)
                continue
            header = _HEADER.match(line)
            if header:
                parts = _split_key(header.group(2))
                resolved: tuple = ()
                for i, part in enumerate(parts):
                    resolved += (part,)
                    if parts[:i + 1] in aot and not (header.group(1) == "[[" and i == len(parts) - 1):
                        resolved += (aot[parts[:i + 1]],)
                if header.group(1) == "[[":
                    aot[parts] = aot.get(parts, -1) + 1
                    resolved += (aot[parts],)
                current = resolved
                self._record(current, lineno)
                continue
            match = _ASSIGN.match(line)
            if match:
                key = current + _split_key(match.group(1))
                self._record(key, lineno)
                depth, in_string = self._scan_value(line, match.end(), key, lineno, 0)

    def _scan_value(self, line: str, pos: int, key: tuple, lineno: int, depth: int):
        """Record the keys of inline tables in ``line[pos:]``; return (open brackets, open string)."""
        if not _SPECIAL.search(line, pos):      # plain numbers and brackets (rows of data): fast
            return max(depth + line.count("[", pos) - line.count("]", pos), 0), None
        stack, last, expect_key = [key], key, False
        while pos < len(line):
            char = line[pos]
            if char in "\"'":
                triple = line[pos:pos + 3]
                if triple in ('"""', "'''"):
                    end = line.find(triple, pos + 3)
                    if end < 0:
                        return depth, triple
                    pos = end + 3
                    continue
                pos = self._skip_string(line, pos)
                continue
            if char == "#":
                break
            if char in "[{":
                depth += 1
                if char == "{":
                    stack.append(last)
                    expect_key = True
            elif char in "]}":
                depth = max(depth - 1, 0)
                if char == "}" and len(stack) > 1:
                    stack.pop()
            elif char == ",":
                expect_key = len(stack) > 1
            elif expect_key and not char.isspace():
                expect_key = False
                match = _ASSIGN.match(line, pos)
                if match and key:
                    last = stack[-1] + _split_key(match.group(1))
                    self._record(last, lineno)
                    pos = match.end()
                    continue
            pos += 1
        return depth, None

    def _record(self, key: tuple, lineno: int) -> None:
        for k in range(1, len(key) + 1):       # a.b.c = 1 also defines a and a.b here
            self.index.setdefault(key[:k], lineno)

    @staticmethod
    def _skip_string(line: str, pos: int) -> int:
        quote, pos = line[pos], pos + 1
        while pos < len(line) and line[pos] != quote:
            pos += 2 if quote == '"' and line[pos] == "\\" else 1
        return pos + 1

    def find(self, path: tuple) -> int | None:
        for k in range(len(path), 0, -1):
            line = self.index.get(tuple(path[:k]))
            if line is not None:
                return line
        return None


# --- the reading context: typed accessors that fail with the key path ------------------------

class _Reader:
    def __init__(self, file: str, text: str):
        self.file, self.text = file, text
        self._lines: _KeyLines | None = None

    def line(self, path: tuple) -> int | None:
        if self._lines is None:
            self._lines = _KeyLines(self.text)
        return self._lines.find(path)

    def fail(self, path: tuple, expected: str, found: str, column: int | None = None) -> NoReturn:
        raise _error(expected, found, file=self.file, key=_dotted(path) or None,
                            line=self.line(path), column=column)

    def check_keys(self, table: dict, path: tuple, allowed, hints: dict | None = None) -> None:
        for key in table:
            if key not in allowed:
                hint = (hints or {}).get(key) or _suggest(key, allowed)
                shown = key if len(key) <= 40 else key[:37] + "..."
                self.fail(path + (key,), f"one of {', '.join(allowed)}",
                          f"unknown key {shown!r}{hint}")

    def table(self, parent: dict, key: str, path: tuple, *, required: bool = False) -> dict | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path + (key,), f"a [{_dotted(path + (key,))}] table", "none")
            return None
        if not isinstance(value, dict):
            self.fail(path + (key,), "a table", _show(value))
        return value

    def string(self, table: dict, key: str, path: tuple, default: str | None = None, *,
               nonempty: bool = False, max_length: int | None = None) -> str:
        if key not in table:
            if default is None:
                self.fail(path + (key,), f"a string for {key!r}", "none (it is required)")
            return default
        value = table[key]
        if not isinstance(value, str):
            self.fail(path + (key,), "a string", _show(value))
        if nonempty and not value.strip():
            self.fail(path + (key,), "a non-empty string", "an empty string")
        if max_length is not None and len(value) > max_length:
            self.fail(path + (key,), f"at most {max_length} characters", f"{len(value)} characters")
        return value

    def choice(self, table: dict, key: str, path: tuple, default: str | None, choices) -> str:
        if key not in table and default is not None:
            return default
        value = table.get(key)
        expected = "one of " + ", ".join(repr(c) for c in choices)
        if not isinstance(value, str):
            self.fail(path + (key,), expected, f"no {key!r}" if key not in table else _show(value))
        if value not in choices:
            self.fail(path + (key,), expected, f"{_show(value)}{_suggest(value, choices)}")
        return value

    def boolean(self, table: dict, key: str, path: tuple, default: bool) -> bool:
        if key not in table:
            return default
        return self.boolean_value(table[key], path + (key,))

    def boolean_value(self, value, path: tuple) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "true or false", _show(value))
        return value

    def integer(self, table: dict, key: str, path: tuple, default: int | None, lo: int, hi: int) -> int:
        if key not in table:
            if default is None:
                self.fail(path + (key,), f"an integer for {key!r}", "none (it is required)")
            return default
        return self.integer_value(table[key], path + (key,), lo, hi)

    def integer_value(self, value, path: tuple, lo: int, hi: int) -> int:
        expected = f"an integer from {lo} to {hi}" if hi < 2 ** 62 else f"an integer >= {lo}"
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path, expected, _show(value))
        if not lo <= value <= hi:
            self.fail(path, expected, _show(value))
        return value

    def number(self, table: dict, key: str, path: tuple, default: float | None, **bounds) -> float:
        if key not in table:
            if default is None:
                self.fail(path + (key,), f"a number for {key!r}", "none (it is required)")
            return default
        return self.number_value(table[key], path + (key,), **bounds)

    def number_value(self, value, path: tuple, *, gt=None, ge=None, lt=None, le=None) -> float:
        """A finite number (an integer is accepted and becomes a float) within the bounds."""
        parts = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
                 f"< {lt:g}" if lt is not None else "", f"<= {le:g}" if le is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        expected = "a finite number" + (f" {bounds}" if bounds else "")
        if not _is_number(value):
            self.fail(path, expected, _show(value))
        number = float(value)
        if (not math.isfinite(number) or (gt is not None and not number > gt)
                or (ge is not None and not number >= ge) or (lt is not None and not number < lt)
                or (le is not None and not number <= le)):
            self.fail(path, expected, _show(value))
        return number

    def name(self, value, path: tuple, what: str) -> str:
        """A name usable in an expression: letters, digits and '_', not a keyword or function."""
        expected = (f"{what}: a letter followed by letters, digits or '_' (at most "
                    f"{MAX_NAME_LENGTH} characters), not a Python keyword, one of the functions, or a "
                    f"History column ({', '.join(RESERVED_NAMES)})")
        if not isinstance(value, str):
            self.fail(path, expected, _show(value))
        if (not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value) or len(value) > MAX_NAME_LENGTH
                or keyword.iskeyword(value) or value in expr.FUNCTIONS or value in RESERVED_NAMES):
            self.fail(path, expected, _show(value))
        return value

    def array(self, value, path: tuple, *, max_ndim: int, max_elements: int, integers: bool = False):
        """A number or rectangular nested arrays of finite numbers -> (nested lists, shape).

        Floats for ``integers=False`` (integers are converted); TOML integers only otherwise.
        """
        kind = "integers" if integers else "finite numbers"
        if not isinstance(value, list):
            if integers and isinstance(value, int) and not isinstance(value, bool):
                return value, ()
            if not integers and _is_number(value) and math.isfinite(value):
                return float(value), ()
            self.fail(path, f"a number or an array of {kind}", _show(value))
        shape, probe = [], value
        while isinstance(probe, list):
            if not probe:
                self.fail(path, "a non-empty array", "an empty array")
            shape.append(len(probe))
            if len(shape) > max_ndim:
                self.fail(path, f"an array nested at most {max_ndim} deep", "deeper nesting")
            probe = probe[0]
        count = math.prod(shape)
        if count > max_elements:
            self.fail(path, f"at most {max_elements} elements",
                      f"{count} elements (shape {tuple(shape)})")

        def valid(leaf) -> bool:
            if integers:
                return isinstance(leaf, int) and not isinstance(leaf, bool)
            return _is_number(leaf) and math.isfinite(leaf)

        def convert(node, level: int, where: str):
            if (level == len(shape) - 1 and isinstance(node, list) and len(node) == shape[level]
                    and all(map(valid, node))):            # the common case, without bookkeeping
                return list(node) if integers else [float(v) for v in node]
            if level == len(shape):
                if not valid(node):
                    self.fail(path, f"an array of {kind} of shape {tuple(shape)}",
                              f"{_show(node)} at {where or 'the top'}")
                return node if integers else float(node)
            if not isinstance(node, list) or len(node) != shape[level]:
                length = f"an array of length {len(node)}" if isinstance(node, list) else _show(node)
                self.fail(path, f"a rectangular array of shape {tuple(shape)} (length "
                                f"{shape[level]} at {where or 'the top'})", length)
            return [convert(item, level + 1, f"{where}[{i}]") for i, item in enumerate(node)]

        return convert(value, 0, ""), tuple(shape)


# --- sections -------------------------------------------------------------------------------

def _read_meta(r: _Reader, doc: dict) -> tuple[str, str, int]:
    meta = r.table(doc, "scenario", (), required=True)
    path = ("scenario",)
    r.check_keys(meta, path, ("title", "description", "seed"))
    title = r.string(meta, "title", path, nonempty=True, max_length=MAX_TITLE_LENGTH)
    description = r.string(meta, "description", path, "", max_length=20_000)
    seed = r.integer(meta, "seed", path, 0, 0, 2 ** 63 - 1)
    return title, description, seed


def _read_param(r: _Reader, value, path: tuple) -> ParamInit:
    limit = LIMITS["max_param_elements"]
    if not isinstance(value, dict):
        nested, shape = r.array(value, path, max_ndim=MAX_PARAM_NDIM, max_elements=limit)
        return ParamInit("value", nested, shape)
    init = r.choice(value, "init", path, "value" if "value" in value else None, INITS)
    allowed = {"value": ("init", "value"), "zeros": ("init", "shape"), "ones": ("init", "shape"),
               "normal": ("init", "shape", "std"), "uniform": ("init", "shape", "low", "high")}[init]
    r.check_keys(value, path, allowed)
    if init == "value":
        if "value" not in value:
            r.fail(path + ("value",), "a number or an array for 'value'", "none (it is required)")
        nested, shape = r.array(value["value"], path + ("value",), max_ndim=MAX_PARAM_NDIM,
                                max_elements=limit)
        return ParamInit("value", nested, shape)
    shape: tuple = ()
    if "shape" in value:
        raw = value["shape"]
        expected = f"a list of at most {MAX_PARAM_NDIM} positive integers, e.g. [3] or [2, 4]"
        if not isinstance(raw, list) or len(raw) > MAX_PARAM_NDIM:
            r.fail(path + ("shape",), expected, _show(raw))
        shape = tuple(r.integer_value(v, path + ("shape",), 1, limit) for v in raw)
        if math.prod(shape) > limit:
            r.fail(path + ("shape",), f"at most {limit} elements", f"{math.prod(shape)} elements")
    spec = ParamInit(init, shape=shape)
    if init == "normal":
        spec.std = r.number(value, "std", path, 1.0, ge=0)
    if init == "uniform":
        spec.low = r.number(value, "low", path, -1.0)
        spec.high = r.number(value, "high", path, 1.0)
        if not spec.low < spec.high:
            r.fail(path + ("high",), f"high > low ({spec.low:g})", _show(spec.high))
    return spec


def _read_model(r: _Reader, doc: dict):
    """-> (ModelSpec, the parsed expression or None for layers)."""
    table = r.table(doc, "model", (), required=True)
    path = ("model",)
    r.check_keys(table, path, ("expression", "objective", "layers", "activation", "parameters"))
    given = [k for k in ("expression", "objective", "layers") if k in table]
    if len(given) != 1:
        found = "none of them" if not given else " and ".join(repr(k) for k in given)
        r.fail(path + tuple(given[1:2]), "exactly one of 'expression', 'objective' or 'layers'", found)
    kind = given[0]
    if kind == "layers":
        if "parameters" in table:
            r.fail(path + ("parameters",), "no [model.parameters] for a layers model (its "
                   "parameters are initialised from the seed, as nn.Linear does)", "a parameters table")
        layers = table["layers"]
        lo, hi = 2, LIMITS["max_layers"]
        if not isinstance(layers, list) or not lo <= len(layers) <= hi:
            r.fail(path + ("layers",), f"a list of {lo} to {hi} layer sizes, e.g. [2, 16, 1]", _show(layers))
        sizes = [r.integer_value(v, path + ("layers",), 1, LIMITS["max_layer_width"]) for v in layers]
        activation = r.choice(table, "activation", path, "tanh", ACTIVATIONS)
        return ModelSpec("layers", "", {}, sizes, activation), None
    if "activation" in table:
        r.fail(path + ("activation",), f"no 'activation' for an {kind} model (write the function "
               f"into the {kind}, e.g. tanh(...))", _show(table["activation"]))
    text = table[kind]
    if not isinstance(text, str):
        r.fail(path + (kind,), "an expression string", _show(text))
    try:
        tree = expr.parse(text)
    except expr.ExprError as error:
        column = f" at column {error.column}" if error.column else ""
        r.fail(path + (kind,), "an arithmetic expression in the safe grammar (see docs/scenarios.md)",
               f"a problem{column}: {error.message}", error.column)
    params_table = r.table(table, "parameters", path)
    if not params_table:
        r.fail(path + ("parameters",), "a [model.parameters] table giving each parameter of the "
               f"{kind} a value, e.g. w = 1.0", "none")
    parameters: dict[str, ParamInit] = {}
    total = 0
    for name, value in params_table.items():
        where = path + ("parameters", name)
        r.name(name, where, "a parameter name")
        spec = _read_param(r, value, where)
        total += math.prod(spec.shape)
        if total > LIMITS["max_param_elements"]:
            r.fail(where, f"at most {LIMITS['max_param_elements']} parameter elements in all",
                   f"{total} so far")
        parameters[name] = spec
    return ModelSpec(kind, text, parameters), tree


def _generator_options(kind: str) -> dict[str, Any]:
    """Keyword options of a data set generator with their defaults (from its signature)."""
    generator = datasets._GENERATORS[kind]
    return {p.name: p.default for p in inspect.signature(generator).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _read_data(r: _Reader, doc: dict, model: ModelSpec):
    """-> (DataSpec, info): info holds what the loss check needs to know about the targets:
    n, d (features), integers (class indices), binary (all 0/1), y_flat, y_width, classes, y_min."""
    path = ("data",)
    if model.kind == "objective":
        if "data" in doc:
            r.fail(path, "no [data] for an objective (it depends on the parameters alone; use "
                   "'expression' for a model fitted to data)", "a [data] table")
        return DataSpec(kind="none"), dict(n=0, d=0)
    table = r.table(doc, "data", (), required=True)
    kind = r.choice(table, "kind", path, "inline", ("inline",) + datasets.DATASETS)
    if kind == "inline":
        r.check_keys(table, path, ("kind", "x", "y", "inputs"))
        spec, info = _read_inline(r, table, path)
    else:
        options = _generator_options(kind)
        r.check_keys(table, path, ("kind", "n", "noise", "inputs") + tuple(options))
        n = r.integer(table, "n", path, 100, 1, LIMITS["max_points"])
        noise = r.number(table, "noise", path, 0.1, ge=0)
        values = {}
        for option, default in options.items():
            if option not in table:
                values[option] = default
            elif isinstance(default, int):
                values[option] = r.integer(table, option, path, None, 1, LIMITS["max_layer_width"])
            else:
                values[option] = r.number(table, option, path, None)
        try:
            datasets.make_dataset(kind, min(n, 8), noise, 0, **values)
        except ValueError as error:
            bad = next((o for o in options if o in str(error) and o in table), "kind")
            r.fail(path + (bad,), f"valid options for {kind!r}", str(error))
        spec = DataSpec(kind=kind, n=n, noise=noise, options=values)
        info = dict(n=n, d=1 if kind == "linear" else 2, integers=kind == "blobs",
                    binary=kind not in ("linear", "blobs"), y_flat=kind == "blobs",
                    y_width=1, classes=values.get("centers"), y_min=0)
    d = info["d"]
    default_names = ["x"] if d == 1 else [f"x{i + 1}" for i in range(d)]
    if "inputs" in table:
        raw = table["inputs"]
        if not isinstance(raw, list) or len(raw) != d:
            r.fail(path + ("inputs",), f"a list of {d} input name(s), one per feature", _show(raw))
        names = [r.name(v, path + ("inputs",), "an input name") for v in raw]
        if len(set(names)) != len(names):
            r.fail(path + ("inputs",), "distinct input names", _show(raw))
        spec.input_names = names
    else:
        spec.input_names = default_names
    return spec, info


def _read_inline(r: _Reader, table: dict, path: tuple):
    for key in ("x", "y"):
        if key not in table:
            r.fail(path + (key,), f"inline data arrays 'x' and 'y' (or kind = one of "
                   f"{', '.join(datasets.DATASETS)})", f"no {key!r}")
    max_points, max_features = LIMITS["max_points"], LIMITS["max_features"]
    x_raw = table["x"]
    if not isinstance(x_raw, list):
        r.fail(path + ("x",), "an array of numbers (one feature) or of rows (several features)", _show(x_raw))
    if len(x_raw) > max_points:
        r.fail(path + ("x",), f"at most {max_points} points", f"{len(x_raw)} points")
    x, x_shape = r.array(x_raw, path + ("x",), max_ndim=2, max_elements=max_points * max_features)
    n, d = x_shape[0], (x_shape[1] if len(x_shape) == 2 else 1)
    if d > max_features:
        r.fail(path + ("x",), f"at most {max_features} features per point", f"{d} features")
    y_raw = table["y"]
    if not isinstance(y_raw, list):
        r.fail(path + ("y",), f"an array of {n} targets", _show(y_raw))
    integers = bool(y_raw) and all(isinstance(v, int) and not isinstance(v, bool) for v in y_raw)
    y, y_shape = r.array(y_raw, path + ("y",), max_ndim=2, max_elements=max_points * max_features,
                         integers=integers)
    if y_shape[0] != n:
        r.fail(path + ("y",), f"as many targets as points in x ({n})", f"{y_shape[0]}")
    flat = y if len(y_shape) == 1 else [v for row in y for v in row]
    info = dict(n=n, d=d, integers=integers, binary=all(v in (0, 1) for v in flat),
                y_flat=len(y_shape) == 1, y_width=y_shape[1] if len(y_shape) == 2 else 1,
                classes=(max(flat) + 1) if integers else None, y_min=min(flat))
    return DataSpec(kind="inline", x=x, y=y), info


def _check_names(r: _Reader, model: ModelSpec, tree, data: DataSpec) -> None:
    inputs = data.input_names
    for name in model.parameters:
        if name in inputs:
            r.fail(("model", "parameters", name), f"a parameter name different from the input "
                   f"names ({', '.join(inputs)}; rename them with [data] inputs = [...])",
                   f"{name!r}, which is also an input")
    declared = list(model.parameters) + list(inputs)
    used = expr.names(tree)
    for name in used:
        if name not in declared:
            match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", model.expression)
            column = match.start() + 1 if match else None
            where = f" at column {column}" if column else ""
            expected = (f"a parameter declared in [model.parameters] "
                        f"({', '.join(model.parameters) or 'none'})")
            if model.kind == "expression":
                expected += f" or an input ({', '.join(inputs)})"
            r.fail(("model", model.kind), expected,
                   f"unknown name {name!r}{where}{_suggest(name, declared)}", column)
    if not set(used) & set(model.parameters):
        r.fail(("model", model.kind), f"an {model.kind} that uses at least one parameter "
               f"({', '.join(model.parameters)}), or there is nothing to train", repr(model.expression))


def _read_loss(r: _Reader, doc: dict, model: ModelSpec, data: DataSpec, info: dict) -> LossSpec:
    path = ("loss",)
    if model.kind == "objective":
        if "loss" in doc:
            r.fail(path, "no [loss] for an objective (the objective itself is minimised)", "a [loss] table")
        return LossSpec()
    table = r.table(doc, "loss", ()) or {}
    r.check_keys(table, path, ("kind", "reduction"))
    loss = LossSpec(r.choice(table, "kind", path, "mse", LOSSES),
                    r.choice(table, "reduction", path, "mean", REDUCTIONS))
    kind_path = path + ("kind",)
    generated = data.kind != "inline"
    where_y = ("data", "kind") if generated else ("data", "y")
    found_y = f"kind = {data.kind!r}" if generated else "y = " + _show(data.y)
    if loss.kind == "cross_entropy":
        if model.kind != "layers":
            r.fail(kind_path, "a loss for one output per example (mse, l1, bce_with_logits): "
                   "cross_entropy needs a layers model with one output per class", "'cross_entropy'")
        last = model.layers[-1]
        if last < 2:
            r.fail(("model", "layers"), "at least 2 outputs (one per class) for cross_entropy",
                   f"a last size of {last}")
        if not (info["integers"] and info["y_flat"]):
            r.fail(where_y, "integer class indices for cross_entropy (inline y = [0, 2, 1, ...] "
                   "or kind = 'blobs')", found_y)
        if info["classes"] > last or info["y_min"] < 0:
            bad = info["y_min"] if info["y_min"] < 0 else info["classes"] - 1
            r.fail(where_y, f"class indices from 0 to {last - 1} (the model has {last} outputs)",
                   f"class {bad}")
        return loss
    if generated and info["integers"]:
        r.fail(kind_path, "'cross_entropy' (kind = 'blobs' gives integer class indices)", repr(loss.kind))
    if loss.kind == "bce_with_logits" and not info["binary"]:
        r.fail(where_y, "labels 0 or 1 for bce_with_logits (inline, or a two-class data set: "
               "xor, moons, circles, spirals)", found_y)
    if model.kind == "layers":
        if model.layers[-1] != info["y_width"]:
            r.fail(("model", "layers"), f"a last size equal to the number of targets per example "
                   f"({info['y_width']}) for {loss.kind}", f"{model.layers[-1]}")
    elif info["y_width"] != 1:
        r.fail(where_y, "one target per example (a flat array) for an expression model", found_y)
    if not generated and info["integers"]:        # class indices only for cross_entropy
        data.y = [float(v) for v in data.y]
    return loss


_HYPER_BOUNDS = {
    "lr": dict(gt=0), "momentum": dict(ge=0), "dampening": dict(ge=0, le=1),
    "weight_decay": dict(ge=0), "eps": dict(ge=0), "alpha": dict(ge=0, le=1),
    "lr_decay": dict(ge=0), "initial_accumulator_value": dict(ge=0),
}


def _read_optimizer(r: _Reader, table: dict | None, path: tuple, base: OptimizerSpec | None) -> OptimizerSpec:
    """Complete hyperparameters: the given keys, then ``base``'s (same kind) or the defaults."""
    table = table or {}
    kind = r.choice(table, "kind", path, base.kind if base else "sgd", OPTIMIZERS)
    defaults = OPTIMIZER_DEFAULTS[kind]
    hints = {}
    for key in table:
        owners = [k for k in OPTIMIZERS if key in OPTIMIZER_DEFAULTS[k] and key not in defaults]
        if owners:
            hints[key] = f" ({key} is a hyperparameter of {', '.join(owners)}, not of {kind})"
    r.check_keys(table, path, ("kind",) + tuple(defaults), hints)
    hyper = dict(base.hyper) if base is not None and base.kind == kind else dict(defaults)
    for key, default in defaults.items():
        if key not in table:
            continue
        value, where = table[key], path + (key,)
        if isinstance(default, bool):
            hyper[key] = r.boolean_value(value, where)
        elif key == "betas":
            if not isinstance(value, list) or len(value) != 2:
                r.fail(where, "two numbers [beta1, beta2], each in [0, 1)", _show(value))
            hyper[key] = tuple(r.number_value(v, where, ge=0, lt=1) for v in value)
        else:
            hyper[key] = r.number_value(value, where, **_HYPER_BOUNDS[key])
    if kind == "sgd" and hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
        key = next((k for k in ("nesterov", "momentum", "dampening") if k in table), None)
        r.fail(path + ((key,) if key else ()), "momentum > 0 and dampening = 0 with nesterov = true "
               "(PyTorch's rule)", f"momentum = {hyper['momentum']:g}, dampening = {hyper['dampening']:g}")
    return OptimizerSpec(kind, hyper)


_LOOP_KEYS = ("steps", "batch_size", "shuffle", "accumulation_steps", "divide_loss", "zero_grad",
              "set_to_none", "precision", "loss_scaling", "scaler")


def _read_loop(r: _Reader, table: dict | None, path: tuple, base: LoopSpec | None) -> LoopSpec:
    """The given keys on top of ``base`` (the main loop, for comparisons) or the defaults."""
    table = table or {}
    r.check_keys(table, path, _LOOP_KEYS)
    loop = dataclasses.replace(base, scaler=dict(base.scaler)) if base is not None else LoopSpec()
    loop.steps = r.integer(table, "steps", path, loop.steps, 1, LIMITS["max_steps"])
    if "batch_size" in table:
        value = table["batch_size"]
        loop.batch_size = None if value == FULL_BATCH else r.integer_value(
            value, path + ("batch_size",), 1, LIMITS["max_points"])
    loop.shuffle = r.boolean(table, "shuffle", path, loop.shuffle)
    loop.accumulation_steps = r.integer(table, "accumulation_steps", path, loop.accumulation_steps,
                                        1, LIMITS["max_accumulation_steps"])
    loop.divide_loss = r.boolean(table, "divide_loss", path, loop.divide_loss)
    loop.zero_grad = r.choice(table, "zero_grad", path, loop.zero_grad, ZERO_GRAD_PLACEMENTS)
    loop.set_to_none = r.boolean(table, "set_to_none", path, loop.set_to_none)
    loop.precision = r.choice(table, "precision", path, loop.precision, PRECISIONS)
    loop.loss_scaling = r.boolean(table, "loss_scaling", path, loop.loss_scaling)
    if loop.loss_scaling and loop.precision != "float16":
        key = "loss_scaling" if "loss_scaling" in table else "precision"
        r.fail(path + (key,), "loss_scaling = true only with precision = 'float16' (a GradScaler "
               "is for float16)", f"precision = {loop.precision!r}")
    scaler = r.table(table, "scaler", path)
    if scaler is not None:
        where = path + ("scaler",)
        if not loop.loss_scaling:
            r.fail(where, "a scaler only with loss_scaling = true", "loss_scaling = false")
        r.check_keys(scaler, where, tuple(SCALER_DEFAULTS))
        loop.scaler["init_scale"] = r.number(scaler, "init_scale", where, loop.scaler["init_scale"], gt=0)
        loop.scaler["growth_factor"] = r.number(scaler, "growth_factor", where,
                                                loop.scaler["growth_factor"], gt=1)
        loop.scaler["backoff_factor"] = r.number(scaler, "backoff_factor", where,
                                                 loop.scaler["backoff_factor"], gt=0, lt=1)
        loop.scaler["growth_interval"] = r.integer(scaler, "growth_interval", where,
                                                   loop.scaler["growth_interval"], 1, 10 ** 9)
    return loop


def _check_loop(r: _Reader, loop: LoopSpec, table: dict | None, path: tuple, model: ModelSpec,
                n: int) -> None:
    table = table or {}
    where = (lambda *keys: path + next(((k,) for k in keys if k in table), ()))
    if model.kind == "objective":
        if loop.batch_size is not None or loop.shuffle:
            key = "batch_size" if loop.batch_size is not None else "shuffle"
            r.fail(where(key), f"no {key} for an objective (there is no data to batch)",
                   _show(getattr(loop, key)))
        return
    batch = loop.batch_size if loop.batch_size is not None else n
    if batch > n:
        r.fail(where("batch_size"), f"a batch_size of at most the number of points ({n})", f"{batch}")
    if batch % loop.accumulation_steps:
        r.fail(where("accumulation_steps", "batch_size"),
               f"accumulation_steps dividing the batch size ({batch}) into equal micro-batches",
               f"accumulation_steps = {loop.accumulation_steps}")


def _model_nodes(model: ModelSpec, tree) -> int:
    if model.kind == "layers":
        linears = len(model.layers) - 1
        return 1 + _NODES_PER_LINEAR * linears + (linears - 1)
    count, stack = 0, [tree]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(child for child in (getattr(node, "operand", None), getattr(node, "left", None),
                                         getattr(node, "right", None), getattr(node, "arg", None))
                     if child is not None)
    return count


def estimate_graph_nodes(scenario: Scenario, variant: int = 0) -> int:
    """Roughly how many nodes one traced iteration of ``variant`` records (the limit's measure)."""
    tree = None if scenario.model.kind == "layers" else expr.parse(scenario.model.expression)
    loop = scenario.variants()[variant].loop
    return _graph_nodes(scenario.model, tree, loop.accumulation_steps, scenario.loss.kind)


def _graph_nodes(model: ModelSpec, tree, accumulation_steps: int, loss_kind: str = "mse") -> int:
    per_micro = _model_nodes(model, tree) + 2
    if model.kind != "objective":
        per_micro += _LOSS_NODES[loss_kind]
    return per_micro * accumulation_steps


def _read_comparisons(r: _Reader, doc: dict, main: OptimizerSpec, main_loop: LoopSpec,
                      model: ModelSpec, tree, data: DataSpec, loss: LossSpec, n: int) -> list[Variant]:
    raw = doc.get("comparison")
    if raw is None:
        return []
    path = ("comparison",)
    if isinstance(raw, dict):
        r.fail(path, "an array of tables: write [[comparison]] (double brackets) for each one",
               "a single table [comparison]")
    if not isinstance(raw, list):
        r.fail(path, "an array of tables: [[comparison]]", _show(raw))
    if len(raw) > LIMITS["max_comparisons"]:
        r.fail(path + (LIMITS["max_comparisons"],), f"at most {LIMITS['max_comparisons']} comparisons",
               f"{len(raw)}")
    variants, names = [], set()
    for i, table in enumerate(raw):
        where = path + (i,)
        if not isinstance(table, dict):
            r.fail(where, "a table with name, optimizer and/or loop", _show(table))
        r.check_keys(table, where, ("name", "optimizer", "loop"))
        optimizer = _read_optimizer(r, r.table(table, "optimizer", where), where + ("optimizer",), main)
        loop_table = r.table(table, "loop", where)
        loop = _read_loop(r, loop_table, where + ("loop",), main_loop)
        _check_variant(r, model, tree, data, loss, loop, loop_table, where + ("loop",), n)
        default_name = optimizer.label() if optimizer != main else f"comparison {i + 1}"
        default_name = default_name if default_name not in names else f"comparison {i + 1}"
        name = r.string(table, "name", where, default_name, nonempty=True, max_length=MAX_TITLE_LENGTH)
        if name in names:
            r.fail(where + ("name",), "a name different from the other comparisons'", repr(name))
        names.add(name)
        variants.append(Variant(name, optimizer, loop))
    return variants


def _check_variant(r: _Reader, model: ModelSpec, tree, data: DataSpec, loss: LossSpec, loop: LoopSpec,
                   table: dict | None, path: tuple, n: int) -> None:
    """Everything about one run (the main loop or a comparison's) that depends on its loop."""
    _check_loop(r, loop, table, path, model, n)
    _check_graph(r, model, tree, loop, loss, path, table)
    _check_recorded(r, model, loop, path, table)
    if tree is not None:
        batch = loop.batch_size if loop.batch_size is not None else n
        _check_shapes(r, model, tree, data, batch // loop.accumulation_steps)


def _check_graph(r: _Reader, model: ModelSpec, tree, loop: LoopSpec, loss: LossSpec, path: tuple,
                 table: dict | None) -> None:
    limit = LIMITS["max_graph_nodes"]
    total = _graph_nodes(model, tree, loop.accumulation_steps, loss.kind)
    if total > limit:
        per_micro = total // loop.accumulation_steps
        if per_micro > limit or "accumulation_steps" not in (table or {}):
            where = ("model", model.kind) if per_micro > limit else path
        else:
            where = path + ("accumulation_steps",)
        r.fail(where, f"at most {limit} nodes in one traced iteration",
               f"about {total} ({per_micro} per micro-batch x {loop.accumulation_steps} micro-batches)")


# --- shapes: what the expression computes, worked out without computing it --------------------

def _matmul_shape(a: tuple, b: tuple) -> tuple:
    """numpy/PyTorch matmul: (k,)@(k,) -> (), (m,k)@(k,) -> (m,), batch dimensions broadcast."""
    if not a or not b:
        raise ValueError(f"'@' needs arrays on both sides, found shapes {a} and {b}")
    left = (1,) + a if len(a) == 1 else a
    right = b + (1,) if len(b) == 1 else b
    if left[-1] != right[-2]:
        raise ValueError(f"'@' cannot multiply shapes {a} and {b} ({left[-1]} != {right[-2]})")
    out = tuple(_broadcast(left[:-2], right[:-2])) + (left[-2], right[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _broadcast(a: tuple, b: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"shapes {a} and {b} do not broadcast together") from None


class _Shape:
    """Stands in for an array in ``expr.evaluate``: operators combine shapes, not values."""

    def __init__(self, shape: tuple):
        self.shape = tuple(shape)
        if math.prod(self.shape) > MAX_INTERMEDIATE:
            raise ValueError(f"an intermediate result of shape {self.shape} (more than "
                             f"{MAX_INTERMEDIATE} elements)")

    @staticmethod
    def of(value) -> tuple:
        if isinstance(value, complex):      # Python's (-8.0) ** 0.5; the Session cannot run it
            raise ArithmeticError(f"the complex number {value:g} (a negative number to a fractional power)")
        return value.shape if isinstance(value, _Shape) else ()

    def _elementwise(self, other):
        return _Shape(_broadcast(self.shape, _Shape.of(other)))

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _elementwise
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _elementwise

    def __matmul__(self, other):
        return _Shape(_matmul_shape(self.shape, _Shape.of(other)))

    def __rmatmul__(self, other):
        return _Shape(_matmul_shape(_Shape.of(other), self.shape))

    def __neg__(self):
        return self

    __pos__ = __neg__


def _reduce_shape(value) -> _Shape:
    _Shape.of(value)                        # refuses a complex number
    return _Shape(())


def _same_shape(value):
    _Shape.of(value)
    return value


_SHAPE_FUNCTIONS = {name: _reduce_shape if name in ("sum", "mean") else _same_shape for name in expr.FUNCTIONS}


def _check_shapes(r: _Reader, model: ModelSpec, tree, data: DataSpec, micro_batch: int) -> None:
    """The expression's value must be one number per example (objectives: one number)."""
    env = {name: _Shape(p.shape) for name, p in model.parameters.items()}
    if model.kind == "expression":
        env.update({name: _Shape((micro_batch,)) for name in data.input_names})
    try:
        shape = _Shape.of(expr.evaluate(tree, env, _SHAPE_FUNCTIONS))
    except ValueError as error:
        r.fail(("model", model.kind), "operands whose shapes fit (elementwise: broadcasting; '@': "
               "(m, k) @ (k, n))", str(error))
    except ArithmeticError as error:      # numbers alone: 1 / 0, 10.0 ** 400
        reason = error.args[-1] if error.args else ""
        r.fail(("model", model.kind), "numbers whose arithmetic has a finite, real result",
               reason if type(error) is ArithmeticError else f"{type(error).__name__}: {reason}")
    if model.kind == "objective" and math.prod(shape) != 1:
        r.fail(("model", "objective"), "an objective that is one number (use sum(...) or mean(...) "
               "over array parameters)", f"a value of shape {shape}")
    if model.kind == "expression" and shape != (micro_batch,):
        r.fail(("model", "expression"), f"one value per example: shape ({micro_batch},) for a "
               f"micro-batch of {micro_batch} (each input is a column of that length)",
               f"a value of shape {shape}")


def _check_recorded(r: _Reader, model: ModelSpec, loop: LoopSpec, path: tuple, table: dict | None) -> None:
    if model.kind == "layers":
        elements = sum(a * b + b for a, b in zip(model.layers, model.layers[1:]))
    else:
        elements = sum(math.prod(p.shape) for p in model.parameters.values())
    limit = LIMITS["max_recorded_values"]
    if loop.steps * elements > limit:
        where = path + (("steps",) if "steps" in (table or {}) else ())
        r.fail(where, f"steps x parameter elements of at most {limit} (every step is recorded)",
               f"{loop.steps} x {elements}")


# --- entry points ---------------------------------------------------------------------------

MAX_KEY_DEPTH = 32
# A dotted key or table header of more than MAX_KEY_DEPTH parts. tomllib takes quadratic time in
# the number of parts (50,000 parts: 5 s), so such keys are refused before it sees them. Each
# candidate starts where a key part can start, and parts never backtrack: linear time.
_DEEP_KEY = re.compile(r"""(?<![A-Za-z0-9_"'.-])(?:(?:[A-Za-z0-9_-]++|"[^"\n]{0,200}"|'[^'\n]{0,200}')"""
                       rf"[ \t]*+\.[ \t]*+){{{MAX_KEY_DEPTH}}}")


MAX_STRUCTURE_LINES = 5_000
# Lines that open a table or assign a key. A scenario has a few dozen; tomllib needs about 10 us
# per table header, so hundreds of thousands of them would take seconds to parse.
_STRUCTURE_LINE = re.compile(
    r"""^[ \t]*+(?:\[\[?[ \t]*+[A-Za-z0-9_"'-][^,\n\[\]]*+\]\]?[ \t]*+(?:\#[^\n]*)?$"""   # [table]
    rf"""|{_KEYPART}(?:[ \t]*+\.[ \t]*+{_KEYPART})*+[ \t]*+=)""", re.MULTILINE)     # key =


def _parse_toml(r: _Reader, text: str) -> dict:
    count = 0
    for match in _STRUCTURE_LINE.finditer(text):
        count += 1
        if count > MAX_STRUCTURE_LINES:
            raise _error(f"at most {MAX_STRUCTURE_LINES} keys and table headers",
                         f"more than {MAX_STRUCTURE_LINES}", file=r.file,
                         line=text.count("\n", 0, match.start()) + 1)
    deep = _DEEP_KEY.search(text)
    if deep:
        raise _error(f"keys nested at most {MAX_KEY_DEPTH} deep",
                            f"a dotted key or table name of more than {MAX_KEY_DEPTH} parts",
                            file=r.file, line=text.count("\n", 0, deep.start()) + 1)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = re.search(r"\(at line (\d+), column (\d+)\)|\(at end of document\)", message)
        line = column = None
        if match and match.group(1):
            line, column = int(match.group(1)), int(match.group(2))
        elif match:
            line = text.count("\n") + 1
        found = message[:match.start()].strip() if match else message
        where = f" at column {column}" if column else ""
        raise _error("valid TOML", f"{found}{where}", file=r.file, line=line,
                            column=column) from None
    except RecursionError:
        raise _error("valid TOML", "values nested too deeply", file=r.file) from None
    except Exception as error:       # tomllib can also raise ValueError (e.g. a 5000-digit integer)
        raise _error("valid TOML", f"{type(error).__name__}: {error}", file=r.file) from None


def loads(text: str, name: str = "<string>") -> Scenario:
    """Parse and validate scenario text; ``name`` is the file name used in error messages."""
    name = str(name)
    if not isinstance(text, str):
        raise _error("scenario text (a str)", type(text).__name__, file=name)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > LIMITS["max_file_bytes"]:
        raise _error(f"a file of at most {LIMITS['max_file_bytes']} bytes", f"{size} bytes", file=name)
    if text.startswith("\ufeff"):
        text = text[1:]
    r = _Reader(name, text)
    doc = _parse_toml(r, text)
    r.check_keys(doc, (), ("scenario", "model", "data", "loss", "optimizer", "loop", "comparison"))
    title, description, seed = _read_meta(r, doc)
    model, tree = _read_model(r, doc)
    data, info = _read_data(r, doc, model)
    if tree is not None:
        _check_names(r, model, tree, data)
    if model.kind == "layers":
        sizes = model.layers
        if sizes[0] != info["d"]:
            r.fail(("model", "layers"), f"a first size equal to the number of input features "
                   f"({info['d']})", f"{sizes[0]}")
        count = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        if count > LIMITS["max_param_elements"]:
            r.fail(("model", "layers"), f"at most {LIMITS['max_param_elements']} parameter elements",
                   f"{count}")
    loss = _read_loss(r, doc, model, data, info)
    optimizer = _read_optimizer(r, r.table(doc, "optimizer", ()), ("optimizer",), None)
    loop_table = r.table(doc, "loop", ())
    loop = _read_loop(r, loop_table, ("loop",), None)
    _check_variant(r, model, tree, data, loss, loop, loop_table, ("loop",), info["n"])
    comparisons = _read_comparisons(r, doc, optimizer, loop, model, tree, data, loss, info["n"])
    return Scenario(title=title, description=description, seed=seed, model=model, data=data,
                    loss=loss, optimizer=optimizer, loop=loop, comparisons=comparisons,
                    source_text=text)


def _looks_like_text(value: str) -> bool:
    if "\n" in value:
        return True
    try:
        if os.path.exists(value):
            return False
    except (OSError, ValueError):
        pass
    return "=" in value or "[" in value


def load(path_or_text: str | os.PathLike | bytes, *, name: str | None = None) -> Scenario:
    """Load a scenario from a file path (``str`` or ``Path``), or from TOML text.

    A ``str`` that is not an existing file and contains a newline, '=' or '[' is taken as the
    text itself; ``bytes`` are the file's contents. ``name`` overrides the file name shown in
    error messages.
    """
    limit = LIMITS["max_file_bytes"]
    if isinstance(path_or_text, str) and _looks_like_text(path_or_text):
        return loads(path_or_text, name=name or "<string>")
    if isinstance(path_or_text, (bytes, bytearray)):
        return loads(_decode(bytes(path_or_text), name or "<bytes>"), name=name or "<bytes>")
    path = Path(path_or_text)
    shown = name or str(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise _error(f"a file of at most {limit} bytes", f"{size} bytes", file=shown)
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except (OSError, ValueError) as error:     # ValueError: a NUL character in the path
        reason = getattr(error, "strerror", None) or error
        raise _error("a readable scenario file", f"{type(error).__name__}: {reason}",
                            file=shown) from None
    if len(raw) > limit:
        raise _error(f"a file of at most {limit} bytes", f"more than {limit} bytes", file=shown)
    scenario = loads(_decode(raw, shown), name=shown)
    scenario.path = path
    return scenario


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise _error("UTF-8 text", f"byte 0x{raw[error.start]:02x} at byte offset {error.start}, "
                            "which is not UTF-8", file=name, line=line) from None


# --- bundled scenarios ----------------------------------------------------------------------

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "scenarios"
DEFAULT_SCENARIO = "01_tutorial_wx_b"


def bundled() -> list[Path]:
    """The bundled scenario files (``assets/scenarios/*.toml``), sorted by name."""
    return sorted(BUNDLED_DIR.glob("*.toml"))


def bundled_path(stem: str) -> Path:
    """The bundled scenario called ``stem`` (e.g. ``"04_rosenbrock_race"``; ``.toml`` optional)."""
    stem = str(stem).removesuffix(".toml")
    stems = [p.stem for p in bundled()]
    if stem not in stems:
        raise _error(f"one of the bundled scenarios: {', '.join(stems)}",
                            f"{stem!r}{_suggest(stem, stems)}", file=str(BUNDLED_DIR))
    return BUNDLED_DIR / f"{stem}.toml"
