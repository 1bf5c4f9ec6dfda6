"""The one renderer: tools, calls and results as text in a plain chat template.

The default model's ChatML template knows nothing about tools, so we describe
them in the system message and write calls and results as ordinary text:

    system     ... your system prompt ...  + the tool prompt (one signature a tool)
    assistant  <tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>
    user       <tool_response>{"name":"get_weather","content":{...}}</tool_response>

The synthetic fine-tuning data and the server both call these functions, so a
model fine-tuned on that data sees at serving time exactly what it learned.
Calls and results are compact JSON (no spaces): fewer tokens, and the same text
the grammars in `constrain.py` allow. Tools are listed as short signatures, e.g.

    get_weather(city: string, unit?: celsius|fahrenheit = "celsius"): Current weather for a city.
"""

from __future__ import annotations

import json
from typing import Iterable

from .calls import ToolCall, compact_json

CALL_START = "<tool_call>"  # hermes format, what SmolLM2/Qwen-family models use
CALL_END = "</tool_call>"
CALL_SEPARATOR = "\n"  # between parallel calls
RESPONSE_START = "<tool_response>"
RESPONSE_END = "</tool_response>"

# Each tool is one line, a signature: `name(param: type, optional?: type = default): what it does`.
# The JSON schema it replaces spent ~90% of every training row on text the model never needs
# to read (the calculator's regex pattern alone was 265 tokens): patterns, lengths and bounds
# are enforced by the decoding grammar (`constrain.py`), not by the prompt.
TOOL_PROMPT = """You can call these tools ("?" marks an optional parameter):
<tools>
{tools}
</tools>
To call tools, reply with only <tool_call>{{"name":"tool_name","arguments":{{"param":"value"}}}}</tool_call> lines. If no tool fits, answer in plain text."""


def tool_dicts(tools) -> list[dict]:
    """OpenAI tool definitions from a ToolRegistry, Tools, or dicts (left as they are)."""
    if tools is None:
        return []
    if hasattr(tools, "schemas"):
        return tools.schemas()
    return [t.schema() if hasattr(t, "schema") else t for t in tools]


def type_text(schema) -> str:
    """A parameter's type in a few tokens: `string`, `a|b`, `array of number`, `{x: integer, y?: string}`."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:  # strings bare (meter|mile), other values as JSON (1|2.5|null): quotes cost a token each
        return "|".join(value if isinstance(value, str) else compact_json(value) for value in schema["enum"])
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return "|".join(type_text(choice) for choice in choices)
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    if kind == "array":
        return "array of " + type_text(schema["items"]) if "items" in schema else "array"
    if schema.get("properties"):
        return "{" + params_text(schema) + "}"
    return str(kind) if kind else "any"


def params_text(schema: dict) -> str:
    """`name: type, other?: type = default` for an object schema's properties."""
    required = schema.get("required") or []
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        part = f"{name}{'' if name in required else '?'}: {type_text(prop)}"
        if isinstance(prop, dict) and "default" in prop:
            part += f" = {compact_json(prop['default'])}"
        parts.append(part)
    return ", ".join(parts)


def tool_signature(function: dict) -> str:
    """One tool as one line: its signature and the first line of its description."""
    description = (function.get("description") or "").strip().split("\n")[0].strip()
    signature = f"{function['name']}({params_text(function.get('parameters') or {})})"
    return f"{signature}: {description}" if description else signature


def render_tool_prompt(tools) -> str:
    """System-prompt text describing the tools (one signature a line) and the call format."""
    return TOOL_PROMPT.format(tools="\n".join(tool_signature(item["function"]) for item in tool_dicts(tools)))


def format_tool_call(call: ToolCall | dict) -> str:
    """`<tool_call>{"name":...,"arguments":{...}}</tool_call>` for one call."""
    call = _as_call(call)
    return f'{CALL_START}{{"name":{json.dumps(call.name, ensure_ascii=False)},"arguments":{escape_markers(compact_json(call.arguments))}}}{CALL_END}'


def format_tool_calls(calls: Iterable[ToolCall | dict]) -> str:
    """The assistant text for these calls, exactly what the model should emit."""
    return CALL_SEPARATOR.join(format_tool_call(c) for c in calls)


# Text that opens or closes a call, a result, the tool list or (ChatML-style "<|...|>") a turn.
MARKERS = (CALL_START, CALL_END, RESPONSE_START, RESPONSE_END, "<tools>", "</tools>", "<|")


def escape_markers(json_text: str) -> str:
    """JSON text in which no marker appears: each marker's "<" written as the JSON escape \\u003c.

    Every "<" in JSON text is inside a string, where "\\u003c" decodes to the
    same character, so a JSON reader gets the value unchanged, while a result
    holding "</tool_response><tool_response>{...}" can no longer end its own
    result and fake another (nor a call, nor a turn, in an engine that reads
    special-token text as control tokens).
    """
    for marker in MARKERS:
        json_text = json_text.replace(marker, "\\u003c" + marker[1:])
    return json_text


def format_tool_response(name: str, content) -> str:
    """A tool result as the model reads it; JSON results stay JSON, text becomes a string; markers escaped."""
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except json.JSONDecodeError:
            value = content
    else:
        value = content
    return f"{RESPONSE_START}{escape_markers(compact_json({'name': name, 'content': value}))}{RESPONSE_END}"


def _as_call(call) -> ToolCall:
    return call if isinstance(call, ToolCall) else ToolCall.from_openai(call)


def _text(content) -> str:
    """Message content as text (OpenAI allows a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type", "text") == "text")
    return str(content)


def to_template_messages(messages: list[dict], tools=None) -> list[dict]:
    """OpenAI-style messages (assistant `tool_calls`, `tool` results) → plain role/content messages.

    The tool prompt joins the system message (one is created if needed);
    consecutive tool results become one user message, in call order.
    """
    tools = tool_dicts(tools)
    out: list[dict] = []
    names_by_id: dict[str, str] = {}  # tool_call_id → function name, for results without a name
    pending_results: list[str] = []

    def flush_results() -> None:
        if pending_results:
            out.append({"role": "user", "content": "\n".join(pending_results)})
            pending_results.clear()

    for message in messages:
        role = message.get("role")
        if role == "tool":
            name = message.get("name") or names_by_id.get(message.get("tool_call_id", ""), "")
            pending_results.append(format_tool_response(name, _text(message.get("content"))))
            continue
        flush_results()
        if role == "assistant" and message.get("tool_calls"):
            calls = [_as_call(c) for c in message["tool_calls"]]
            names_by_id.update({c.id: c.name for c in calls})
            text = _text(message.get("content")).strip()
            out.append({"role": "assistant", "content": (text + "\n" if text else "") + format_tool_calls(calls)})
        elif role in ("system", "developer"):
            out.append({"role": "system", "content": _text(message.get("content"))})
        else:
            out.append({"role": role, "content": _text(message.get("content"))})
    flush_results()
    if tools:
        prompt = render_tool_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": (out[0]["content"].rstrip() + "\n\n" + prompt) if out[0]["content"].strip() else prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def chat_prompt(tokenizer, messages: list[dict], tools=None, add_generation_prompt: bool = True) -> str:
    """The full prompt text through the tokenizer's chat template."""
    return tokenizer.apply_chat_template(to_template_messages(messages, tools), tokenize=False, add_generation_prompt=add_generation_prompt)
