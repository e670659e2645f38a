"""Checking one value of a scenario at a time, and the one error every problem becomes.

``ScenarioError`` is what a scenario that cannot be loaded (or saved) raises: one line naming the
file, the line, the dotted key path (``comparison[1].optimizer.lr``, comparisons counted from 0),
what was expected and what was found::

    lesson.toml:14: [optimizer.lrr] expected one of kind, lr, momentum, ..., found unknown key 'lrr';
        did you mean 'lr'?            (one line, wrapped here)

``Reader`` checks one value against one rule (a table's keys, a string, one of a set of choices, a
bounded integer or number, a name, a rectangular array) and fails with that message. The section
readers (``loader.py``) use it on the values of a TOML document, the checks (``checks.py``) on the
values of a ``Scenario``; both report through it. It knows the document it reads, if any, to say
on which line a key is and whether the file spells a key out.
"""
from __future__ import annotations

import difflib
import json
import keyword
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from . import expr

MAX_NAME_LENGTH = 64
# Column names of a History (and of the exported script's CSV): a parameter must not shadow them.
HISTORY_COLUMNS = ("step", "loss", "grad_scale", "skipped")


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


class NotScenarioFile(ScenarioError):
    """A file that is no scenario at all (an image, an archive, any binary data): one line,
    ``"picture.png: not a scenario file (expected a .toml lesson or a .py script, found a PNG image)"``."""

    EXPECTED = "a .toml lesson or a .py script"

    def __init__(self, file: str = "<string>", found: str = "binary data"):
        super().__init__(file, expected=self.EXPECTED, found=found)
        self.args = (f"{_one_line(self.file)}: not a scenario file (expected {self.expected}, "
                     f"found {self.found})",)

    def __reduce__(self):
        return type(self), (self.file, self.found)


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
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time" if hasattr(value, "isoformat") else type(value).__name__


def show(value) -> str:
    """``'0.1' (a string)``, ``true (a boolean)``, ``a table``: what was found, briefly."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "[...]" if len(value) > 8 else repr(list(value))
    else:
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(value)})"


def suggest(word: str, choices) -> str:
    """``"; did you mean 'lr'?"`` for a close match among ``choices``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean {close[0]!r}?" if close else ""


def dotted(path: tuple) -> str:
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


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- rules for one value ----------------------------------------------------------------------

@dataclass(frozen=True)
class Integer:
    """An integer from ``lo`` to ``hi``."""
    lo: int
    hi: int


@dataclass(frozen=True)
class Number:
    """A finite number (an integer is accepted and becomes a float) within the bounds; ``invalid``
    names a finite number outside them in the error (``"Invalid learning rate"``)."""
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    invalid: str = ""


@dataclass(frozen=True)
class Choice:
    """One of ``choices`` (strings)."""
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Text:
    """A string, non-empty if asked, of at most ``max_length`` characters; ``one_line``: no line
    breaks or other control characters (a title is printed on terminals and in window titles)."""
    nonempty: bool = False
    max_length: int | None = None
    one_line: bool = False


@dataclass(frozen=True)
class Pair:
    """Two numbers, each following ``each`` (Adam's ``betas``)."""
    each: Number
    expected: str


BOOLEAN = "boolean"        # the rule of a true/false key
Rule = Integer | Number | Choice | Text | Pair | str


# --- the reader -----------------------------------------------------------------------------

class Reader:
    """Checks values and fails with their key path, the line of that key and what was expected.

    ``find_line(path)`` gives the line of a key path in the source (None without one);
    ``document`` is the parsed TOML, for ``given``. Without either (a ``Scenario`` built in
    code), errors carry the key path alone.
    """

    def __init__(self, file: str = "<scenario>", find_line: Callable[[tuple], int | None] | None = None,
                 document: dict | None = None):
        self.file, self.document = str(file), document
        self._find_line = find_line

    def line(self, path: tuple) -> int | None:
        return self._find_line(path) if self._find_line is not None else None

    def given(self, path: tuple) -> bool:
        """Whether the document spells out the key ``path`` (always true without a document)."""
        node = self.document
        if node is None:
            return True
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    return False
            elif not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def first_given(self, path: tuple, *keys: str) -> tuple:
        """``path`` + the first of ``keys`` the document spells out, else ``path`` itself."""
        return path + next(((k,) for k in keys if self.given(path + (k,))), ())

    def fail(self, path: tuple, expected: str, found: str, column: int | None = None) -> NoReturn:
        raise ScenarioError(self.file, dotted(path) or None, self.line(path), expected, found, column)

    # -- tables ------------------------------------------------------------------------------
    def check_keys(self, table: dict, path: tuple, allowed, hints: dict | None = None) -> None:
        for key in table:
            if key not in allowed:
                hint = (hints or {}).get(key) or suggest(key, allowed)
                shown = key if len(key) <= 40 else key[:37] + "..."
                self.fail(path + (key,), f"one of {', '.join(allowed)}",
                          f"unknown key {shown!r}{hint}")

    def table(self, parent: dict, key: str, path: tuple, *, required: bool = False) -> dict | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.fail(path + (key,), f"a [{dotted(path + (key,))}] table", "none")
            return None
        if not isinstance(value, dict):
            self.fail(path + (key,), "a table", show(value))
        return value

    def get(self, table: dict, key: str, path: tuple, default, rule: Rule):
        """``table[key]`` checked against ``rule``, or ``default`` when the key is absent."""
        return default if key not in table else self.check(table[key], path + (key,), rule)

    # -- one value ---------------------------------------------------------------------------
    def check(self, value, path: tuple, rule: Rule):
        """``value`` if it follows ``rule`` (numbers become floats, pairs tuples), else fail."""
        if rule == BOOLEAN:
            return self.boolean_value(value, path)
        if isinstance(rule, Integer):
            return self.integer_value(value, path, rule.lo, rule.hi)
        if isinstance(rule, Number):
            return self.number_value(value, path, rule)
        if isinstance(rule, Choice):
            return self.choice_value(value, path, rule.choices)
        if isinstance(rule, Text):
            return self.string_value(value, path, nonempty=rule.nonempty, max_length=rule.max_length,
                                     one_line=rule.one_line)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            self.fail(path, rule.expected, show(value))
        return tuple(self.number_value(v, path, rule.each) for v in value)

    def string(self, table: dict, key: str, path: tuple, default: str | None = None, *,
               nonempty: bool = False, max_length: int | None = None, one_line: bool = False) -> str:
        if key not in table:
            if default is None:
                self.fail(path + (key,), f"a string for {key!r}", "none (it is required)")
            return default
        return self.string_value(table[key], path + (key,), nonempty=nonempty, max_length=max_length,
                                 one_line=one_line)

    def string_value(self, value, path: tuple, *, nonempty: bool = False, max_length: int | None = None,
                     one_line: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(path, "a string", show(value))
        if nonempty and not value.strip():
            self.fail(path, "a non-empty string", "an empty string")
        if max_length is not None and len(value) > max_length:
            self.fail(path, f"at most {max_length} characters", f"{len(value)} characters")
        if one_line:
            bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
            if bad is not None:
                self.fail(path, "one line of text", "a line break" if bad in "\n\r" else
                          f"the control character {bad!r}")
        return value

    def choice(self, table: dict, key: str, path: tuple, default: str | None, choices) -> str:
        if key not in table and default is not None:
            return default
        if key not in table:
            self.fail(path + (key,), "one of " + ", ".join(repr(c) for c in choices), f"no {key!r}")
        return self.choice_value(table[key], path + (key,), choices)

    def choice_value(self, value, path: tuple, choices) -> str:
        expected = "one of " + ", ".join(repr(c) for c in choices)
        if not isinstance(value, str):
            self.fail(path, expected, show(value))
        if value not in choices:
            self.fail(path, expected, f"{show(value)}{suggest(value, choices)}")
        return value

    def boolean_value(self, value, path: tuple) -> bool:
        if not isinstance(value, bool):
            self.fail(path, "true or false", show(value))
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
            self.fail(path, expected, show(value))
        if not lo <= value <= hi:
            self.fail(path, expected, show(value))
        return value

    def number(self, table: dict, key: str, path: tuple, default: float | None, rule: Number = Number()) -> float:
        if key not in table:
            if default is None:
                self.fail(path + (key,), f"a number for {key!r}", "none (it is required)")
            return default
        return self.number_value(table[key], path + (key,), rule)

    def number_value(self, value, path: tuple, rule: Number = Number()) -> float:
        """A finite number (an integer is accepted and becomes a float) within the rule's bounds."""
        gt, ge, lt, le = rule.gt, rule.ge, rule.lt, rule.le
        parts = [f"> {gt:g}" if gt is not None else "", f">= {ge:g}" if ge is not None else "",
                 f"< {lt:g}" if lt is not None else "", f"<= {le:g}" if le is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        expected = "a finite number" + (f" {bounds}" if bounds else "")
        if not is_number(value):
            self.fail(path, expected, show(value))
        number = float(value)
        if not math.isfinite(number):
            self.fail(path, expected, show(value))
        if ((gt is not None and not number > gt) or (ge is not None and not number >= ge)
                or (lt is not None and not number < lt) or (le is not None and not number <= le)):
            self.fail(path, expected, show(value) + (f": {rule.invalid}" if rule.invalid else ""))
        return number

    def name(self, value, path: tuple, what: str) -> str:
        """A name usable in an expression: letters, digits and '_', not a keyword or function."""
        expected = (f"{what}: a letter followed by letters, digits or '_' (at most "
                    f"{MAX_NAME_LENGTH} characters), not a Python keyword, one of the functions, or a "
                    f"History column ({', '.join(HISTORY_COLUMNS)})")
        if not isinstance(value, str):
            self.fail(path, expected, show(value))
        if (not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value) or len(value) > MAX_NAME_LENGTH
                or keyword.iskeyword(value) or value in expr.FUNCTIONS or value in HISTORY_COLUMNS):
            self.fail(path, expected, show(value))
        return value

    def array(self, value, path: tuple, *, max_ndim: int, max_elements: int, integers: bool = False):
        """A number or rectangular nested arrays of finite numbers -> (nested lists, shape).

        Floats for ``integers=False`` (integers are converted); TOML integers only otherwise.
        """
        kind = "integers" if integers else "finite numbers"
        if not isinstance(value, (list, tuple)):
            if integers and isinstance(value, int) and not isinstance(value, bool):
                return value, ()
            if not integers and is_number(value) and math.isfinite(value):
                return float(value), ()
            self.fail(path, f"a number or an array of {kind}", show(value))
        shape, probe = [], value
        while isinstance(probe, (list, tuple)):
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
            return is_number(leaf) and math.isfinite(leaf)

        def convert(node, level: int, where: str):
            if (level == len(shape) - 1 and isinstance(node, (list, tuple)) and len(node) == shape[level]
                    and all(map(valid, node))):            # the common case, without bookkeeping
                return list(node) if integers else [float(v) for v in node]
            if level == len(shape):
                if not valid(node):
                    self.fail(path, f"an array of {kind} of shape {tuple(shape)}",
                              f"{show(node)} at {where or 'the top'}")
                return node if integers else float(node)
            if not isinstance(node, (list, tuple)) or len(node) != shape[level]:
                length = (f"an array of length {len(node)}" if isinstance(node, (list, tuple))
                          else show(node))
                self.fail(path, f"a rectangular array of shape {tuple(shape)} (length "
                                f"{shape[level]} at {where or 'the top'})", length)
            return [convert(item, level + 1, f"{where}[{i}]") for i, item in enumerate(node)]

        return convert(value, 0, ""), tuple(shape)
