"""A chat request's tools, prompt and reply: the steps the server and every in-process caller share.

The request's `tools` go into the system prompt through the shared renderer
(the default model's template has no tool support); `tool_choice` (or
`response_format`) becomes the one constraint the engine applies (required /
named: the reply must be calls, a named tool exactly one; auto: free text, but
a started call is held to the schemas); the model's text is parsed into
OpenAI `tool_calls`, whole or piece by piece. Both parses cut and read calls
with the same code, keep a call max_tokens cut with its partial arguments (as
a streaming client has it), and drop a call the reply already made (the engine
ends a constrained reply there), so streamed and whole replies agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UserError
from ..inference.constrained import Constraint
from .request import ChatRequest


class ChatRequestError(UserError):
    """A request that cannot be served as sent (HTTP 400); `param` names the field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ChatPlan:
    """What one chat request does about tools and the reply's shape."""

    tools: list[dict]  # validated OpenAI tool definitions that go into the prompt (empty: none)
    constraint: Constraint | None  # what the reply is held to (None: free text)
    tool_names: tuple[str, ...]  # the tools a reply may call (parsed out of it)
    parses_calls: bool  # the reply's text is read for calls


def plan_request(request: ChatRequest) -> ChatPlan:
    """Validate tools / tool_choice / response_format; a bad one is a ChatRequestError naming the field."""
    plan = _tool_plan(request)
    if plan.constraint is None and request.response_format and request.constrain:
        return ChatPlan(plan.tools, _response_constraint(request.response_format), plan.tool_names, plan.parses_calls)
    return plan


def _tool_plan(request: ChatRequest) -> ChatPlan:
    if not request.tools and request.tool_choice in (None, "none", "auto"):
        return ChatPlan([], None, (), False)
    from ..chat.tool_constraint import tool_call_constraint
    from ..tools.openai_spec import validate_tools

    try:
        tools = validate_tools(request.tools or [])
        constraint = tool_call_constraint(tools, request.tool_choice, request.parallel_tool_calls)
    except UserError as exc:
        raise ChatRequestError(str(exc), param="tool_choice" if "tool_choice" in str(exc) else "tools") from None
    if constraint is None:  # tool_choice "none": the tools stay out of the prompt, as before
        return ChatPlan(tools, None, (), False)
    if not request.constrain:  # in-process evals: the tools in the prompt, every call parsed, nothing enforced
        return ChatPlan(tools, None, (), True)
    return ChatPlan(tools, constraint, constraint.tool_names, True)


def _response_constraint(response_format: dict) -> Constraint | None:
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return Constraint.json_object()
    schema = (response_format.get("json_schema") or {}).get("schema")
    if kind != "json_schema" or schema is None:
        raise ChatRequestError("response_format must be {\"type\": \"text\" | \"json_object\"} or "
                               "{\"type\": \"json_schema\", \"json_schema\": {\"schema\": {...}}}", param="response_format")
    try:
        return Constraint.json_schema(schema)
    except UserError as exc:
        raise ChatRequestError(str(exc), param="response_format") from None


def prompt_messages(request: ChatRequest, plan: ChatPlan) -> list[dict]:
    """OpenAI messages (tool calls and results included) → plain messages for the chat template, tools in the system prompt."""
    from ..tools.render import to_template_messages

    try:
        return to_template_messages(request.messages, plan.tools if plan.parses_calls else None)
    except ValueError as exc:
        raise ChatRequestError(f"invalid message history: {exc}", param="messages") from None


# ── reading the reply ────────────────────────────────────────────────────────

def _call_key(name: str, arguments: str) -> tuple[str, str]:
    """What makes two calls the same: the name and the arguments (spacing and key order ignored)."""
    try:
        return name, json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (json.JSONDecodeError, TypeError):
        return name, arguments


def finish_reason(engine_reason: str, message: dict) -> str:
    """OpenAI's finish_reason: "tool_calls" for a reply that ended after its calls."""
    return "tool_calls" if message.get("tool_calls") and engine_reason == "stop" else engine_reason


def parse_reply(plan: ChatPlan, text: str) -> dict:
    """The assistant message for a whole reply: what the streamed deltas add up to.

    A call that max_tokens cut is kept with its partial arguments, as the
    streamed deltas deliver it, so both modes give the same reply (issue 16:
    non-streamed used to drop it and answer with nothing at all). A call the
    reply already made is dropped (issue 23).
    """
    if not plan.parses_calls:
        return {"role": "assistant", "content": text}
    from ..tools.formats import HERMES

    parsed = HERMES.parse(text, tool_names=plan.tool_names or None, keep_cut=True)
    seen, calls = set(), []
    for call in parsed.calls:
        key = _call_key(call.name, call.arguments_json)
        if key not in seen:
            seen.add(key)
            calls.append(call)
    parsed.calls = calls
    return parsed.to_openai_message()


class ReplyStream:
    """One streamed choice: text pieces in, OpenAI `delta` dicts out (content or tool_calls).

    A call whose name an earlier call of this reply already had is held back
    until it is complete, then sent, or dropped when it repeats that call.
    Parser errors are dropped (their text came back as content).
    """

    def __init__(self, plan: ChatPlan):
        from ..tools.streaming import StreamingToolParser

        self.parser = StreamingToolParser("hermes", tool_names=plan.tool_names or None) if plan.parses_calls else None
        self.sent: set[tuple[str, str]] = set()  # calls sent whole (name, arguments)
        self.names: set[str] = set()  # names of calls sent or being sent
        self.open: dict | None = None  # the call being read: {"index", "name", "arguments", "held": [deltas] | None}
        self.next_index = 0  # the next call's index in the reply's tool_calls
        self.called = False  # a tool call went out

    def feed(self, text: str, finished: bool = False) -> list[dict]:
        if self.parser is None:
            return [{"content": text}] if text else []
        from ..tools.streaming import ContentDelta, ToolCallDelta, ToolCallError

        out: list[dict] = []
        for event in self.parser.feed(text) + (self.parser.finish() if finished else []):
            if isinstance(event, ToolCallDelta) and event.name is not None:
                out += self._close()
                held = [] if event.name in self.names else None
                self.open = {"name": event.name, "arguments": "", "held": held, "index": None}
                self.names.add(event.name)
                if held is None:
                    out.append(self._call_delta(event))
                else:
                    held.append(event)
            elif isinstance(event, ToolCallDelta):
                if self.open is None:
                    continue
                self.open["arguments"] += event.arguments
                if self.open["held"] is None:
                    out.append(self._call_delta(event))
                else:
                    self.open["held"].append(event)
            elif isinstance(event, ToolCallError):
                if event.index is not None and self.open is not None:
                    if self.open["held"] is not None and not event.cut:
                        self.open = None  # an unreadable held call: never sent
                    else:
                        out += self._close()
            elif isinstance(event, ContentDelta) and event.text:
                out += self._close()
                out.append({"content": event.text})
        if finished:
            out += self._close()
        return out

    def _call_delta(self, event) -> dict:
        if self.open["index"] is None:
            self.open["index"], self.next_index = self.next_index, self.next_index + 1
        self.called = True
        return {"tool_calls": [{**event.to_openai(), "index": self.open["index"]}]}

    def _close(self) -> list[dict]:
        """The open call is complete (or cut): send what was held unless it repeats a call already sent."""
        call, self.open = self.open, None
        if call is None:
            return []
        key = _call_key(call["name"], call["arguments"])
        repeated = key in self.sent
        self.sent.add(key)
        if call["held"] is None or repeated:
            return []
        self.open = call
        out = [self._call_delta(event) for event in call["held"]]
        self.open = None
        return out
