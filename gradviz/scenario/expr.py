"""A tiny, safe expression language for scenario files: ``tanh(x1*w1 + x2*w2 + b)``.

Teachers write models and objectives as strings; this module turns them into a small AST without
ever calling ``eval`` or compiling Python. The grammar (Python precedence, lowest first)::

    expr    := term (('+' | '-') term)*
    term    := factor (('*' | '/' | '@') factor)*
    factor  := ('+' | '-') factor | power
    power   := primary ['**' factor]          # right-associative; -x**2 == -(x**2)
    primary := NUMBER | NAME | FUNCTION '(' expr ')' | '(' expr ')'

Only the functions in ``FUNCTIONS`` may be called, with exactly one argument. Everything else
(attribute access, strings, indexing, keywords, names starting with ``_``) is an ``ExprError``.
Size limits (length, node count, nesting) keep hostile input cheap to reject; every walk over
the AST uses an explicit stack, so no ``RecursionError`` can escape.
"""
from __future__ import annotations

import keyword
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

FUNCTIONS = ("abs", "exp", "log", "mean", "relu", "sigmoid", "sqrt", "sum", "tanh")
MAX_LENGTH = 2_000        # characters of source text
MAX_NODES = 500           # AST nodes
MAX_DEPTH = 64            # nesting of parentheses, unary operators and powers
MAX_NUMBER_LENGTH = 40    # characters of one numeric literal


class ExprError(ValueError):
    """A rejected expression; ``column`` is the 1-based position of the problem (or None)."""

    def __init__(self, message: str, column: int | None = None):
        self.message, self.column = message, column
        super().__init__(message if column is None else f"{message} (column {column})")


# --- AST ------------------------------------------------------------------------------------
# ``column`` is where the node starts in the source (for operators: where the operator is). It
# does not take part in equality, so ``parse(to_text(e)) == e``.

@dataclass(frozen=True)
class Num:
    value: float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    id: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class UnaryOp:
    op: str                   # "-" or "+"
    operand: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class BinOp:
    op: str                   # "+", "-", "*", "/", "**" or "@"
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    func: str                 # one of FUNCTIONS
    arg: Expr
    column: int = field(default=0, compare=False)


Expr = Num | Name | UnaryOp | BinOp | Call


# --- tokenizer ------------------------------------------------------------------------------

class _Token(NamedTuple):
    kind: str                 # "num", "name", "op" or "end"
    text: str
    column: int


_TOKEN = re.compile(r"""
      (?P<space>\s+)
    | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\*\*|[-+*/@()])
""", re.VERBOSE | re.ASCII)

_EXPECTED = "expected a number, a name, an operator (+ - * / ** @) or parentheses"
_CHAR_HINTS = {
    "'": "string literals are not allowed",
    '"': "string literals are not allowed",
    ",": "functions take exactly one argument, and there are no tuples",
    "[": "indexing and lists are not allowed",
    "]": "indexing and lists are not allowed",
    "{": "sets and dicts are not allowed",
    "}": "sets and dicts are not allowed",
    "=": "assignment and comparison are not allowed",
    ":": "lambdas, slices and annotations are not allowed",
}


def _tokenize(text: str) -> Iterator[_Token]:
    """Yield tokens lazily, so errors are reported in source order (``open('f')`` is an unknown
    function before it is a string literal)."""
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        column = pos + 1
        if match is None:
            char = text[pos]
            attribute = re.match(r"\.\s*([A-Za-z_]\w*)", text[pos:pos + 80])
            if attribute:
                raise ExprError(f"found '.{attribute.group(1)}': attribute access is not allowed",
                                column)
            hint = _CHAR_HINTS.get(char, _EXPECTED)
            raise ExprError(f"unexpected character {char!r}: {hint}", column)
        pos = match.end()
        kind, value = match.lastgroup, match.group()
        if kind == "space":
            continue
        if kind == "name":
            if value.startswith("_"):
                raise ExprError(f"names may not start with '_' (found {value!r})", column)
            if keyword.iskeyword(value):
                raise ExprError(f"found the Python keyword {value!r}: only arithmetic on names, "
                                f"numbers and the functions {', '.join(FUNCTIONS)} is allowed",
                                column)
        yield _Token(kind, value, column)
    yield _Token("end", "", len(text) + 1)


def _describe(token: _Token) -> str:
    return {"end": "end of input", "num": f"number {token.text}",
            "name": f"name {token.text!r}"}.get(token.kind, repr(token.text))


# --- parser ---------------------------------------------------------------------------------

class _Parser:
    """Recursive descent over the grammar in the module docstring. Recursion happens only in
    ``_factor`` and is counted, so input nested deeper than MAX_DEPTH fails before Python's own
    recursion limit is anywhere near."""

    def __init__(self, text: str):
        self._tokens = _tokenize(text)
        self.token = next(self._tokens)
        self.depth = 0
        self.nodes = 0

    def advance(self) -> _Token:
        token = self.token
        if token.kind != "end":           # the end token repeats; the lexer is exhausted
            self.token = next(self._tokens)
        return token

    def node(self, cls, *args, column: int):
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError(f"expression too large: more than {MAX_NODES} nodes", column)
        return cls(*args, column=column)

    def parse(self) -> Expr:
        expr = self._sum()
        if self.token.kind != "end":
            raise ExprError(f"expected an operator or end of input but found "
                            f"{_describe(self.token)}", self.token.column)
        return expr

    def _sum(self) -> Expr:
        left = self._term()
        while self.token.kind == "op" and self.token.text in ("+", "-"):
            op = self.advance()
            left = self.node(BinOp, op.text, left, self._term(), column=op.column)
        return left

    def _term(self) -> Expr:
        left = self._factor()
        while self.token.kind == "op" and self.token.text in ("*", "/", "@"):
            op = self.advance()
            left = self.node(BinOp, op.text, left, self._factor(), column=op.column)
        return left

    def _factor(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", self.token.column)
        if self.token.kind == "op" and self.token.text in ("+", "-"):
            op = self.advance()
            result = self.node(UnaryOp, op.text, self._factor(), column=op.column)
        else:
            result = self._primary()
            if self.token.kind == "op" and self.token.text == "**":
                op = self.advance()
                result = self.node(BinOp, "**", result, self._factor(), column=op.column)
        self.depth -= 1
        return result

    def _primary(self) -> Expr:
        token = self.advance()
        if token.kind == "num":
            result = self.node(Num, _number(token), column=token.column)
        elif token.kind == "name" and self.token.text == "(":
            if token.text not in FUNCTIONS:
                raise ExprError(f"unknown function {token.text!r}; allowed: "
                                f"{', '.join(FUNCTIONS)}", token.column)
            self.advance()
            result = self.node(Call, token.text, self._sum(), column=token.column)
            self._close(token)
        elif token.kind == "name":
            result = self.node(Name, token.text, column=token.column)
        elif token.text == "(":
            result = self._sum()
            self._close(token)
        else:
            raise ExprError(f"expected a number, a name or '(' but found {_describe(token)}",
                            token.column)
        if self.token.text == "(" and self.token.kind == "op":
            raise ExprError(f"found '(' after an expression: only the functions "
                            f"{', '.join(FUNCTIONS)} can be called", self.token.column)
        return result

    def _close(self, opening: _Token) -> None:
        if self.token.text != ")":
            what = "the argument of " + repr(opening.text) if opening.kind == "name" else "'('"
            raise ExprError(f"expected ')' to close {what} at column {opening.column} but found "
                            f"{_describe(self.token)}", self.token.column)
        self.advance()


def _number(token: _Token) -> float:
    if len(token.text) > MAX_NUMBER_LENGTH:
        raise ExprError(f"numeric literal too long ({len(token.text)} characters, at most "
                        f"{MAX_NUMBER_LENGTH})", token.column)
    value = float(token.text)
    if not math.isfinite(value):
        raise ExprError(f"numeric literal {token.text} is too large", token.column)
    return value


def parse(text: str) -> Expr:
    """Parse ``text`` into an AST, or raise ExprError saying what was found and what was expected."""
    if not isinstance(text, str):
        raise ExprError(f"expected an expression string but found {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression too long ({len(text)} characters, at most {MAX_LENGTH})")
    if not text.strip():
        raise ExprError("empty expression: expected a number, a name or '('", 1)
    return _Parser(text).parse()


# --- walking the AST ------------------------------------------------------------------------

def _children(node: Expr) -> tuple:
    if isinstance(node, UnaryOp):
        return (node.operand,)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Call):
        return (node.arg,)
    return ()


def _postorder(expr: Expr) -> Iterator[Expr]:
    """Children before parents, left before right, with an explicit stack (no recursion)."""
    stack = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        children = _children(node)
        if expanded or not children:
            yield node
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(children))


_ORDERS: dict[int, tuple[Expr, tuple]] = {}      # id(expr) -> (expr, its postorder): a model's
_ORDERS_MAX = 256                                 # expression is evaluated every step


def _order(expr: Expr) -> tuple:
    """``tuple(_postorder(expr))``, remembered for the last expressions evaluated (keyed by identity;
    an expression tree is never changed once parsed)."""
    entry = _ORDERS.get(id(expr))
    if entry is not None and entry[0] is expr:
        return entry[1]
    order = tuple(_postorder(expr))
    if len(_ORDERS) >= _ORDERS_MAX:
        _ORDERS.clear()
    _ORDERS[id(expr)] = (expr, order)
    return order


def names(expr: Expr) -> list[str]:
    """Free variable names in order of first appearance (function names are not included)."""
    return list(dict.fromkeys(n.id for n in _postorder(expr) if isinstance(n, Name)))


def _sigmoid(x):
    # = 1 / (1 + exp(-x)), written so that large |x| neither overflows nor warns
    return np.exp(-np.logaddexp(0.0, -x))


NUMPY_FUNCTIONS: Mapping[str, Callable] = MappingProxyType({
    "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "sigmoid": _sigmoid, "relu": lambda x: np.maximum(x, 0.0),
    "sum": np.sum, "mean": np.mean,          # over all elements, like torch.sum / torch.mean
})

_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "**": operator.pow, "@": operator.matmul}
_UNARY = {"-": operator.neg, "+": lambda value: value}


def evaluate(expr: Expr, env: Mapping[str, object],
             functions: Mapping[str, Callable] | None = None):
    """Evaluate with Python operators on whatever ``env`` holds (Tensors, numpy arrays, floats).

    Numbers become Python floats; calls go through ``functions`` (default NUMPY_FUNCTIONS)."""
    functions = NUMPY_FUNCTIONS if functions is None else functions
    values: list = []
    for node in _order(expr):
        if isinstance(node, Num):
            values.append(float(node.value))
        elif isinstance(node, Name):
            if node.id not in env:
                available = ", ".join(sorted(map(str, env))) or "(none)"
                raise ExprError(f"unknown name {node.id!r}; available: {available}", node.column)
            values.append(env[node.id])
        elif isinstance(node, UnaryOp):
            values.append(_UNARY[node.op](values.pop()))
        elif isinstance(node, BinOp):
            right = values.pop()
            values.append(_BINARY[node.op](values.pop(), right))
        else:
            if node.func not in functions:
                available = ", ".join(sorted(functions)) or "(none)"
                raise ExprError(f"function {node.func!r} is not available; available: "
                                f"{available}", node.column)
            values.append(functions[node.func](values.pop()))
    return values.pop()


# --- printing -------------------------------------------------------------------------------
# Precedence levels, loosest first. A child is parenthesised only when Python would otherwise
# group it differently: left-associative operators protect an equal-precedence right child,
# ``**`` protects an equal-precedence left child, and its right operand may be unary (x ** -1).
_SUM, _PRODUCT, _UNARY_LEVEL, _POWER, _ATOM = range(1, 6)
_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "@": _PRODUCT, "**": _POWER}


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else repr(float(value))


def _wrap(text: str, needed: bool) -> str:
    return f"({text})" if needed else text


def to_python(expr: Expr, functions_prefix: str = "torch.") -> str:
    """Python source for ``expr`` with minimal parentheses: ``torch.tanh(x1 * w1 + b)``."""
    parts: list[tuple[str, int]] = []     # (text, precedence level) of finished subtrees
    for node in _postorder(expr):
        if isinstance(node, Num):
            text = _format_number(node.value)
            parts.append((text, _UNARY_LEVEL if text.startswith("-") else _ATOM))
        elif isinstance(node, Name):
            parts.append((node.id, _ATOM))
        elif isinstance(node, UnaryOp):
            text, level = parts.pop()
            parts.append((node.op + _wrap(text, level < _UNARY_LEVEL), _UNARY_LEVEL))
        elif isinstance(node, Call):
            text, _ = parts.pop()
            parts.append((f"{functions_prefix}{node.func}({text})", _ATOM))
        else:
            (right, right_level), (left, left_level) = parts.pop(), parts.pop()
            level = _LEVEL[node.op]
            if node.op == "**":
                left = _wrap(left, left_level <= _POWER)
                right = _wrap(right, right_level < _UNARY_LEVEL)
                simple = all(isinstance(side, (Name, Num)) for side in (node.left, node.right))
                op = "**" if simple else " ** "   # black's style: x**2 but (a + b) ** 2
            else:
                left, right = _wrap(left, left_level < level), _wrap(right, right_level <= level)
                op = f" {node.op} "
            parts.append((left + op + right, level))
    return parts.pop()[0]


def to_text(expr: Expr) -> str:
    """Canonical source text: ``parse(to_text(e)) == e`` for every AST that ``parse`` returns."""
    return to_python(expr, functions_prefix="")
