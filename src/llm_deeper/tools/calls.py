"""One tool call, the value every other module passes around, and a parsed output.

`arguments` is the parsed object; `arguments_json` is the exact text the model
wrote for it (compact JSON when we produced it), so a streamed call and the
same call parsed whole carry the same string.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field


def compact_json(value) -> str:
    """JSON without spaces: what the renderer shows and the grammars allow."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_call_id() -> str:
    """An OpenAI-style call id (`call_` + 24 hex characters)."""
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class ToolCall:
    """A request from the model to run one tool."""

    name: str  # the tool's registered name
    arguments: dict = field(default_factory=dict)  # parsed arguments object
    id: str = field(default_factory=new_call_id)  # links the call to its tool message
    arguments_json: str | None = None  # raw arguments text; None means compact_json(arguments)

    def __post_init__(self) -> None:
        if self.arguments_json is None:
            self.arguments_json = compact_json(self.arguments)

    def to_openai(self) -> dict:
        """The `tool_calls` item of an OpenAI assistant message."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_json}}

    @classmethod
    def from_openai(cls, item: dict) -> "ToolCall":
        """Read an OpenAI `tool_calls` item (arguments arrive as a JSON string)."""
        function = item.get("function") or {}
        raw = function.get("arguments")
        if raw is None or raw == "":
            raw = "{}"
        if isinstance(raw, dict):  # some clients send the object itself
            arguments, raw = raw, compact_json(raw)
        else:
            try:
                arguments = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"tool call {function.get('name')!r} has arguments that are not JSON: {raw!r} ({exc.msg})") from None
        if not isinstance(arguments, dict):
            raise ValueError(f"tool call {function.get('name')!r} arguments must be a JSON object, got {raw!r}")
        return cls(name=function.get("name", ""), arguments=arguments, id=item.get("id") or new_call_id(), arguments_json=raw)

    def same_call(self, other: "ToolCall") -> bool:
        """Same tool and same arguments (ids and spacing ignored)."""
        return self.name == other.name and self.arguments == other.arguments


@dataclass
class ParsedOutput:
    """A model's output read as a reply: what a non-streamed response carries, and the sum of a stream."""

    content: str = ""  # assistant text outside calls
    calls: list[ToolCall] = field(default_factory=list)  # readable calls, in order
    errors: list[str] = field(default_factory=list)  # why some call text was not a call

    def to_openai_message(self) -> dict:
        """An OpenAI assistant message: content None when there are only calls, a string otherwise."""
        message: dict = {"role": "assistant", "content": self.content or (None if self.calls else "")}
        if self.calls:
            message["tool_calls"] = [c.to_openai() for c in self.calls]
        return message
