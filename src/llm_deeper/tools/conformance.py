"""Tool-calling conformance suite for any OpenAI-compatible server.

`llm-deeper tools conformance --base-url URL` runs these checks with the
official `openai` client and prints a pass/fail table. They cover what breaks
most often in real servers: streamed calls that do not add up to the
non-streamed ones, parameterless tools losing their "{}", wrong indexes of
parallel calls, finish_reason, each tool_choice mode, and errors for bad
requests. Requests are greedy (temperature 0, fixed seed) so the streamed and
non-streamed answers can be compared; the tools use enums and small integer
ranges so even a tiny random model finishes its calls quickly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

import jsonschema

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "enum": ["Paris", "Tokyo", "London"], "description": "City name."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "add", "description": "Add two small integers.",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "minimum": 0, "maximum": 99}, "b": {"type": "integer", "minimum": 0, "maximum": 99}},
            "required": ["a", "b"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "get_current_time", "description": "Current time in UTC. Takes no arguments.",
        "parameters": {"type": "object", "properties": {}}}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "system", "content": "You are a helpful assistant."},
       {"role": "user", "content": "What is the weather in Paris in celsius?"}]


@dataclass
class CheckResult:
    name: str  # what was checked
    passed: bool
    detail: str  # what was seen (short)
    seconds: float = 0.0


class CheckFailed(AssertionError):
    """A check's expectation that did not hold; its message is the detail shown."""


def expect(condition: bool, detail: str) -> None:
    if not condition:
        raise CheckFailed(detail)


@dataclass
class Streamed:
    """A streamed response added up the way a client does it."""

    content: str
    calls: list[dict]  # [{"index", "id", "name", "arguments"}] in index order
    finish_reason: str | None
    first_deltas: dict  # index → the first delta seen for that call (must carry id and name)


class Conformance:
    """The checks, against one server and model."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str = "not-needed", max_tokens: int = 400, timeout_s: float = 300) -> None:
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self.model = model
        self.max_tokens = max_tokens

    # ── requests ──────────────────────────────────────────────────────────────

    def create(self, messages=ASK, **kwargs):
        params = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0, "seed": 0, "tools": TOOLS}
        params.update(kwargs)
        return self.client.chat.completions.create(**params)

    def stream(self, messages=ASK, **kwargs) -> Streamed:
        content, calls, first, finish = [], {}, {}, None
        for chunk in self.create(messages, stream=True, **kwargs):
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            delta = choice.delta
            if delta.content:
                content.append(delta.content)
            for item in delta.tool_calls or []:
                entry = calls.setdefault(item.index, {"index": item.index, "id": None, "name": "", "arguments": ""})
                first.setdefault(item.index, item)
                if item.id:
                    entry["id"] = item.id
                if item.function and item.function.name:
                    entry["name"] += item.function.name
                if item.function and item.function.arguments:
                    entry["arguments"] += item.function.arguments
        return Streamed("".join(content), [calls[i] for i in sorted(calls)], finish, first)

    @staticmethod
    def calls_of(response) -> list[dict]:
        message = response.choices[0].message
        return [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls or []]

    @staticmethod
    def valid_call(call: dict, allowed=None) -> None:
        expect(call["name"] in (allowed or SCHEMAS), f"called unknown tool {call['name']!r}")
        try:
            arguments = json.loads(call["arguments"])
        except (TypeError, json.JSONDecodeError):
            raise CheckFailed(f"arguments of {call['name']} are not JSON: {call['arguments']!r}") from None
        try:
            jsonschema.validate(arguments, SCHEMAS[call["name"]])
        except jsonschema.ValidationError as exc:
            raise CheckFailed(f"arguments of {call['name']} break its schema: {exc.message}") from None

    # ── checks ────────────────────────────────────────────────────────────────

    def check_required(self) -> str:
        response = self.create(tool_choice="required", parallel_tool_calls=False)
        calls = self.calls_of(response)
        expect(len(calls) == 1, f"expected exactly one call with parallel_tool_calls=false, got {len(calls)}")
        self.valid_call(calls[0])
        expect(response.choices[0].finish_reason == "tool_calls", f"finish_reason {response.choices[0].finish_reason!r}, expected 'tool_calls'")
        expect(bool(calls[0]["id"]), "tool call has no id")
        return f"{calls[0]['name']}({calls[0]['arguments']})"

    def check_named(self) -> str:
        response = self.create(tool_choice={"type": "function", "function": {"name": "add"}}, parallel_tool_calls=False)
        calls = self.calls_of(response)
        expect(len(calls) == 1 and calls[0]["name"] == "add", f"expected one call of 'add', got {[c['name'] for c in calls]}")
        self.valid_call(calls[0])
        expect(response.choices[0].finish_reason == "tool_calls", f"finish_reason {response.choices[0].finish_reason!r}")
        return f"add({calls[0]['arguments']})"

    def check_parameterless(self) -> str:
        choice = {"type": "function", "function": {"name": "get_current_time"}}
        calls = self.calls_of(self.create(tool_choice=choice, parallel_tool_calls=False))
        expect(len(calls) == 1 and calls[0]["name"] == "get_current_time", f"expected get_current_time, got {calls}")
        expect(calls[0]["arguments"] == "{}", f"non-streamed arguments {calls[0]['arguments']!r}, expected '{{}}'")
        streamed = self.stream(tool_choice=choice, parallel_tool_calls=False)
        expect(len(streamed.calls) == 1 and streamed.calls[0]["arguments"] == "{}",
               f"streamed arguments {[c['arguments'] for c in streamed.calls]!r}, expected ['{{}}']")
        return 'arguments "{}" streamed and not'

    def check_auto(self) -> str:
        response = self.create(tool_choice="auto")
        calls, finish = self.calls_of(response), response.choices[0].finish_reason
        for call in calls:
            self.valid_call(call)
        if calls:
            expect(finish == "tool_calls", f"{len(calls)} call(s) but finish_reason {finish!r}")
        else:
            expect(finish in ("stop", "length"), f"no calls but finish_reason {finish!r}")
            expect(response.choices[0].message.content is not None, "no calls and no content")
        return f"{len(calls)} call(s), finish_reason {finish}"

    def check_none(self) -> str:
        response = self.create(tool_choice="none")
        expect(not response.choices[0].message.tool_calls, "tool_choice 'none' returned tool calls")
        expect(response.choices[0].finish_reason in ("stop", "length"), f"finish_reason {response.choices[0].finish_reason!r}")
        return f"text only, finish_reason {response.choices[0].finish_reason}"

    def check_stream_equals_whole(self) -> str:
        seen = []
        for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
            whole = self.create(tool_choice=choice, parallel_tool_calls=False)
            streamed = self.stream(tool_choice=choice, parallel_tool_calls=False)
            a = [(c["name"], json.loads(c["arguments"])) for c in self.calls_of(whole)]
            b = [(c["name"], json.loads(c["arguments"] or "null")) for c in streamed.calls]
            expect(a == b, f"streamed {b} != non-streamed {a}")
            raw_a = [c["arguments"] for c in self.calls_of(whole)]
            raw_b = [c["arguments"] for c in streamed.calls]
            expect(raw_a == raw_b, f"argument strings differ: streamed {raw_b} vs {raw_a}")
            finish = whole.choices[0].finish_reason
            expect(streamed.finish_reason == finish, f"finish_reason streamed {streamed.finish_reason!r} vs non-streamed {finish!r}")
            expect(finish == "tool_calls", f"finish_reason {finish!r} in both, expected 'tool_calls' for a forced call")
            seen.append(f"{a[0][0]}")
        return "equal for " + ", ".join(seen)

    def check_stream_delta_shape(self) -> str:
        streamed = self.stream(tool_choice="required", parallel_tool_calls=True)
        expect(bool(streamed.calls), "no tool calls streamed")
        for index, delta in streamed.first_deltas.items():
            expect(bool(delta.id), f"first delta of call {index} has no id")
            expect(bool(delta.function and delta.function.name), f"first delta of call {index} has no function name")
        ids = [c["id"] for c in streamed.calls]
        expect(len(set(ids)) == len(ids), f"duplicate call ids {ids}")
        return f"{len(streamed.calls)} call(s), id and name first"

    def check_length_cut(self) -> str:
        """max_tokens ends the reply inside a call: streamed and non-streamed replies are the same, finish_reason "length"."""
        # 16 tokens cannot hold a whole get_weather call in any tokenizer we know, so the cut lands
        # inside the call (in its header or its arguments, depending on the tokenizer).
        kwargs = {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False, "max_tokens": 16}
        whole = self.create(**kwargs)
        streamed = self.stream(**kwargs)
        finish = whole.choices[0].finish_reason
        expect(finish == "length" and streamed.finish_reason == "length",
               f"finish_reason non-streamed {finish!r}, streamed {streamed.finish_reason!r}; expected 'length' for both")
        calls = [(c["name"], c["arguments"]) for c in self.calls_of(whole)]
        streamed_calls = [(c["name"], c["arguments"]) for c in streamed.calls]
        expect(calls == streamed_calls, f"non-streamed calls {calls} != streamed {streamed_calls}")
        content = whole.choices[0].message.content or ""
        expect(content == streamed.content, f"non-streamed content {content!r} != streamed {streamed.content!r}")
        expect(bool(calls or content), "the reply was cut but carries neither the partial call nor its text")
        return f"partial call {calls[0][0]}({calls[0][1]}) in both" if calls else f"text {content!r} in both"

    def check_parallel_indexes(self) -> str:
        messages = ASK[:1] + [{"role": "user", "content": "Weather in Paris and in Tokyo, in celsius?"}]
        response = self.create(messages, tool_choice="required", parallel_tool_calls=True)
        calls = self.calls_of(response)
        finish = response.choices[0].finish_reason
        expect(bool(calls), "no tool calls")
        for call in calls:
            self.valid_call(call)
        expect(len({c["id"] for c in calls}) == len(calls), "duplicate ids")
        streamed = self.stream(messages, tool_choice="required", parallel_tool_calls=True)
        expect([c["index"] for c in streamed.calls] == list(range(len(streamed.calls))),
               f"streamed indexes {[c['index'] for c in streamed.calls]} are not 0..n-1")
        expect(len(streamed.calls) == len(calls), f"{len(streamed.calls)} streamed calls vs {len(calls)} non-streamed")
        return f"{len(calls)} call(s), indexes 0..{len(calls) - 1}, finish_reason {finish}"

    def check_history(self) -> str:
        history = ASK + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}},
                {"id": "call_1", "type": "function", "function": {"name": "get_current_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": '{"temperature":11,"condition":"light rain"}'},
            {"role": "tool", "tool_call_id": "call_1", "content": "2026-11-28T12:00:00Z"},
        ]
        response = self.create(history, tool_choice="none", max_tokens=32)
        expect(response.choices[0].message.content is not None, "no answer after tool results")
        return f"answered: {response.choices[0].message.content[:40]!r}"

    def _expect_400(self, **kwargs) -> str:
        from openai import BadRequestError, UnprocessableEntityError

        try:
            self.create(**kwargs)
        except (BadRequestError, UnprocessableEntityError) as exc:
            return f"HTTP {exc.status_code}"
        raise CheckFailed("the server accepted the request")

    def check_bad_schema(self) -> str:
        bad = [{"type": "function", "function": {"name": "broken", "parameters": {"type": "object", "properties": {"x": {"type": "integr"}}}}}]
        return self._expect_400(tools=bad, tool_choice="required")

    def check_unknown_named_tool(self) -> str:
        return self._expect_400(tool_choice={"type": "function", "function": {"name": "not_a_tool"}})

    CHECKS: list[tuple[str, str]] = [
        ("tool_choice required: one valid call, finish_reason tool_calls", "check_required"),
        ("tool_choice named: calls that function", "check_named"),
        ("parameterless tool: arguments \"{}\"", "check_parameterless"),
        ("tool_choice auto: valid calls or text, matching finish_reason", "check_auto"),
        ("tool_choice none: no calls", "check_none"),
        ("streamed calls add up to the non-streamed ones", "check_stream_equals_whole"),
        ("streamed deltas: id and name first, unique ids", "check_stream_delta_shape"),
        ("max_tokens inside a call: streamed = non-streamed, finish_reason length", "check_length_cut"),
        ("parallel calls: indexes 0..n-1, unique ids", "check_parallel_indexes"),
        ("history with tool_calls and tool messages", "check_history"),
        ("invalid tool schema: HTTP 400", "check_bad_schema"),
        ("named tool not in tools: HTTP 400", "check_unknown_named_tool"),
    ]

    def run(self, on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
        """Every check; a check that raises anything fails with the error as its detail."""
        if self.model is None:
            self.model = self.client.models.list().data[0].id
        results = []
        for title, method in self.CHECKS:
            start = time.perf_counter()
            try:
                detail, passed = getattr(self, method)(), True
            except CheckFailed as exc:
                detail, passed = str(exc), False
            except Exception as exc:  # a server error or a client exception is a failed check, with its reason
                detail, passed = f"{type(exc).__name__}: {str(exc)[:200]}", False
            result = CheckResult(title, passed, detail, time.perf_counter() - start)
            results.append(result)
            if on_result:
                on_result(result)
        return results
