"""The safe expression language: Python's own arithmetic and parser are the reference."""
import ast
import keyword
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradviz.scenario.expr import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_NODES,
    NUMPY_FUNCTIONS,
    BinOp,
    Call,
    ExprError,
    Name,
    Num,
    UnaryOp,
    evaluate,
    names,
    parse,
    to_python,
    to_text,
)

# Fixed literal strings: evaluating them with Python's eval is the oracle for precedence.
PRECEDENCE = [
    "1 + 2 * 3", "(1 + 2) * 3", "2 ** 3 ** 2", "(2 ** 3) ** 2", "-2 ** 2", "(-2) ** 2",
    "-2 ** -2", "2 ** -1", "10 - 4 - 3", "10 - (4 - 3)", "64 / 4 / 2", "64 / (4 / 2)",
    "2 * 3 ** 2", "-3 * -2", "--3", "+-+3", "1 - -1", "2 ** - 2 ** 2", "7 - 2 * 3 ** 2 / 4 + 1",
    "1.5e1 / 3", "1e-3 * 1000", ".5 + 5. + 1.25E+2", "3 - 2 + 1", "2 / 4 * 8", "-(2 + 3) ** 2",
]


@pytest.mark.parametrize("source", PRECEDENCE)
def test_precedence_matches_python(source):
    assert evaluate(parse(source), {}) == pytest.approx(eval(source), rel=1e-15)


@pytest.mark.parametrize("source, expected", [
    ("-x**2", UnaryOp("-", BinOp("**", Name("x"), Num(2.0)))),
    ("2**3**2", BinOp("**", Num(2.0), BinOp("**", Num(3.0), Num(2.0)))),
    ("a - b - c", BinOp("-", BinOp("-", Name("a"), Name("b")), Name("c"))),
    ("w @ x + b", BinOp("+", BinOp("@", Name("w"), Name("x")), Name("b"))),
    ("tanh(x)", Call("tanh", Name("x"))),
    ("((x))", Name("x")),
])
def test_ast_shape(source, expected):
    assert parse(source) == expected


def test_columns_point_at_tokens():
    expr = parse("a +  tanh(b)")
    assert (expr.column, expr.left.column, expr.right.column, expr.right.arg.column) == (3, 1, 6, 11)


@pytest.mark.parametrize("source, expected", [
    ("w * x + b", ["w", "x", "b"]),
    ("tanh(x1*w1 + x2*w2 + b)", ["x1", "w1", "x2", "w2", "b"]),
    ("(1 - x)**2 + 100*(y - x**2)**2", ["x", "y"]),
    ("mean((w*x + b - y)**2)", ["w", "x", "b", "y"]),
    ("sum + mean(sum)", ["sum"]),
    ("3 * 4", []),
])
def test_names_in_order_of_first_appearance(source, expected):
    assert names(parse(source)) == expected


REJECTED = [
    # injection attempts
    ("__import__('os')", "may not start with '_'"),
    ("x.__class__", "attribute access is not allowed"),
    ("().__class__", "attribute access is not allowed"),
    ("()", r"expected a number, a name or '\(' but found '\)'"),
    ("lambda: 0", "Python keyword 'lambda'"),
    ("[x for x in ()]", r"unexpected character '\[': indexing"),
    ("x if y else z", "Python keyword 'if'"),
    ('"a"', "string literals are not allowed"),
    ("open('f')", "unknown function 'open'; allowed: abs, exp, log"),
    ("eval(x)", "unknown function 'eval'"),
    ("(x)(y)", r"found '\(' after an expression: only the functions"),
    ("tanh(x)(y)", r"found '\(' after an expression"),
    ("2(x)", r"found '\(' after an expression"),
    ("x._y", "attribute access"),
    ("_x", "may not start with '_'"),
    # malformed input
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("x +", "expected a number, a name or '\\(' but found end of input"),
    ("x y", "expected an operator or end of input but found name 'y'"),
    ("(x + 1", r"expected '\)' to close '\(' at column 1 but found end of input"),
    ("tanh(x", r"expected '\)' to close the argument of 'tanh'"),
    ("x + 1)", r"expected an operator or end of input but found '\)'"),
    ("tanh(x, y)", "functions take exactly one argument"),
    ("tanh()", r"found '\)'"),
    ("x; y", "unexpected character ';'"),
    ("x = 1", "unexpected character '='"),
    ("x == 1", "unexpected character '='"),
    ("x // 2", r"expected a number, a name or '\(' but found '/'"),
    ("x % 2", "unexpected character '%'"),
    ("x ^ 2", "unexpected character"),
    ("1.5.3", "found number .3"),
    ("1" * 41, "numeric literal too long"),
    ("1e400", "numeric literal 1e400 is too large"),
    ("x" + " " * 2000, "expression too long"),
    ("(" * 65 + "x" + ")" * 65, f"nested deeper than {MAX_DEPTH}"),
    ("-" * 65 + "x", "nested deeper"),
    ("x" + "**x" * 65, "nested deeper"),
    ("x" + "+x" * 250, f"more than {MAX_NODES} nodes"),
    ("x\u00b2", "unexpected character"),
    ("\u0663", "unexpected character"),   # a non-ASCII digit
]


@pytest.mark.parametrize("source, message", REJECTED)
def test_rejected_with_helpful_message(source, message):
    with pytest.raises(ExprError, match=message) as info:
        parse(source)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("source, column", [("x.y", 2), ("a + 'b'", 5), ("x +", 4), ("1 + open(x)", 5)])
def test_error_column_is_one_based(source, column):
    with pytest.raises(ExprError, match=f"column {column}") as info:
        parse(source)
    assert info.value.column == column


@pytest.mark.parametrize("source", ["(" * 100_000, "-" * 100_000 + "x", "x" + "+x" * 100_000,
                                    "(" * 1999, "-" * 1999 + "x", "x" + "**x" * 600, "x" + "+x" * 999])
def test_huge_input_rejected_fast(source):
    start = time.perf_counter()
    with pytest.raises(ExprError):
        parse(source)
    assert time.perf_counter() - start < 0.5


def test_limits_are_inclusive():
    assert isinstance(parse("(" * 63 + "x" + ")" * 63), Name)
    assert evaluate(parse("-" * 63 + "1"), {}) == -1.0
    long_sum = parse("x" + "+x" * 249)        # 499 nodes, a left-deep tree 250 levels deep
    assert long_sum == parse(to_text(long_sum))
    assert evaluate(long_sum, {"x": 1.0}) == 250.0
    assert names(long_sum) == ["x"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300),
                 st.text(alphabet="xyw1.e5+-*/@() _tanhsum,[]'\"", max_size=300)))
def test_random_text_only_ever_raises_expr_error(text):
    start = time.perf_counter()
    try:
        parse(text)
    except ExprError:
        pass
    assert time.perf_counter() - start < 2.0


# --- round trips ----------------------------------------------------------------------------
_names = st.from_regex(r"[a-z][a-z0-9_]{0,3}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s))
_numbers = st.one_of(st.integers(0, 10**6).map(float),
                     st.floats(0, 1e300, allow_nan=False, allow_infinity=False))
_leaves = st.one_of(_numbers.map(Num), _names.map(Name))
_exprs = st.recursive(_leaves, lambda inner: st.one_of(
    st.builds(UnaryOp, st.sampled_from("+-"), inner),
    st.builds(BinOp, st.sampled_from(["+", "-", "*", "/", "**", "@"]), inner, inner),
    st.builds(Call, st.sampled_from(FUNCTIONS), inner),
), max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(_exprs)
def test_to_text_round_trips(expr):
    assert parse(to_text(expr)) == expr


def _from_python(node):
    """Python's ast (of our own generated code) -> our AST, to check Python groups it the same."""
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
           ast.USub: "-", ast.UAdd: "+"}
    if isinstance(node, ast.Constant):
        return Num(float(node.value))
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.UnaryOp):
        return UnaryOp(ops[type(node.op)], _from_python(node.operand))
    if isinstance(node, ast.BinOp):
        return BinOp(ops[type(node.op)], _from_python(node.left), _from_python(node.right))
    assert isinstance(node, ast.Call) and node.func.value.id == "torch" and len(node.args) == 1
    return Call(node.func.attr, _from_python(node.args[0]))


@settings(max_examples=300, deadline=None)
@given(_exprs)
def test_to_python_groups_like_python(expr):
    source = to_python(expr)
    assert _from_python(ast.parse(source, mode="eval").body) == expr
    assert source.replace("torch.", "") == to_text(expr)


@pytest.mark.parametrize("source, expected", [
    ("tanh(x1*w1 + b)", "torch.tanh(x1 * w1 + b)"),
    ("(1 - x)**2 + 100*(y - x**2)**2", "(1 - x) ** 2 + 100 * (y - x**2) ** 2"),
    ("mean((w*x + b - y)**2)", "torch.mean((w * x + b - y) ** 2)"),
    ("sigmoid(relu(x)) + sum(x)", "torch.sigmoid(torch.relu(x)) + torch.sum(x)"),
    ("-x**2", "-x**2"),
    ("(-x)**2", "(-x) ** 2"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a / (b * c)", "a / (b * c)"),
    ("2 ** -x", "2 ** -x"),
    ("x ** (1/2)", "x ** (1 / 2)"),
    ("1e-3 * w", "0.001 * w"),
    ("2.50 * w", "2.5 * w"),
])
def test_to_python_output(source, expected):
    assert to_python(parse(source)) == expected


# --- evaluation -----------------------------------------------------------------------------

def test_evaluate_numpy_broadcasting():
    w, b = np.linspace(-2, 2, 5).reshape(5, 1), np.linspace(-1, 1, 3).reshape(1, 3)
    surface = evaluate(parse("(1 - w)**2 + 100*(b - w**2)**2"), {"w": w, "b": b})
    np.testing.assert_allclose(surface, (1 - w) ** 2 + 100 * (b - w**2) ** 2)
    assert surface.shape == (5, 3)


def test_reductions_cover_all_elements_unless_replaced():
    w, b = np.linspace(-2, 2, 5).reshape(5, 1, 1), np.linspace(-1, 1, 3).reshape(1, 3, 1)
    env = {"w": w, "b": b, "x": np.array([0.0, 1.0, 2.0]), "y": np.array([1.0, 3.0, 5.0])}
    expr = parse("mean((w*x + b - y)**2)")
    assert np.ndim(evaluate(expr, env)) == 0                 # like torch.mean: one number
    # a vectorised loss landscape swaps in a reduction over the data axis only
    per_point = {**NUMPY_FUNCTIONS, "mean": lambda v: np.mean(v, axis=-1)}
    grid = evaluate(expr, env, per_point)
    assert grid.shape == (5, 3)
    np.testing.assert_allclose(grid[1, 2], evaluate(expr, {**env, "w": w[1, 0, 0], "b": b[0, 2, 0]}))


def test_evaluate_matmul_and_functions():
    W, x = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(evaluate(parse("relu(W @ x - 1)"), {"W": W, "x": x}),
                               np.maximum(W @ x - 1, 0))


@pytest.mark.parametrize("func, reference", [
    ("tanh", np.tanh), ("exp", np.exp), ("abs", np.abs), ("sum", np.sum), ("mean", np.mean),
    ("log", lambda v: np.log(np.abs(v) + 1)), ("sqrt", lambda v: np.sqrt(np.abs(v))),
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("relu", lambda v: np.maximum(v, 0)),
])
def test_numpy_functions(func, reference):
    v = np.array([[-3.0, -0.5, 0.0], [0.25, 1.0, 4.0]])
    arg = {"log": "abs(v) + 1", "sqrt": "abs(v)"}.get(func, "v")
    np.testing.assert_allclose(evaluate(parse(f"{func}({arg})"), {"v": v}), reference(v), rtol=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_allclose(NUMPY_FUNCTIONS["sigmoid"](np.array([-1000.0, 0.0, 1000.0])),
                                   [0.0, 0.5, 1.0])


def test_numbers_are_python_floats_and_custom_functions_are_used():
    assert type(evaluate(parse("3"), {})) is float
    assert evaluate(parse("tanh(x) * 2"), {"x": 5}, functions={"tanh": lambda v: v + 1}) == 12.0


class _Recorder:
    """Stands in for a Tensor: records which Python operators the evaluation used."""

    def __init__(self, label):
        self.label = label

    def _binary(symbol):
        return lambda self, other: _Recorder(f"({self.label} {symbol} {_label(other)})")

    def _reflected(symbol):
        return lambda self, other: _Recorder(f"({_label(other)} {symbol} {self.label})")

    __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__ = map(_binary, "+ - * / ** @".split())
    __radd__, __rsub__, __rmul__, __rtruediv__, __rpow__ = map(_reflected, "+ - * / **".split())

    def __neg__(self):
        return _Recorder(f"(-{self.label})")


def _label(value):
    return value.label if isinstance(value, _Recorder) else repr(value)


def test_evaluate_uses_python_operators_on_env_objects():
    env = {name: _Recorder(name) for name in ("w", "x", "b")}
    out = evaluate(parse("-w @ x * 2 - 1 / b ** 2"), env)
    assert out.label == "((((-w) @ x) * 2.0) - (1.0 / (b ** 2.0)))"
    assert evaluate(parse("2 ** +b"), env).label == "(2.0 ** b)"


@pytest.mark.parametrize("source, env, functions, message", [
    ("w * x", {"w": 1.0}, None, "unknown name 'x'; available: w"),
    ("q", {}, None, r"unknown name 'q'; available: \(none\)"),
    ("tanh(x)", {"x": 1.0}, {"exp": np.exp}, "function 'tanh' is not available; available: exp"),
])
def test_evaluate_errors(source, env, functions, message):
    with pytest.raises(ExprError, match=message):
        evaluate(parse(source), env, functions)


def test_evaluate_deep_trees_without_recursion():
    expr = parse("-" * (MAX_DEPTH - 1) + "x")
    assert evaluate(expr, {"x": 2.0}) == -2.0
    assert to_text(expr) == "-" * (MAX_DEPTH - 1) + "x"
    assert math.isclose(evaluate(parse("x" + "*x" * 200), {"x": 1.001}), 1.001 ** 201)
