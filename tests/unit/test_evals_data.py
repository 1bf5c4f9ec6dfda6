"""Evaluation examples from data files: shapes, the evaluated turn, errors with line numbers."""

from __future__ import annotations

import json

import pytest

from llm_deeper.errors import UserError
from llm_deeper.evals.data import read_examples

TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}}


def write(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def test_shapes_and_the_evaluated_turn(tmp_path):
    path = write(tmp_path, [
        {"messages": [{"role": "user", "content": "time?"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                      {"role": "tool", "tool_call_id": "call_1", "content": "09:30"}, {"role": "assistant", "content": "It is 09:30."}], "tools": TOOLS},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}], "tools": TOOLS},
        {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                      {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]},
        {"instruction": "Capital of France?", "input": "", "output": "Paris"},
        {"prompt": "2+2=", "completion": "4"},
        {"text": "Just some text to score."},
        "",
    ])
    call, no_call, chat, alpaca, prompt, text = read_examples(path)
    assert call.prompt == [{"role": "user", "content": "time?"}]  # the call decision is what is scored
    assert call.expected_calls == [CALL] and call.tools == TOOLS and call.reference == ""
    assert no_call.expected_calls == [] and no_call.reference == "Hello!"  # a tool set example without a call
    assert chat.expected_calls is None and chat.reference == "d" and len(chat.prompt) == 4  # plain chat: the last answer
    assert alpaca.prompt == [{"role": "user", "content": "Capital of France?"}] and alpaca.reference == "Paris"
    assert prompt.reference == "4"
    assert text.text == "Just some text to score." and not text.generates
    assert call.id.endswith("data.jsonl:1") and text.id.endswith("data.jsonl:6")
    assert len(read_examples(path, limit=2)) == 2


def test_bad_lines_name_file_and_line(tmp_path):
    good = {"prompt": "a", "completion": "b"}
    with pytest.raises(UserError, match=r"data\.jsonl:2: not valid JSON"):
        read_examples(write(tmp_path, [good, '{"prompt": "a", ']))
    with pytest.raises(UserError, match=r"data\.jsonl:3: .*unknown shape"):
        read_examples(write(tmp_path, [good, good, {"question": "x"}]))
    with pytest.raises(UserError, match=r"data\.jsonl:1: .*no assistant reply after the last user message"):
        read_examples(write(tmp_path, [{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}]))
    with pytest.raises(UserError, match=r"data\.jsonl:2: .*arguments are not valid JSON"):
        bad_call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
        read_examples(write(tmp_path, [good, {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [bad_call]}]}]))
    with pytest.raises(UserError, match=r"data\.jsonl:1: 'text' must be a non-empty string"):
        read_examples(write(tmp_path, [{"text": ""}]))
    with pytest.raises(UserError, match="does not exist"):
        read_examples(tmp_path / "missing.jsonl")


def test_plain_text_file_is_one_example(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("line one\nline two\n", encoding="utf-8")
    (example,) = read_examples(path)
    assert example.text == "line one\nline two\n" and example.prompt == []
