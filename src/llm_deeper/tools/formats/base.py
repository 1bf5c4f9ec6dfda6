"""What every tool-call format says: how a call starts, how it ends, how to read one.

A model's output is text with calls inside it. A format answers three
questions; the rest is the same for all formats:

- `start`: the marker that opens a call (`<tool_call>`), or None when a call
  is bare JSON at the start of the output (`bare_json`);
- `end`: the marker that closes a call (`</tool_call>`), or None when the
  call's JSON object closing brace ends it; `separator` joins calls;
- `parse_one(body)`: the call's JSON text → a ToolCall, or a
  `ToolCallParseError` saying what is wrong.

`parse` reads a whole output; `streaming.StreamingToolParser` reads one piece
by piece. Both cut the text with the same `scan.CallScanner` and read each
call with `read_call`, so a stream added up equals the whole parse.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import Iterable

from ..calls import ParsedOutput, ToolCall, compact_json
from .json_text import ObjectText
from .scan import CallScanner


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
        body = body.strip()  # the scanner keeps the whitespace before the object with it
        if not body:
            raise ToolCallParseError(f"{self.start or 'a tool call'} was not followed by a JSON object")
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

    @cached_property
    def _header(self) -> re.Pattern:
        keys = "|".join(re.escape(k) for k in self.argument_keys)
        return re.compile(r'\s*\{\s*"name"\s*:\s*"([^"\\]*)"\s*,\s*"(?:' + keys + r')"\s*:')

    def header(self, body: str, tool_names=None) -> tuple[str, int] | None:
        """(name, where the arguments start) once a call's text opens `{"name": "...", "arguments":`
        and the name is one of the tools: a stream announces the call then. None before."""
        match = self._header.match(body)
        return (match[1], match.end()) if match and (tool_names is None or match[1] in tool_names) else None

    @staticmethod
    def streamed_arguments(body: str, head: tuple[str, int]) -> str:
        """What a stream sent of the arguments after the header: the object so far, compact ("" for no object)."""
        written = ObjectText()
        written.feed(body[head[1]:])
        return written.text

    def read_call(self, body: str, tool_names=None, cut: bool = False) -> ToolCall:
        """A call's text → the ToolCall its stream adds up to, or a ToolCallParseError saying why not.

        After an announced header the stream sent the arguments object as
        written, made compact; those win (with duplicate keys, JSON keeps the last).
        """
        if cut:
            what = "its JSON never closed (output cut off?)" if body.strip() else "no JSON object followed it"
            raise ToolCallParseError(f"a {self.name} tool call started but {what}")
        call = self.parse_one(body)
        if tool_names is not None and call.name not in tool_names:
            raise ToolCallParseError(f"the model called {call.name!r}, which is not one of the tools ({', '.join(sorted(tool_names))})")
        head = self.header(body, tool_names)
        streamed = self.streamed_arguments(body, head) if head else ""
        if streamed:
            return ToolCall(head[0], json.loads(streamed), arguments_json=streamed)
        return ToolCall(head[0], call.arguments) if head else call

    def parse(self, text: str, tool_names=None, keep_cut: bool = False) -> ParsedOutput:
        """Content and calls of a whole output; unreadable calls become errors, never exceptions.

        `keep_cut`: keep a call the output ended inside (max_tokens) with its
        partial arguments text, as a streaming client has it; the server's
        non-streamed reply does this so both modes agree (OpenAI does the same).
        """
        out, content, opening, body = ParsedOutput(), [], "", ""
        scanner = CallScanner(self)
        for kind, value in scanner.feed(text) + scanner.finish():
            if kind == "text":
                content.append(value)
            elif kind == "call":
                opening, body = value, ""
            elif kind == "body":
                body += value
            else:  # "end" or "cut"
                head = self.header(body, tool_names)
                try:
                    out.calls.append(self.read_call(body, tool_names, cut=kind == "cut"))
                except ToolCallParseError as exc:
                    out.errors.append(str(exc))
                    if head is None:  # a stream had not announced it: its text was content
                        content.append(opening + body)
                    elif kind == "cut" and keep_cut:
                        out.calls.append(ToolCall(head[0], {}, arguments_json=self.streamed_arguments(body, head)))
        out.content = "".join(content)
        return out

    def __repr__(self) -> str:
        return f"<tool-call format {self.name}>"
