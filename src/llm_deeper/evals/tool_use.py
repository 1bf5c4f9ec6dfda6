"""Tool-use accuracy: predicted vs expected OpenAI-shaped `tool_calls` lists.

A call is `{"type": "function", "function": {"name": ..., "arguments": "<json>"}}`
(the flat `{"name": ..., "arguments": ...}` is accepted too; arguments may be
a JSON string or an already-parsed object). Figures, per example:

- tool_call_decision  called a tool exactly when one was expected
- tool_no_call        on examples that expect no call: made none
- tool_selection      on examples that expect calls: the same multiset of tool names
- tool_args_exact     per expected call: a predicted call with that name and equal arguments
- tool_parallel_set   on examples that expect 2+ calls: the same set of calls, in any order
- tool_schema_valid   per predicted call: a known tool, arguments a JSON object valid for its schema
- tool_full_match     everything right (same calls in any order, or correctly no call)

Arguments compare as parsed JSON (key order and spacing do not matter; 1 equals 1.0).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

INVALID = object()  # arguments that are not valid JSON


@dataclass(frozen=True)
class Call:
    """One call, normalized."""

    name: str  # tool name
    arguments: Any  # parsed JSON, or INVALID

    def same_as(self, other: "Call") -> bool:
        return self.name == other.name and self.arguments is not INVALID and other.arguments is not INVALID and self.arguments == other.arguments


def parse_arguments(raw: Any) -> Any:
    """Parse a JSON string of arguments; objects pass through; bad JSON gives INVALID."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return INVALID
    return raw


def normalize_call(call: dict) -> Call:
    """An OpenAI tool call (nested or flat) as a `Call`."""
    function = call.get("function", call) if isinstance(call, dict) else {}
    return Call(name=str(function.get("name", "")), arguments=parse_arguments(function.get("arguments")))


def match_count(predicted: list[Call], expected: list[Call]) -> int:
    """How many expected calls find a distinct predicted call with the same name and arguments."""
    free = list(predicted)
    hits = 0
    for want in expected:
        for i, have in enumerate(free):
            if have.same_as(want):
                hits += 1
                del free[i]
                break
    return hits


def same_calls(predicted: list[Call], expected: list[Call]) -> bool:
    """Equal as multisets of (name, arguments): order does not matter."""
    return len(predicted) == len(expected) and match_count(predicted, expected) == len(expected)


def tool_schemas(tools: list[dict] | None) -> dict[str, dict]:
    """name -> JSON schema of the arguments, from an OpenAI `tools` list."""
    out = {}
    for tool in tools or []:
        function = tool.get("function", tool)
        if "name" in function:
            out[function["name"]] = function.get("parameters") or {"type": "object"}
    return out


def schema_valid(call: Call, schemas: dict[str, dict]) -> bool:
    """A known tool whose arguments are a JSON object that satisfies its schema."""
    import jsonschema

    if call.name not in schemas or call.arguments is INVALID or not isinstance(call.arguments, dict):
        return False
    schema = schemas[call.name]
    validator = jsonschema.validators.validator_for(schema)(schema)
    return validator.is_valid(call.arguments)


def scored_calls(tool_calls: list[dict] | None, text: str) -> list[dict]:
    """The calls a reply is scored on: its parsed calls, or one call that fits nothing where its text holds call markup.

    The server hands back as text a call it cannot parse (a tool that was not offered, broken
    JSON), as vLLM does; scored as no call, a reply calling a tool that was not offered counted
    as a correct no-call (unconstrained evals, `eval --free`).
    """
    from ..tools.render import CALL_START

    if tool_calls:
        return tool_calls
    return [{"name": "", "arguments": text}] if CALL_START in text else []


def tool_scores(predicted: list[dict] | None, expected: list[dict], tools: list[dict] | None = None) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py` (weight 0 = not applicable)."""
    pred = [normalize_call(c) for c in predicted or []]
    want = [normalize_call(c) for c in expected]
    scores: dict[str, tuple[float, float]] = {"tool_call_decision": (float(bool(pred) == bool(want)), 1.0)}
    if not want:
        scores["tool_no_call"] = (float(not pred), 1.0)
        scores["tool_full_match"] = (float(not pred), 1.0)
    else:
        scores["tool_selection"] = (float(Counter(c.name for c in pred) == Counter(c.name for c in want)), 1.0)
        scores["tool_args_exact"] = (match_count(pred, want) / len(want), float(len(want)))
        scores["tool_full_match"] = (float(same_calls(pred, want)), 1.0)
        if len(want) >= 2:
            scores["tool_parallel_set"] = (float(same_calls(pred, want)), 1.0)
    if tools is not None and pred:
        schemas = tool_schemas(tools)
        scores["tool_schema_valid"] = (sum(schema_valid(c, schemas) for c in pred) / len(pred), float(len(pred)))
    return scores
