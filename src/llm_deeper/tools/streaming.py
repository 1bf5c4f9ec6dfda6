"""Streaming tool-call parser: text pieces in, OpenAI deltas out.

Feed the model's text as it arrives; get back events:

- `ContentDelta(text)`: ordinary assistant text;
- `ToolCallDelta(index, id, name, arguments)`: the first delta of a call carries
  its index, id and function name (arguments ""), the next ones carry argument
  fragments, exactly as OpenAI streams `delta.tool_calls`;
- `ToolCallError(message, index)`: a call that could not be read. A call not
  announced yet falls back to content (its text is sent as content); one
  already announced gets the error with its index. Nothing raises.

`formats.scan.CallScanner` separates plain text from call text; a call is
announced once its name is readable (`ToolCallFormat.header`) and its
arguments go out as `formats.json_text.ObjectText` writes them; when its JSON
closes, `ToolCallFormat.read_call` reads it as the whole-text parse does and
the rest is sent. So `accumulate` of any split equals `ToolCallFormat.parse`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable

from .calls import ParsedOutput, ToolCall, new_call_id
from .formats import ToolCallFormat, ToolCallParseError, get_format
from .formats.json_text import ObjectText
from .formats.scan import CallScanner


@dataclass
class ContentDelta:
    text: str  # assistant text to append


@dataclass
class ToolCallDelta:
    index: int  # position of the call in this message's tool_calls
    id: str | None = None  # set on the call's first delta only
    name: str | None = None  # set on the call's first delta only
    arguments: str = ""  # argument text to append

    def to_openai(self) -> dict:
        """One item of `choices[0].delta.tool_calls`."""
        head = {"id": self.id, "type": "function"} if self.id is not None else {}
        name = {"name": self.name} if self.name is not None else {}
        return {"index": self.index, **head, "function": {**name, "arguments": self.arguments}}


@dataclass
class ToolCallError:
    message: str  # what was wrong, for logs and for the agent's error message
    index: int | None = None  # the call's index when its header was already sent
    cut: bool = False  # the output ended inside the call (max_tokens): its deltas so far are a partial call


Event = ContentDelta | ToolCallDelta | ToolCallError


def accumulate(events: Iterable[Event], keep_cut: bool = False) -> ParsedOutput:
    """Add deltas up (what a client does with a stream). Calls with an error are dropped.

    `keep_cut`: keep an announced call the output ended inside (max_tokens) with
    its partial arguments text, as a client has it (`ToolCallFormat.parse` has the same switch).
    """
    out, content, calls, dropped, kept = ParsedOutput(), [], {}, set(), set()
    for event in events:
        if isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, ToolCall("", arguments_json=""))
            if event.name is not None:
                call.name, call.id = event.name, event.id or new_call_id()
            call.arguments_json += event.arguments
        else:
            out.errors.append(event.message)
            if event.index is not None:
                (kept if event.cut and keep_cut else dropped).add(event.index)
    out.content = "".join(content)
    for index in sorted(calls.keys() - dropped):
        call = calls[index]
        if index not in kept:  # a kept cut call is partial JSON: its text is what the client got, no object
            call.arguments_json = call.arguments_json or "{}"
            call.arguments = json.loads(call.arguments_json, strict=False)
        out.calls.append(call)
    return out


class StreamingToolParser:
    """Incremental parser for one assistant message in one format."""

    def __init__(self, fmt: str | ToolCallFormat = "hermes", tool_names: Iterable[str] | None = None,
                 id_factory: Callable[[], str] = new_call_id) -> None:
        self.fmt = get_format(fmt)
        self.tool_names = set(tool_names) if tool_names is not None else None  # None: any name
        self.id_factory = id_factory
        self.scanner = CallScanner(self.fmt)
        self.announced = 0  # calls announced so far: the next one's index
        self.opening = self.body = ""  # the call being read: what opened it, its JSON so far
        self.index: int | None = None  # its index once announced
        self.arguments = ObjectText()  # its arguments, as sent

    def feed(self, text: str) -> list[Event]:
        """Events made available by this piece of text."""
        return self._events(self.scanner.feed(text))

    def finish(self) -> list[Event]:
        """Events for the end of the output (flushes held text, reports a cut-off call)."""
        return self._events(self.scanner.finish())

    def _events(self, pieces: list[tuple[str, str]]) -> list[Event]:
        events: list[Event] = []
        for kind, value in pieces:
            if kind == "text":
                events.append(ContentDelta(value))
            elif kind == "call":
                self.opening, self.body, self.index, self.arguments = value, "", None, ObjectText()
            elif kind == "body":
                events += self._grow(value)
            else:
                events += self._close(cut=kind == "cut")
        return [e for e in events if not (isinstance(e, ToolCallDelta) and e.name is None and not e.arguments)]

    def _grow(self, fragment: str) -> list[Event]:
        """More of the call's JSON: announce it once its name is readable, then send its arguments as they come."""
        self.body += fragment
        if self.index is None:
            head = self.fmt.header(self.body, self.tool_names)
            if head is None:
                return []
            return [self._announce(head[0]), self._arguments(self.body[head[1]:])]
        return [self._arguments(fragment)]

    def _arguments(self, raw: str) -> ToolCallDelta:
        sent = len(self.arguments.text)
        self.arguments.feed(raw)
        return ToolCallDelta(self.index, arguments=self.arguments.text[sent:])

    def _announce(self, name: str) -> ToolCallDelta:
        self.index, self.announced = self.announced, self.announced + 1
        return ToolCallDelta(self.index, id=self.id_factory(), name=name)

    def _close(self, cut: bool) -> list[Event]:
        """The call's JSON closed (or the output ended inside it): read it whole, send what is missing."""
        try:
            call = self.fmt.read_call(self.body, self.tool_names, cut=cut)
        except ToolCallParseError as exc:
            if self.index is None:  # never announced: its text was content after all
                return [ToolCallError(str(exc)), ContentDelta(self.opening + self.body)]
            return [ToolCallError(str(exc), self.index, cut)]
        events: list[Event] = [self._announce(call.name)] if self.index is None else []
        return events + [ToolCallDelta(self.index, arguments=call.arguments_json[len(self.arguments.text):])]
