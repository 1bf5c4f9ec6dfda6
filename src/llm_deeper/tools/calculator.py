"""A safe arithmetic evaluator: parse with `ast`, walk only the nodes we allow.

`eval` would run any Python a model writes; here a number, an operator, a
parenthesis or one of a few math functions is all an expression can contain.
Sizes are bounded so `9**9**9` cannot freeze the process.
"""

from __future__ import annotations

import ast
import math
import operator

from .registry import ToolError

MAX_EXPRESSION_CHARS = 200  # longer inputs are refused before parsing
MAX_EXPONENT = 1000  # |b| in a**b; bigger exponents are refused
MAX_MAGNITUDE = 1e100  # results beyond this are refused (no huge integers)

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "log": math.log,
    "log10": math.log10, "exp": math.exp, "abs": abs, "round": round, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _check(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError("the expression must produce a number")
    if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ToolError("the result is too large")
    return value


def _walk(node):
    if isinstance(node, ast.Expression):
        return _walk(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _check(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_walk(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponents above {MAX_EXPONENT} are not allowed")
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError("the result is too large") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_walk(a) for a in node.args]
        try:
            return _check(_FUNCTIONS[node.func.id](*args))
        except (ValueError, TypeError) as exc:
            raise ToolError(f"{node.func.id}: {exc}") from None
    allowed = "numbers, + - * / // % **, parentheses, pi, e and " + ", ".join(_FUNCTIONS)
    raise ToolError(f"unsupported element {ast.unparse(node)!r}; allowed: {allowed}")


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression, or a ToolError saying what is wrong."""
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not a valid arithmetic expression") from None
    value = _walk(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return round(value, 10) if isinstance(value, float) else value
