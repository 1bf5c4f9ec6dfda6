"""The chat layer's reply reading: whole and streamed agree, a repeated call is dropped, the agent runs a call once."""

from __future__ import annotations

import json

from llm_deeper.chat.plan import ChatPlan, ReplyStream, parse_reply
from llm_deeper.evals.agent_run import has_tool_markup
from llm_deeper.agent.loop import runnable

PLAN = ChatPlan([], None, ("multiply", "add"), True)


def call(name: str, arguments: dict) -> str:
    return f'<tool_call>{{"name":"{name}","arguments":{json.dumps(arguments, separators=(",", ":"))}}}</tool_call>'


def streamed(text: str, size: int) -> tuple[str, list[tuple[str, str]]]:
    stream, content, calls = ReplyStream(PLAN), "", {}
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    deltas = [d for i, piece in enumerate(pieces) for d in stream.feed(piece, finished=i == len(pieces) - 1)]
    for delta in deltas:
        content += delta.get("content", "")
        for item in delta.get("tool_calls", []):
            entry = calls.setdefault(item["index"], ["", ""])
            entry[0] += item["function"].get("name", "")
            entry[1] += item["function"]["arguments"]
    return content, [tuple(v) for _, v in sorted(calls.items())]


def whole(text: str) -> tuple[str, list[tuple[str, str]]]:
    message = parse_reply(PLAN, text)
    return message["content"] or "", [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])]


def test_a_repeated_call_is_dropped_whole_and_streamed_alike():
    a, b = call("multiply", {"a": 2, "b": 3}), call("multiply", {"a": 2, "b": 4})
    text = "\n".join([a, b, a, call("add", {"a": 1, "b": 1}), b])
    expected = [("multiply", '{"a":2,"b":3}'), ("multiply", '{"a":2,"b":4}'), ("add", '{"a":1,"b":1}')]
    assert whole(text)[1] == expected
    for size in (1, 5, 17, len(text)):
        assert streamed(text, size)[1] == expected, size
    cut = a + "\n" + '<tool_call>{"name":"multiply","arguments":{"a":2,"b'  # a second call max_tokens cut: kept, as streamed
    assert whole(cut)[1] == streamed(cut, 3)[1] == [("multiply", '{"a":2,"b":3}'), ("multiply", '{"a":2,"b')]


def test_the_agent_runs_identical_calls_once_and_never_a_cut_one():
    same = {"type": "function", "function": {"name": "multiply", "arguments": '{"a":2,"b":3}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", **same}, {"id": "2", **same}, {"id": "3", "type": "function", "function": {"name": "multiply", "arguments": '{"b":3,"a":2}'}},
        {"id": "4", "type": "function", "function": {"name": "add", "arguments": '{"a":1'}}]}
    assert [c["id"] for c in runnable(message)["tool_calls"]] == ["1"]
    assert runnable({"role": "assistant", "content": None, "tool_calls": [message["tool_calls"][3]]}) == {"role": "assistant", "content": ""}


def test_an_answer_with_tool_markup_is_not_an_answer():
    assert has_tool_markup('391 <tool_response>{"name":"calculator","content":{"result":391}}</tool_response>')
    assert has_tool_markup('<tool_call>{"name":"calculator"') and not has_tool_markup("17 × 23 = 391.")
