"""Tool calling in /v1/chat/completions, on top of `llm_deeper.tools`.

The request's `tools` go into the system prompt through the shared renderer
(the default model's template has no tool support), `tool_choice` becomes an
xgrammar constraint (required / named: the reply must be calls; auto: free
text, but a started call is held to the schemas), and the model's text is
parsed into OpenAI `tool_calls`, whole or piece by piece. The whole-text
parse and the streaming parser cut and read calls with the same code, so
streamed and non-streamed results agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import APIError
from .grammar import ToolCallGrammar
from .schemas import ChatCompletionRequest


@dataclass
class ToolPlan:
    """What one chat request does about tools."""

    tools: list[dict]  # validated OpenAI tool definitions (empty: no tools)
    grammar: ToolCallGrammar | None  # None: "none" or no tools
    names: tuple[str, ...]  # tools the model may call

    @property
    def parses_calls(self) -> bool:
        return self.grammar is not None


def plan_tools(body: ChatCompletionRequest) -> ToolPlan:
    """Validate `tools`/`tool_choice`; a bad schema or unknown named tool is a 400."""
    if not body.tools and body.tool_choice in (None, "none", "auto"):
        return ToolPlan([], None, ())
    from ..errors import UserError
    from ..tools.constrain import tool_call_grammar
    from ..tools.openai_spec import validate_tools

    raw_tools = [t.model_dump(exclude_none=True) for t in body.tools or []]
    choice = body.tool_choice.model_dump() if hasattr(body.tool_choice, "model_dump") else body.tool_choice
    try:
        tools = validate_tools(raw_tools)
        grammar = tool_call_grammar(tools, choice, body.parallel_tool_calls)
    except UserError as exc:
        raise APIError(400, str(exc), param="tool_choice" if "tool_choice" in str(exc) else "tools", code="invalid_tools") from None
    if grammar is None:
        return ToolPlan(tools, None, ())
    return ToolPlan(tools, ToolCallGrammar(grammar), tuple(grammar.choice.names))


def template_messages(body: ChatCompletionRequest, plan: ToolPlan) -> list[dict]:
    """OpenAI messages (tool calls and results included) → plain messages for the chat template."""
    from ..tools.render import to_template_messages

    messages = []
    for message in body.messages:
        item: dict = {"role": message.role, "content": message.text()}
        if message.name:
            item["name"] = message.name
        if message.tool_calls:
            item["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            item["tool_call_id"] = message.tool_call_id
        messages.append(item)
    try:
        return to_template_messages(messages, plan.tools if plan.grammar is not None else None)
    except ValueError as exc:
        raise APIError(400, f"invalid message history: {exc}", param="messages") from None


def new_parser(plan: ToolPlan):
    """A streaming parser for one choice (hermes format: what the renderer teaches)."""
    from ..tools.streaming import StreamingToolParser

    return StreamingToolParser("hermes", tool_names=plan.names)


def deltas(events) -> list[dict]:
    """Parser events → OpenAI `delta` dicts (content or tool_calls); errors are dropped (their text came back as content)."""
    from ..tools.streaming import ContentDelta, ToolCallDelta

    out = []
    for event in events:
        if isinstance(event, ContentDelta) and event.text:
            out.append({"content": event.text})
        elif isinstance(event, ToolCallDelta):
            out.append({"tool_calls": [event.to_openai()]})
    return out


def parse_whole(plan: ToolPlan, text: str) -> dict:
    """The non-streamed assistant message, what the streamed deltas add up to.

    A call that max_tokens cut is kept with its partial arguments, as the
    streamed deltas deliver it, so both modes give the same reply (issue 16:
    non-streamed used to drop it and answer with nothing at all).
    """
    from ..tools.formats import HERMES

    return HERMES.parse(text, tool_names=plan.names, keep_cut=True).to_openai_message()
