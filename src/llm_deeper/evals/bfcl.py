"""The Berkeley Function Calling Leaderboard (BFCL v4) as an evaluation.

The `bfcl-eval` wheel (installed `--no-deps`) ships BFCL's question files and
possible answers. We score the non-live AST categories:

- `simple_python`: one function offered, one call expected;
- `multiple`: several offered, one call of the right one expected;
- `parallel`: one function, several calls in one turn (any order);
- `parallel_multiple`: several functions, several calls (any order);
- `irrelevance`: no offered function fits; any call is wrong.

BFCL's AST match, in our own code (its checker module imports every vendor
SDK through its model table, so it cannot be imported with `--no-deps`; the
tests check this module against it, with that table stubbed): the function
name; every required parameter present; no parameter the function or the
answer does not know; each value of the right Python type (an int passes for
a float) and among the allowed answers (strings compared without case, spaces
and `,./-_*^`); optional parameters absent only when the answer allows "".

BFCL writes schemas with Python type names ("dict", "float", "tuple", "any");
`openai_tools` maps them to JSON schema, and, as BFCL does for OpenAI-style
APIs, replaces the "." that OpenAI forbids in function names with "_".

BFCL is for evaluation only: never train on it or on anything derived from it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
# User-contributed questions the wheel also ships, scored by the same AST rules; reported for information
# (`--categories live` or by name), not part of 'all' or the speedrun's sample.
LIVE_CATEGORIES = ("live_simple", "live_multiple", "live_irrelevance")
KNOWN = CATEGORIES + LIVE_CATEGORIES
VERSION = "BFCL_v4"

# BFCL's type names → JSON schema types (BFCL's own table for OpenAI-style APIs).
JSON_TYPES = {"integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
              "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object", "tuple": "array",
              "any": "string"}
# ... and to the Python types its AST checker expects of a value.
PYTHON_TYPES = {"integer": int, "number": float, "float": float, "string": str, "boolean": bool, "bool": bool, "array": list,
                "list": list, "tuple": list, "dict": dict, "object": dict, "any": str}
NESTED = ("array", "tuple")  # types whose items are type-checked too (one level, as BFCL does)


@dataclass
class BfclItem:
    """One BFCL test case."""

    id: str  # BFCL's id, e.g. "simple_python_0"
    category: str  # one of KNOWN
    messages: list[dict]  # the user turn(s) of the question
    functions: list[dict]  # BFCL function documents (original names and type names)
    answers: list[dict] = field(default_factory=list)  # possible answers [{name: {param: [allowed, ...]}}]; [] for irrelevance


def data_dir() -> Path:
    """The folder of BFCL's data files inside the installed `bfcl-eval` wheel (found without importing it)."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("BFCL data not found: install it with `pip install --no-deps bfcl-eval` (`make venv` does)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (folder / f"{VERSION}_simple_python.json").is_file():
        raise UserError(f"{folder} has no {VERSION} question files; reinstall with `pip install --no-deps bfcl-eval==2026.3.23`")
    return folder


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_category(category: str, limit: int | None = None, seed: int = 0) -> list[BfclItem]:
    """The items of one category; with `limit`, a fixed random sample of that size (same seed, same sample)."""
    if category not in KNOWN:
        raise UserError(f"unknown BFCL category {category!r}; choose from {', '.join(KNOWN)}")
    folder = data_dir()
    questions = _lines(folder / f"{VERSION}_{category}.json")
    answers = {} if category.endswith("irrelevance") else {a["id"]: a["ground_truth"] for a in _lines(folder / "possible_answer" / f"{VERSION}_{category}.json")}
    items = [BfclItem(q["id"], category, list(q["question"][0]), q["function"], answers.get(q["id"], [])) for q in questions]
    if limit is not None and limit < len(items):
        picked = sorted(random.Random(f"{seed}:{category}").sample(range(len(items)), limit))
        items = [items[i] for i in picked]
    return items


def parse_categories(text: str) -> tuple[str, ...]:
    """'simple_python,irrelevance' → a tuple; 'all' = every category; unknown names are a UserError."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return CATEGORIES
    words = [c for w in words for c in (LIVE_CATEGORIES if w == "live" else [w])]
    unknown = [w for w in words if w not in KNOWN]
    if unknown or not words:
        raise UserError(f"unknown BFCL category {', '.join(unknown) or '(none)'}: choose from {', '.join(KNOWN)}, 'live' or 'all'")
    return tuple(dict.fromkeys(words))


# ── schemas ───────────────────────────────────────────────────────────────────

def served_name(name: str) -> str:
    """A BFCL function name as OpenAI-style APIs accept it ("math.factorial" → "math_factorial")."""
    return name.replace(".", "_")


def json_schema(schema: dict) -> dict:
    """A BFCL parameter schema with JSON-schema type names (recursively)."""
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = JSON_TYPES.get(value, "string")
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key == "optional":
            continue  # BFCL's own marker; "required" says the same in JSON schema
        else:
            out[key] = copy.deepcopy(value)
    return out


def openai_tools(functions: list[dict]) -> list[dict]:
    """BFCL function documents → OpenAI `tools`."""
    tools = []
    for function in functions:
        parameters = json_schema(function.get("parameters") or {"type": "dict", "properties": {}})
        parameters["type"] = "object"
        tools.append({"type": "function", "function": {"name": served_name(function["name"]), "description": function.get("description", ""),
                                                       "parameters": parameters}})
    return tools


# ── BFCL's AST match ──────────────────────────────────────────────────────────

def standardize(text: str) -> str:
    """How BFCL compares strings: no spaces or ,./-_*^, lower case, ' read as "."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _answer_type(allowed: list):
    """The Python type of the first non-empty allowed value (None when only "" is allowed)."""
    return next((type(value) for value in allowed if value != ""), None)


def _type_ok(value, allowed: list, expected: type, item_type: type | None) -> tuple[bool, bool]:
    """(type is acceptable, value stands for a variable name) for one parameter."""
    answer_type = _answer_type(allowed)
    variable = answer_type is not None and answer_type is not expected  # BFCL writes variables as strings
    if type(value) is expected:
        if item_type is None:
            return True, variable
        for candidate in allowed:  # nested: every item has the item type (an answer that is not a list, like "", passes)
            if not isinstance(candidate, list) or all(_type_ok(v, candidate, item_type, None)[0] for v in value):
                return True, variable
        return False, variable
    return (answer_type is not None and type(value) is answer_type), True


def _std(value):
    return standardize(value) if isinstance(value, str) else value


def _dict_ok(value: dict, allowed: list) -> bool:
    for answer in allowed:
        if answer == "":
            continue
        if all(key in answer and _std(item) in [_std(a) for a in answer[key]] for key, item in value.items()) and \
                all(key in value or "" in options for key, options in answer.items()):
            return True
    return False


def _value_ok(value, allowed: list, expected: type, item_type: type | None) -> bool:
    if expected is dict:
        return _dict_ok(value, allowed)
    # An optional answer "" reads as an empty list below, as in BFCL (it iterates over it).
    if expected is list and item_type is dict:
        return any(len(value) == len(answer) and all(_dict_ok(v, [a]) for v, a in zip(value, answer))
                   for answer in allowed if isinstance(answer, (list, str)))
    if expected is str:
        return standardize(value) in [standardize(a) for a in allowed if isinstance(a, str)]
    if expected is list:
        return [_std(v) for v in value] in [[_std(a) for a in answer] for answer in allowed if isinstance(answer, (list, str))]
    return value in allowed


def check_call(function: dict, name: str, arguments: dict, answer: dict) -> str:
    """"" when the call matches the answer {function name: {param: allowed}} by BFCL's rules, else why not."""
    expected_name, allowed_by_param = next(iter(answer.items()))
    if name != served_name(expected_name):
        return f"called {name!r}, expected {served_name(expected_name)!r}"
    if not isinstance(arguments, dict):
        return "arguments are not an object"
    properties = function["parameters"].get("properties", {})
    for param in function["parameters"].get("required", []):
        if param not in arguments:
            return f"missing required parameter {param!r}"
    for param, value in arguments.items():
        if param not in properties or param not in allowed_by_param:
            return f"unexpected parameter {param!r}"
        type_name = properties[param].get("type", "any")
        expected = PYTHON_TYPES.get(type_name, str)
        item_type = PYTHON_TYPES.get(properties[param].get("items", {}).get("type", "any"), str) if type_name in NESTED else None
        allowed = allowed_by_param[param]
        if type_name == "float" and type(value) is int:
            value = float(value)  # Python would accept an int for a float
        type_ok, variable = _type_ok(value, allowed, expected, item_type)
        if not type_ok:
            return f"{param!r} has type {type(value).__name__}, expected {type_name}"
        if variable:
            if value not in allowed:
                return f"{param!r}={value!r} is not among {allowed}"
        elif not _value_ok(value, allowed, expected, item_type):
            return f"{param!r}={value!r} is not among {allowed}"
    for param, allowed in allowed_by_param.items():
        if param not in arguments and "" not in allowed:
            return f"parameter {param!r} missing (the answer needs it)"
    return ""


def _function(item: BfclItem, name: str) -> dict | None:
    return next((f for f in item.functions if f["name"] == name), None)


def check_item(item: BfclItem, calls: list[tuple[str, dict]]) -> str:
    """"" when the calls (name, arguments) pass this item by BFCL's AST rules, else the first reason they do not."""
    if item.category.endswith("irrelevance"):
        return "" if not calls else f"called {calls[0][0]!r} although no function fits"
    if len(calls) != len(item.answers):
        return f"{len(calls)} call(s), expected {len(item.answers)}"
    if "parallel" not in item.category:
        answer = item.answers[0]
        return check_call(_function(item, next(iter(answer))), *calls[0], answer)
    used: set[int] = set()
    for answer in item.answers:  # each answer takes the first unused call that matches it (BFCL's order-free match)
        function = _function(item, next(iter(answer)))
        match = next((i for i, call in enumerate(calls) if i not in used and not check_call(function, *call, answer)), None)
        if match is None:
            return f"no call matches {next(iter(answer))!r} with its allowed arguments"
        used.add(match)
    return ""


def calls_of(tool_calls: list[dict]) -> list[tuple[str, dict]]:
    """OpenAI `tool_calls` → [(name, arguments object)] (arguments that are not a JSON object become {"": text})."""
    out = []
    for call in tool_calls:
        function = call.get("function", call)
        raw = function.get("arguments")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else (raw or {})
        except json.JSONDecodeError:
            arguments = {"": raw}  # never matches: BFCL cannot decode it either
        out.append((function.get("name", ""), arguments if isinstance(arguments, dict) else {"": raw}))
    return out
