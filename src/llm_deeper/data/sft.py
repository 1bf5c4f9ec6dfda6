"""Read supervised fine-tuning data from JSONL, in the three common shapes.

Every line becomes one `ChatExample` in the OpenAI message shape, the format
the server speaks, so training and serving see the same conversations:

- chat:      {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}], "tools": [...]}
- Alpaca:    {"instruction": ..., "input": ..., "output": ...}
- prompt/completion: {"prompt": ..., "completion": ...}

Assistant messages may carry OpenAI `tool_calls`, and `role: "tool"` messages
carry tool results; an optional `tools` column lists the tool schemas the
model was offered. Rows with the same optional `batch_group` value (twins:
one tool list, a request served and one not) are trained in the same step. A bad line raises `DataFormatError` naming the file, the
line number and what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import UserError

ROLES = ("system", "user", "assistant", "tool")


class DataFormatError(UserError):
    """A data file line that is not a valid example."""


@dataclass
class ChatExample:
    """One training conversation."""

    messages: list[dict]  # OpenAI-shape messages (role, content, optional tool_calls / tool_call_id / name)
    tools: list[dict] | None = None  # OpenAI tool specs offered to the model, or None
    source: str = ""  # "file:line", for error messages and `data inspect`
    meta: dict = field(default_factory=dict)  # extra columns kept as they are (e.g. the expected tool name)

    def to_json(self) -> dict:
        """The record as written to JSONL (chat shape)."""
        record: dict = {"messages": self.messages}
        if self.tools:
            record["tools"] = self.tools
        record.update(self.meta)
        return record


def jsonl_records(path: Path) -> Iterator[tuple[str, object]]:
    """("file:line", parsed JSON) for each non-blank line; a bad line says where it is.

    Read line by line under the per-line size limit (`inputs.max_line_bytes`):
    one huge line fails at once instead of being parsed and trained on.
    """
    from ..inputs import text_lines

    for number, line in text_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        yield where, record


def read_jsonl(path: str | Path) -> list[ChatExample]:
    """All examples of a JSONL file; blank lines are skipped."""
    from ..inputs import check_data_file

    path = check_data_file(path, "data file", " (make one with `llm-deeper data make-tools --out DIR`)")
    examples = [parse_record(record, where) for where, record in jsonl_records(path)]
    if not examples:
        raise DataFormatError(f"{path}: no examples (the file is empty)")
    return examples


def write_jsonl(path: str | Path, examples: list[ChatExample]) -> Path:
    """Write examples in the chat shape, one JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
    return path


def parse_record(record, where: str = "<record>") -> ChatExample:
    """One decoded JSON record → ChatExample, whatever its shape."""
    if not isinstance(record, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    tools = validate_tools(record.get("tools"), where)
    if "messages" in record:
        messages = validate_messages(record["messages"], where)
        meta = {k: v for k, v in record.items() if k not in ("messages", "tools")}
        return ChatExample(messages, tools, where, meta)
    if "instruction" in record:
        return ChatExample(alpaca_messages(record, where), tools, where)
    if "prompt" in record:
        return ChatExample(prompt_completion_messages(record, where), tools, where)
    raise DataFormatError(f"{where}: unknown shape with keys {sorted(record)}; expected 'messages', 'instruction'+'output' (Alpaca) or 'prompt'+'completion'")


def require_text(record: dict, key: str, where: str, allow_empty: bool = False) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise DataFormatError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataFormatError(f"{where}: '{key}' is empty")
    return value


def alpaca_messages(record: dict, where: str) -> list[dict]:
    """Alpaca: the instruction (plus the optional input below it) is the user turn."""
    instruction = require_text(record, "instruction", where)
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise DataFormatError(f"{where}: 'input' must be a string, got {type(extra).__name__}")
    user = instruction if not extra.strip() else f"{instruction}\n\n{extra}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": require_text(record, "output", where)}]
    if isinstance(record.get("system"), str) and record["system"].strip():
        messages.insert(0, {"role": "system", "content": record["system"]})
    return messages


def prompt_completion_messages(record: dict, where: str) -> list[dict]:
    """prompt/completion: one user turn, one assistant turn."""
    return [{"role": "user", "content": require_text(record, "prompt", where)}, {"role": "assistant", "content": require_text(record, "completion", where)}]


def validate_messages(messages, where: str) -> list[dict]:
    """Check roles, contents and tool calls; return the list unchanged."""
    if not isinstance(messages, list) or not messages:
        raise DataFormatError(f"{where}: 'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(message, dict):
            raise DataFormatError(f"{at} must be an object, got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise DataFormatError(f"{at} has role {role!r}; expected one of {', '.join(ROLES)}")
        content = message.get("content")
        calls = message.get("tool_calls")
        if calls is not None:
            if role != "assistant":
                raise DataFormatError(f"{at}: only assistant messages may have tool_calls")
            validate_tool_calls(calls, at)
        if content is None and not calls:
            raise DataFormatError(f"{at} ({role}) has no content")
        if content is not None and not isinstance(content, str):
            raise DataFormatError(f"{at}: content must be a string, got {type(content).__name__}")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataFormatError(f"{where}: no assistant message, so nothing to learn from this line")
    return messages


def validate_tool_calls(calls, at: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise DataFormatError(f"{at}: tool_calls must be a non-empty list")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise DataFormatError(f"{at}: tool_calls[{j}] needs {{'function': {{'name': ..., 'arguments': ...}}}}")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                raise DataFormatError(f"{at}: tool_calls[{j}] arguments are not valid JSON: {function['arguments']!r}") from None
        if not isinstance(arguments, dict):
            raise DataFormatError(f"{at}: tool_calls[{j}] arguments must be a JSON object")


def validate_tools(tools, where: str) -> list[dict] | None:
    """The optional `tools` column: OpenAI specs ({"type": "function", "function": {"name", ...}})."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise DataFormatError(f"{where}: 'tools' must be a list of tool specs")
    for k, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise DataFormatError(f"{where}: tools[{k}] must look like {{'type': 'function', 'function': {{'name': ..., 'parameters': ...}}}}")
    return tools or None
