"""Evaluation examples from a data file.

The JSONL shapes are those of fine-tuning (`llm_deeper.data.sft`, whose
validation we reuse, so a bad line names its file and line number), plus
`{"text": ...}` lines and plain `.txt` files for perplexity alone.

What is evaluated in a conversation: the first assistant turn after the last
user message. In a tool-calling example `[user, assistant(tool_calls), tool,
assistant(answer)]` that is the call decision; in a plain chat it is the
final answer. The turns before it are the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass
class EvalExample:
    """One thing to score."""

    id: str  # "file:line" (or the record's own "id")
    prompt: list[dict]  # OpenAI messages the model sees; [] for text-only examples
    tools: list[dict] | None = None  # OpenAI tool specs offered, or None
    reference: str = ""  # expected reply text ("" when the turn is only tool calls)
    expected_calls: list[dict] | None = None  # expected tool_calls; [] = no call expected; None = not a tool example
    text: str | None = None  # raw text to score with perplexity (text-only examples)
    target: dict | None = None  # the reference assistant message itself (for its perplexity)

    @property
    def generates(self) -> bool:
        """True when the model must answer a prompt (not a text-only example)."""
        return bool(self.prompt)


def target_index(messages: list[dict], where: str) -> int:
    """Index of the first assistant message after the last user message."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    start = users[-1] + 1 if users else 0
    for i in range(start, len(messages)):
        if messages[i]["role"] == "assistant":
            return i
    raise UserError(f"{where}: no assistant reply after the last user message, so there is nothing to evaluate")


def from_chat(chat, where: str) -> EvalExample:
    """A `ChatExample` (from `data.sft`) as an evaluation example."""
    messages = chat.messages
    index = target_index(messages, where)
    target = messages[index]
    is_tool_example = chat.tools is not None or any(m.get("tool_calls") for m in messages)
    expected = list(target.get("tool_calls") or []) if is_tool_example else None
    example_id = str(chat.meta.get("id", where)) if isinstance(chat.meta, dict) else where
    return EvalExample(id=example_id, prompt=messages[:index], tools=chat.tools, reference=target.get("content") or "", expected_calls=expected, target=target)


def read_examples(path: str | Path, limit: int | None = None) -> list[EvalExample]:
    """Examples of a JSONL file (any fine-tuning shape, or {"text": ...}) or a .txt file."""
    from ..data.sft import jsonl_records, parse_record
    from ..inputs import check_data_file, text_lines

    path = check_data_file(path, "data file", " (make a tool set with `llm-deeper data make-tools`, or pass any JSONL / .txt file)")
    if path.suffix.lower() == ".txt":
        text = "".join(line for _, line in text_lines(path))
        if not text.strip():
            raise UserError(f"{path}: the text file is empty")
        return [EvalExample(id=str(path), prompt=[], text=text)]
    examples = []
    for where, record in jsonl_records(path):
        if isinstance(record, dict) and "text" in record and not {"messages", "prompt", "instruction"} & set(record):
            if not isinstance(record["text"], str) or not record["text"].strip():
                raise UserError(f"{where}: 'text' must be a non-empty string")
            examples.append(EvalExample(id=str(record.get("id", where)), prompt=[], text=record["text"]))
        else:
            examples.append(from_chat(parse_record(record, where), where))
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise UserError(f"{path}: no examples (the file is empty)")
    return examples
