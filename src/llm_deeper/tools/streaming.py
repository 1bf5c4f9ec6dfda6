"""Streaming tool-call parser: text pieces in, OpenAI deltas out.

Feed the model's text as it arrives; get back events:

- `ContentDelta(text)`: ordinary assistant text;
- `ToolCallDelta(index, id, name, arguments)`: the first delta of a call carries
  its index, id and function name (arguments ""), the next ones carry argument
  fragments, exactly as OpenAI streams `delta.tool_calls`;
- `ToolCallError(message, index)`: a call that could not be read. A call whose
  header was not sent yet falls back to content (its text is sent as content);
  one already announced gets the error with its index. Nothing raises.

The same machine parses whole outputs (`ToolCallFormat.parse`), so a stream
accumulated with `accumulate` equals the whole-text result by construction;
the tests check that any split of the text gives the same events' sum.

Content rules, the same for every format: whitespace right before a call,
right after a call, and at the end of the output is dropped. Argument text
is the model's JSON with the whitespace outside strings removed (compact JSON,
which is what constrained decoding produces anyway).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .calls import ToolCall, new_call_id
from .formats import ToolCallFormat, ToolCallParseError, get_format


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
        out: dict = {"index": self.index}
        function: dict = {"arguments": self.arguments}
        if self.id is not None:
            out["id"] = self.id
            out["type"] = "function"
        if self.name is not None:
            function = {"name": self.name, "arguments": self.arguments}
        out["function"] = function
        return out


@dataclass
class ToolCallError:
    message: str  # what was wrong, for logs and for the agent's error message
    index: int | None = None  # the call's index when its header was already sent
    cut: bool = False  # the output ended inside the call (max_tokens): its deltas so far are a partial call


Event = ContentDelta | ToolCallDelta | ToolCallError


@dataclass
class ParsedOutput:
    """The sum of a stream: what a non-streamed response carries."""

    content: str = ""  # assistant text outside calls
    calls: list[ToolCall] = field(default_factory=list)  # readable calls, in index order
    errors: list[str] = field(default_factory=list)  # why some call text was not a call

    def to_openai_message(self) -> dict:
        """An OpenAI assistant message: content None when there are only calls, a string otherwise."""
        message: dict = {"role": "assistant", "content": self.content or (None if self.calls else "")}
        if self.calls:
            message["tool_calls"] = [c.to_openai() for c in self.calls]
        return message


def accumulate(events: Iterable[Event], keep_cut: bool = False) -> ParsedOutput:
    """Add deltas up (what a client does with a stream). Calls with an error are dropped.

    `keep_cut`: keep an announced call the output ended inside (max_tokens), with
    its partial argument text, as a streaming client has it; the server's
    non-streamed reply does this so both modes agree (OpenAI does the same).
    """
    out = ParsedOutput()
    content: list[str] = []
    headers: dict[int, tuple[str, str]] = {}
    arguments: dict[int, list[str]] = {}
    broken: set[int] = set()
    cut: set[int] = set()
    for event in events:
        if isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ToolCallDelta):
            if event.name is not None:
                headers[event.index] = (event.id or new_call_id(), event.name)
            arguments.setdefault(event.index, []).append(event.arguments)
        else:
            out.errors.append(event.message)
            if event.index is not None:
                (cut if event.cut and keep_cut else broken).add(event.index)
    out.content = "".join(content)
    for index in sorted(headers):
        if index in broken:
            continue
        call_id, name = headers[index]
        raw = "".join(arguments.get(index, []))
        if index in cut:  # partial JSON: the text is what the client got, there is no object to parse
            out.calls.append(ToolCall(name=name, arguments={}, id=call_id, arguments_json=raw))
            continue
        raw = raw or "{}"
        out.calls.append(ToolCall(name=name, arguments=json.loads(raw, strict=False), id=call_id, arguments_json=raw))
    return out


_WS = " \t\r\n"


def _held_suffix(text: str, marker: str | None) -> int:
    """Length of the longest end of `text` that could still grow into `marker`."""
    if not marker:
        return 0
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


class StreamingToolParser:
    """Incremental parser for one assistant message in one format."""

    def __init__(self, fmt: str | ToolCallFormat = "hermes", tool_names: Iterable[str] | None = None,
                 id_factory: Callable[[], str] = new_call_id) -> None:
        self.fmt = get_format(fmt)
        self.tool_names = set(tool_names) if tool_names is not None else None  # None: any name
        self.id_factory = id_factory
        keys = "|".join(re.escape(k) for k in self.fmt.argument_keys)
        # A call's opening: {"name":"...","arguments": (any spacing); names stream first.
        self._header = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:' + keys + r')"\s*:\s*')
        self._events: list[Event] = []
        self._state = "content"  # content | wait_body | body | after_body
        self._buf = ""  # undecided text (content state) or text after a call
        self._bare_ok = self.fmt.bare_json  # bare JSON may still open a call (nothing written yet)
        self._after_call = False  # whitespace here follows a call: drop it
        self._in_array = False  # inside a bare JSON array of calls
        self._opening = ""  # text that opened the current call (sent as content if it fails)
        self._index = 0  # index of the next announced call
        self._reset_body()

    # ── public API ────────────────────────────────────────────────────────────

    def feed(self, text: str) -> list[Event]:
        """Events made available by this piece of text."""
        for char in text:
            self._step(char)
        self._drain_content(final=False)
        return self._take()

    def finish(self) -> list[Event]:
        """Events for the end of the output (flushes held text, reports cut-off calls)."""
        if self._state == "content":
            self._drain_content(final=True)
        elif self._state in ("wait_body", "body"):
            what = "no JSON object followed it" if self._state == "wait_body" else "its JSON never closed (output cut off?)"
            self._fail(f"a {self.fmt.name} tool call started but {what}", cut=True)
        self._state = "content"
        self._buf = ""
        return self._take()

    # ── the machine ───────────────────────────────────────────────────────────

    def _take(self) -> list[Event]:
        """Pending events with neighbouring deltas of the same kind merged."""
        merged: list[Event] = []
        for event in self._events:
            last = merged[-1] if merged else None
            if isinstance(event, ContentDelta) and isinstance(last, ContentDelta):
                last.text += event.text
            elif (isinstance(event, ToolCallDelta) and isinstance(last, ToolCallDelta) and event.name is None
                  and last.index == event.index):
                last.arguments += event.arguments
            else:
                merged.append(event)
        self._events = []
        return [e for e in merged if not (isinstance(e, ContentDelta) and not e.text)]

    def _reset_body(self) -> None:
        self._body = ""  # the call's JSON text so far
        self._depth = 0  # nesting depth of { and [ in the body
        self._in_string = False
        self._escape = False
        self._announced = False  # header delta sent
        self._call_index = -1  # index given to this call once announced
        self._args_start = -1  # offset of the arguments value in the body (-1: not found yet)
        self._args_streaming = False  # streaming the arguments object fragment by fragment
        self._args_done = False
        self._args_text = ""  # compact arguments sent so far

    def _step(self, char: str) -> None:
        if self._state == "content":
            self._buf += char
            self._check_call_start()
        elif self._state == "wait_body":
            self._opening += char
            if char in _WS:
                return
            if char == "{":
                self._state = "body"
                self._body_char(char)
            else:
                self._fail(f"{self.fmt.start or 'a tool call'} was not followed by a JSON object")
                self._state = "content"
                self._after_call = False
        elif self._state == "body":
            self._opening += char
            self._body_char(char)
        else:  # after_body: the end marker, a separator, or content
            self._buf += char
            self._after_body()

    def _check_call_start(self) -> None:
        """In content: does the undecided text open a call?"""
        buf = self._buf
        if self._bare_ok:
            stripped = buf.lstrip(_WS)
            if not stripped:
                return
            if stripped[0] == "{" or (self.fmt.bare_array and stripped[0] == "["):
                self._buf = ""
                self._bare_ok = False
                self._in_array = stripped[0] == "["
                self._opening = stripped[0]
                self._state = "wait_body"
                if not self._in_array:
                    self._state = "body"
                    self._body_char("{")
                return
            if not (self.fmt.start and self.fmt.start.startswith(stripped[: len(self.fmt.start)])):
                self._bare_ok = False  # real text came first: plain content from now on
        marker = self.fmt.start
        if marker and buf.endswith(marker):
            before = buf[: -len(marker)]
            self._emit_content(before.rstrip(_WS))
            self._buf = ""
            self._bare_ok = False
            self._opening = marker
            self._state = "wait_body"

    def _drain_content(self, final: bool) -> None:
        """Send the content that can no longer be part of a marker or dropped whitespace."""
        if self._state != "content" or (self._bare_ok and not final and not self._buf.strip(_WS)):
            return
        if self._bare_ok and not final and self.fmt.start and self.fmt.start.startswith(self._buf.lstrip(_WS)):
            return  # could still be the start marker of the first call
        keep = 0 if final else _held_suffix(self._buf, self.fmt.start)
        cut = len(self._buf) - keep
        sendable = self._buf[:cut]
        held_ws = len(sendable) - len(sendable.rstrip(_WS))  # trailing spaces wait: a call may follow
        if final:
            sendable = sendable.rstrip(_WS)
            self._buf = ""
        else:
            sendable = sendable[: len(sendable) - held_ws]
            self._buf = self._buf[len(sendable):]
        self._emit_content(sendable)

    def _emit_content(self, text: str) -> None:
        if self._after_call:
            text = text.lstrip(_WS)
            if not text:
                return
            self._after_call = False
        if text:
            self._bare_ok = False
            self._events.append(ContentDelta(text))

    # ── inside a call ─────────────────────────────────────────────────────────

    def _body_char(self, char: str) -> None:
        self._body += char
        closing = False
        if self._in_string:
            if self._escape:
                self._escape = False
            elif char == "\\":
                self._escape = True
            elif char == '"':
                self._in_string = False
        elif char == '"':
            self._in_string = True
        elif char in "{[":
            self._depth += 1
        elif char in "}]":
            self._depth -= 1
            closing = True
        self._stream_header_and_arguments(char, closing)
        if self._depth == 0 and closing:
            self._finish_call()

    def _stream_header_and_arguments(self, char: str, closing: bool) -> None:
        if not self._announced and self._args_start < 0:
            match = self._header.match(self._body)
            if match:
                name = json.loads('"' + match.group(1) + '"')
                self._args_start = match.end()
                if self.tool_names is None or name in self.tool_names:
                    self._announce(name)
            return
        if self._announced and not self._args_done and len(self._body) > self._args_start:
            if not self._args_streaming:
                if char in _WS:
                    return
                if char != "{":
                    self._args_done = True  # not an object: sent whole when the call closes
                    return
                self._args_streaming = True
            if char in _WS and not self._in_string:
                return  # compact: whitespace outside strings is not part of the arguments
            if self._in_string and ord(char) < 0x20:
                char = f"\\u{ord(char):04x}"  # a raw control character would make the JSON invalid for strict readers
            self._args_text += char
            self._events.append(ToolCallDelta(self._call_index, arguments=char))
            if closing and self._depth == 1:
                self._args_done = True

    def _announce(self, name: str) -> None:
        self._announced = True
        self._call_index = self._index
        self._index += 1
        self._events.append(ToolCallDelta(self._call_index, id=self.id_factory(), name=name, arguments=""))

    def _finish_call(self) -> None:
        """The call's JSON closed: check it, send what is missing, move on."""
        try:
            call = self.fmt.parse_one(self._body)
            if self.tool_names is not None and call.name not in self.tool_names:
                raise ToolCallParseError(f"the model called {call.name!r}, which is not one of the tools ({', '.join(sorted(self.tool_names))})")
        except ToolCallParseError as exc:
            self._fail(str(exc))
            self._state = "after_body"
            self._buf = ""
            return
        if not self._announced:
            self._announce(call.name)
            self._events.append(ToolCallDelta(self._call_index, arguments=call.arguments_json))
        elif not self._args_streaming:
            self._events.append(ToolCallDelta(self._call_index, arguments=call.arguments_json))
        elif json.loads(self._args_text, strict=False) != call.arguments:  # pragma: no cover - defensive
            self._events.append(ToolCallError(f"arguments of {call.name!r} were streamed inconsistently", self._call_index))
        self._reset_body()
        self._state = "after_body"
        self._buf = ""

    def _fail(self, message: str, cut: bool = False) -> None:
        """A call that cannot be read: error event; its text becomes content if not announced."""
        if self._announced:
            self._events.append(ToolCallError(message, self._call_index, cut))
        else:
            self._events.append(ToolCallError(message))
            self._after_call = False
            self._events.append(ContentDelta(self._opening))
        self._reset_body()
        self._opening = ""

    def _after_body(self) -> None:
        """After a call's JSON: the end marker, a separator to the next call, or content."""
        rest = self._buf.lstrip(_WS)
        if not rest:
            return
        end = self.fmt.end
        if end and end.startswith(rest[: len(end)]):
            if len(rest) < len(end):
                return  # still reading the end marker
            self._buf = rest[len(end):]
            end = None
        elif self._in_array and rest[0] in ",]":
            self._buf = rest[1:]
            if rest[0] == ",":
                self._opening, self._state = ",", "wait_body"
                return
            self._in_array = False
        elif self.fmt.bare_json and not self._in_array and rest[0] == self.fmt.separator:
            self._buf = rest[1:]
            self._opening, self._state = self.fmt.separator, "wait_body"
            return
        # Back to content; whitespace right after a call is dropped.
        self._state = "content"
        self._after_call = True
        pending, self._buf = self._buf, ""
        for char in pending:
            self._step(char)
