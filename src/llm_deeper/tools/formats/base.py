"""What every tool-call format says: how a call starts, how it ends, how to read one.

A model's output is text with calls inside it. A format answers three
questions, and `streaming.StreamingToolParser` does the rest for all formats:

- `start`: the marker that opens a call (`<tool_call>`), or None when a call
  is bare JSON at the start of the output (`bare_json`);
- `end`: the marker that closes a call (`</tool_call>`), or None when the
  call's JSON object closing brace ends it; `separator` joins calls;
- `parse_one(body)`: the call's JSON text → a ToolCall, or a
  `ToolCallParseError` saying what is wrong.
"""

from __future__ import annotations

import json
from typing import Iterable

from ..calls import ToolCall, compact_json


class ToolCallParseError(ValueError):
    """A call whose text cannot be read; the message says why (never a crash)."""


class ToolCallFormat:
    """Base class: subclasses set the class attributes and may override `parse_one`."""

    name: str = ""  # registry name of the format ("hermes", "llama3", "json")
    start: str | None = None  # marker opening a call
    end: str | None = None  # marker closing a call (None: the JSON object ends it)
    bare_json: bool = False  # a call may be a JSON object at the very start of the output
    bare_array: bool = False  # ... or a JSON array of call objects
    separator: str = "\n"  # written between calls by format_calls; also read between calls
    argument_keys: tuple[str, ...] = ("arguments",)  # key holding the arguments object, first = written

    def parse_one(self, body: str) -> ToolCall:
        """One call from its JSON text: {"name": ..., "<argument key>": {...}}."""
        try:
            value = json.loads(body, strict=False)  # raw control characters in strings: read them anyway
        except json.JSONDecodeError as exc:
            raise ToolCallParseError(f"tool call is not valid JSON ({exc.msg} at character {exc.pos}): {body[:200]!r}") from None
        return self.call_from_object(value)

    def call_from_object(self, value) -> ToolCall:
        """A ToolCall from the decoded JSON object of one call."""
        if not isinstance(value, dict):
            raise ToolCallParseError(f"tool call must be a JSON object, got {type(value).__name__}")
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise ToolCallParseError(f"tool call has no \"name\" string: {compact_json(value)[:200]}")
        key = next((k for k in self.argument_keys if k in value), None)
        arguments = {} if key is None or value[key] is None else value[key]
        if isinstance(arguments, str):  # some models write the arguments as a JSON string
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                raise ToolCallParseError(f"arguments of {name!r} are a string that is not JSON: {arguments[:200]!r}") from None
        if not isinstance(arguments, dict):
            raise ToolCallParseError(f"arguments of {name!r} must be a JSON object, got {compact_json(arguments)[:200]}")
        return ToolCall(name=name, arguments=arguments)

    def format_call(self, call: ToolCall) -> str:
        """The text of one call in this format (compact JSON)."""
        body = f'{{"name":{json.dumps(call.name, ensure_ascii=False)},"{self.argument_keys[0]}":{compact_json(call.arguments)}}}'
        return (self.start or "") + body + (self.end or "")

    def format_calls(self, calls: Iterable[ToolCall]) -> str:
        """The text of several calls, joined by the format's separator."""
        return self.separator.join(self.format_call(c) for c in calls)

    def parse(self, text: str, tool_names=None):
        """Content and calls of a whole output (same machine as streaming: same result)."""
        from ..streaming import StreamingToolParser, accumulate

        parser = StreamingToolParser(self, tool_names=tool_names)
        return accumulate(parser.feed(text) + parser.finish())

    def __repr__(self) -> str:
        return f"<tool-call format {self.name}>"
