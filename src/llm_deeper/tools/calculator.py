"""A safe arithmetic evaluator: one pattern for the form, `ast` for the structure, bounds on every operation.

`eval` would run any Python a model writes; here a number, an operator, a
parenthesis or one of a few math functions is all an expression can contain.

The form is one regular expression, `PATTERN`: the calculator tool's schema
carries it (so a grammar-constrained model can only write expressions of this
form) and `evaluate` checks it first, so the schema and the evaluator accept
the same tokens in the same order: "17 * 23," (a trailing comma) fails both.
A regular expression cannot count parentheses, so balance and the number of
arguments of a function are the evaluator's to check (`FormError`).

Every operation is bounded before it runs, so valid-looking input cannot
freeze the process: exponents and the size of a power are checked before the
power is computed, `round` takes at most `MAX_ROUND_DIGITS` digits, factorials
stop at `MAX_FACTORIAL`, and every intermediate result stays within
`MAX_MAGNITUDE`.
"""

from __future__ import annotations

import ast
import math
import operator
import re

from .registry import ToolError

MAX_EXPRESSION_CHARS = 120  # a bound like the ones on values (a pattern cannot carry it: xgrammar drops maxLength beside one)
MAX_EXPONENT = 1000  # |b| in a**b; bigger exponents are refused
MAX_MAGNITUDE = 1e100  # every intermediate value stays within this (no huge integers)
MAX_ROUND_DIGITS = 15  # round(x, n) needs |n| <= 15 (a float has ~16 significant digits)
MAX_FACTORIAL = 69  # 69! < 1e100 < 70!


class FormError(ToolError):
    """The text is not an expression of the calculator's language (as opposed to a value error like 1 / 0).

    `reason` says which rule it broke: pattern (the schema's regular
    expression; an empty text fails it too) | balance | comma | arity (what a
    regular expression cannot count) | length (the size bound).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _rounded(x, digits=None):
    if digits is None:
        return round(x)
    if isinstance(digits, float) or not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        raise ToolError(f"round: the digits must be a whole number from {-MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")
    return round(x, digits)


def _factorial(n):
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or not 0 <= n <= MAX_FACTORIAL:
        raise ToolError(f"factorial: needs a whole number from 0 to {MAX_FACTORIAL}")
    return math.factorial(n)


def _extreme(pick):
    def choose(*values):
        return pick(values)
    return choose


_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
# name -> (function, fewest arguments, most arguments)
_FUNCTIONS = {
    "sqrt": (math.sqrt, 1, 1), "sin": (math.sin, 1, 1), "cos": (math.cos, 1, 1), "tan": (math.tan, 1, 1),
    "log": (math.log, 1, 2), "log10": (math.log10, 1, 1), "exp": (math.exp, 1, 1), "abs": (abs, 1, 1),
    "round": (_rounded, 1, 2), "min": (_extreme(min), 1, 20), "max": (_extreme(max), 1, 20),
    "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1), "factorial": (_factorial, 1, 1),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _pattern() -> str:
    """The calculator's form as a JSON-schema (ECMA and Python) regular expression.

    An operand is opening parentheses (each optionally a function name, each
    optionally negated), a number or constant (optionally negated), then
    closing parentheses; operands are joined by operators or commas; spaces
    may follow any token.
    """
    names = "|".join(sorted(_FUNCTIONS, key=lambda n: (-len(n), n)))
    space = " *"
    opening = rf"(-{space})?({names})?\({space}"
    value = rf"(-{space})?([0-9]+(\.[0-9]*)?|\.[0-9]+|pi|e){space}"
    operand = rf"({opening})*{value}(\){space})*"
    joiner = rf"(\*\*|//|[-+*/%^,]){space}"
    return rf"^{space}{operand}({joiner}{operand})*$"


PATTERN = _pattern()
_FORM = re.compile(PATTERN)
ALLOWED = "numbers, + - * / // % ** ^, parentheses, pi, e and " + ", ".join(_FUNCTIONS)


def pattern_accepts(expression: str) -> bool:
    """Whether the schema accepts the text (jsonschema's way: re.search)."""
    return _FORM.search(expression) is not None


def _check(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError("the expression must produce a number")
    if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ToolError(f"the result is too large (the limit is {MAX_MAGNITUDE:.0e})")
    return value


def _power(base, exponent):
    """base ** exponent, refused before computing when the result would be too large."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponents above {MAX_EXPONENT} are not allowed")
    if base != 0 and abs(base) != 1:
        # log10 of the result, estimated before the (possibly huge) power is computed
        size = exponent * math.log10(abs(base))
        if size > math.log10(MAX_MAGNITUDE) + 1:
            raise ToolError(f"the result is too large (the limit is {MAX_MAGNITUDE:.0e})")
    if base == 0 and exponent < 0:
        raise ToolError("division by zero (0 to a negative power)")
    value = base ** exponent
    if isinstance(value, complex):
        raise ToolError("a negative number to a fractional power has no real value")
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
        try:
            if isinstance(node.op, ast.Pow):
                return _check(_power(left, right))
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError:
            raise ToolError("division by zero") from None
        except OverflowError:
            raise ToolError(f"the result is too large (the limit is {MAX_MAGNITUDE:.0e})") from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        function = _FUNCTIONS[node.func.id][0]
        args = [_walk(a) for a in node.args]
        try:
            return _check(function(*args))
        except ZeroDivisionError:
            raise ToolError(f"{node.func.id}: division by zero") from None
        except OverflowError:
            raise ToolError(f"{node.func.id}: the result is too large (the limit is {MAX_MAGNITUDE:.0e})") from None
        except (ValueError, TypeError) as exc:
            raise ToolError(f"{node.func.id}: {exc}") from None
    raise FormError(f"unsupported element {ast.unparse(node)[:40]!r}; allowed: {ALLOWED}", "element")


def _check_form(node) -> None:
    """Raise a FormError if the tree holds anything but the calculator's elements, or a call with the wrong arity."""
    if isinstance(node, ast.Expression):
        return _check_form(node.body)
    if isinstance(node, ast.Tuple):
        raise FormError("a comma may only separate the arguments of a function, e.g. round(2.345, 2)", "comma")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        _, fewest, most = _FUNCTIONS[node.func.id]
        if not fewest <= len(node.args) <= most:
            count = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            raise FormError(f"{node.func.id} takes {count} argument{'s' if most > 1 else ''}, got {len(node.args)}", "arity")
        for arg in node.args:
            _check_form(arg)
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_form(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check_form(node.left)
        return _check_form(node.right)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return
    raise FormError(f"unsupported element {ast.unparse(node)[:40]!r}; allowed: {ALLOWED}", "element")


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def parse(expression: str) -> ast.Expression:
    """The syntax tree of an expression of the calculator's language, or a FormError saying what is wrong."""
    if not expression.strip():
        raise FormError("the expression is empty", "pattern")
    shown = repr(expression) if len(expression) <= 60 else repr(expression[:60]) + "…"
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise FormError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters", "length")
    if not _FORM.search(expression):
        raise FormError(f"{shown} is not an arithmetic expression the calculator reads; allowed: {ALLOWED}", "pattern")
    if not _balanced(expression):
        raise FormError(f"{shown}: the parentheses are not balanced", "balance")
    # "^" means power; leading zeros ("007") are plain numbers here, not Python's syntax error.
    text = re.sub(r"(?<![0-9.])0+(?=[0-9])", "", expression.strip().replace("^", "**"))
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise FormError(f"{shown} is not a valid expression", "syntax") from None
    _check_form(tree)
    return tree


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression, or a ToolError saying what is wrong."""
    value = _walk(parse(expression))
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return round(value, 10) if isinstance(value, float) else value
