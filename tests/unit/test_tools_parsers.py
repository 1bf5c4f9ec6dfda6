"""Tool-call formats and the streaming parser: fixed texts, malformed texts, any split."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_deeper.errors import UserError
from llm_deeper.tools import ToolCall
from llm_deeper.tools.formats import FORMATS, HERMES, JSON_PLAIN, LLAMA3, ToolCallParseError, get_format
from llm_deeper.tools.formats.json_text import ObjectText
from llm_deeper.tools.formats.scan import CallScanner
from llm_deeper.tools.streaming import ContentDelta, StreamingToolParser, ToolCallDelta, ToolCallError, accumulate


def stream(fmt, pieces, **kwargs):
    parser = StreamingToolParser(fmt, **kwargs)
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


def summary(parsed):
    return parsed.content, [(c.name, c.arguments, c.arguments_json) for c in parsed.calls], parsed.errors


def assert_split_invariant(fmt, text, pieces=None, **kwargs):
    """Fed one character at a time == fed whole == fed in `pieces` == fmt.parse, cut calls dropped or kept."""
    whole = accumulate(stream(fmt, [text], **kwargs))
    by_char = accumulate(stream(fmt, list(text), **kwargs))
    split = accumulate(stream(fmt, pieces or [text], **kwargs))
    assert summary(by_char) == summary(whole) == summary(split) == summary(fmt.parse(text, **kwargs))
    kept = accumulate(stream(fmt, list(text), **kwargs), keep_cut=True)
    assert summary(kept) == summary(fmt.parse(text, keep_cut=True, **kwargs))
    return whole


def split_at(text, cuts):
    positions = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0] + positions, positions + [len(text)])]


CASES = [
    # (format, text, content, [(name, arguments)], number of errors)
    (HERMES, 'Let me check.\n<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>', "Let me check.", [("get_weather", {"city": "Paris"})], 0),
    (HERMES, '<tool_call>\n{"name": "a", "arguments": {"x": [1, 2], "s": "two  words"}}\n</tool_call>\n<tool_call>{"name":"b","arguments":{}}</tool_call>', "", [("a", {"x": [1, 2], "s": "two  words"}), ("b", {})], 0),
    (HERMES, '<tool_call>{"name":"now"}</tool_call>', "", [("now", {})], 0),
    (HERMES, '<tool_call>{"arguments":{"k":1},"name":"late"}</tool_call>', "", [("late", {"k": 1})], 0),
    (HERMES, '<tool_call>{"name":"s","arguments":"{\\"q\\": 1}"}</tool_call>', "", [("s", {"q": 1})], 0),
    (HERMES, '<tool_call>{"name":"no_end","arguments":{"a":"}"}}', "", [("no_end", {"a": "}"})], 0),
    (HERMES, "Just text, no calls. <tool", "Just text, no calls. <tool", [], 0),
    (HERMES, "<tool_call>oops</tool_call>", "<tool_call>oops</tool_call>", [], 1),
    (HERMES, '<tool_call>{"arguments":{}}</tool_call>', '<tool_call>{"arguments":{}}', [], 1),
    (HERMES, '<tool_call>{"name":"bad","arguments":{"x":tru}}</tool_call>', "", [], 1),
    (HERMES, '<tool_call>{"name":"cut","arguments":{"x":', "", [], 1),
    (HERMES, '<tool_call>{"name":"x","arguments":[1]}</tool_call>', "", [], 1),
    (LLAMA3, '{"name": "get_weather", "parameters": {"city": "Paris"}}', "", [("get_weather", {"city": "Paris"})], 0),
    (LLAMA3, '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"n": 2}}', "", [("a", {}), ("b", {"n": 2})], 0),
    (LLAMA3, 'The weather is nice {"name": "a"}', 'The weather is nice {"name": "a"}', [], 0),
    (JSON_PLAIN, '  {"name": "a", "arguments": {"v": 1.5}}', "", [("a", {"v": 1.5})], 0),
    (JSON_PLAIN, '[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"z": null}}]', "", [("a", {}), ("b", {"z": None})], 0),
    (JSON_PLAIN, "Sure: {not json", "Sure: {not json", [], 0),
    (JSON_PLAIN, "{not json", "{not json", [], 1),
]


@pytest.mark.parametrize("fmt, text, content, calls, errors", CASES)
def test_fixed_texts(fmt, text, content, calls, errors):
    parsed = assert_split_invariant(fmt, text)
    assert parsed.content == content
    assert [(c.name, c.arguments) for c in parsed.calls] == calls
    assert len(parsed.errors) == errors, parsed.errors
    for error in parsed.errors:
        assert isinstance(error, str) and len(error) > 10


def test_deltas_have_openai_shape_name_first_then_fragments():
    text = '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>\n<tool_call>{"name":"get_current_time","arguments":{}}</tool_call>'
    events = stream(HERMES, list(text), id_factory=iter(["call_a", "call_b"]).__next__)
    deltas = [e.to_openai() for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0] == {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    assert len([d for d in deltas if d["index"] == 0]) > 3  # arguments arrive in fragments
    assert all(set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in deltas[1:] if "id" not in d)
    second = [d for d in deltas if d["index"] == 1]
    assert second[0]["function"]["name"] == "get_current_time"
    assert "".join(d["function"]["arguments"] for d in second) == "{}"  # parameterless: "{}", never ""
    message = accumulate(events).to_openai_message()
    assert message["content"] is None and [c["id"] for c in message["tool_calls"]] == ["call_a", "call_b"]


def test_parameterless_call_without_arguments_key_streams_braces():
    events = stream(HERMES, list('<tool_call>{"name":"get_current_time"}</tool_call>'))
    args = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert args == "{}"


def test_unknown_tool_name_falls_back_to_content_with_an_error():
    text = '<tool_call>{"name":"rm_rf","arguments":{}}</tool_call>'
    parsed = assert_split_invariant(HERMES, text, tool_names=["get_weather"])
    assert parsed.calls == [] and "rm_rf" in parsed.errors[0] and parsed.content.startswith("<tool_call>")
    errors = [e for e in stream(HERMES, [text], tool_names=["get_weather"]) if isinstance(e, ToolCallError)]
    assert errors and errors[0].index is None


def test_parse_one_and_errors():
    assert HERMES.parse_one('{"name":"a","arguments":{"b":1}}').same_call(ToolCall("a", {"b": 1}))
    assert LLAMA3.parse_one('{"name":"a","parameters":{"b":1}}').arguments == {"b": 1}
    for body in ["not json", "[1]", '{"arguments":{}}', '{"name":"a","arguments":5}', '{"name":"a","arguments":"{bad"}']:
        with pytest.raises(ToolCallParseError):
            HERMES.parse_one(body)
    with pytest.raises(UserError, match="hermes"):
        get_format("xml")


# ── property: any calls, any split, every format ──────────────────────────────

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=12),
                      st.floats(allow_nan=False, allow_infinity=False, width=32))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
calls_strategy = st.lists(st.builds(lambda n, a: ToolCall(n, a), names, st.dictionaries(st.text(max_size=8), json_value, max_size=4)), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(list(FORMATS.values())), calls=calls_strategy, prefix=st.sampled_from(["", "Okay. ", "  "]),
       cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_rendered_calls_parse_back_under_any_split(fmt, calls, prefix, cuts):
    text = (prefix if fmt is HERMES else "") + fmt.format_calls(calls)
    pieces = split_at(text, cuts)
    whole = accumulate(stream(fmt, [text]))
    split = accumulate(stream(fmt, pieces))
    assert summary(split) == summary(whole)
    assert whole.errors == []
    assert [(c.name, c.arguments) for c in whole.calls] == [(c.name, json.loads(c.arguments_json)) for c in calls]
    assert all(c.arguments_json == o.arguments_json for c, o in zip(whole.calls, calls))  # compact in, same text out
    assert whole.content == (prefix.strip() if fmt is HERMES else "")


TOKENS = list('{}[]":,;<>/_ abcnmeltorgu\\\n\x01é🙂') + ["<tool_call>", "</tool_call>", '"name":', '"arguments":', '"parameters":',
                                                     "<|python_tag|>", '{"name":"a","arguments":', "1.50"]


@settings(max_examples=80, deadline=None)
@given(fmt=st.sampled_from(list(FORMATS.values())), text=st.lists(st.sampled_from(TOKENS), max_size=30).map("".join),
       cuts=st.lists(st.integers(0, 400), max_size=5), tool_names=st.sampled_from([None, ["a"]]))
def test_arbitrary_text_never_crashes_and_is_split_invariant(fmt, text, cuts, tool_names):
    assert_split_invariant(fmt, text, split_at(text, cuts), tool_names=tool_names)
    # Every event is one of the three kinds and content is never lost silently.
    events = stream(fmt, list(text))
    assert all(isinstance(e, (ContentDelta, ToolCallDelta, ToolCallError)) for e in events)


# ── the pieces: JSON text, the scanner, whole parsing on its own ──────────────

def test_object_text_finds_the_end_and_writes_compact_json():
    raw = ' {"a": "x y\\"}", "b":[1, {"c":\t2}], "d": "tab\there"}  tail'
    obj = ObjectText()
    used = sum(obj.feed(raw[i:i + 3]) for i in range(0, len(raw), 3))
    assert raw[used:] == "  tail" and obj.done
    assert obj.text == '{"a":"x y\\"}","b":[1,{"c":2}],"d":"tab\\u0009here"}'
    assert json.loads(obj.text) == json.loads(raw[:used], strict=False)
    not_object = ObjectText()
    assert not_object.feed("  [1]") == 2 and not_object.done and not_object.text == ""


def test_scanner_separates_text_from_call_text():
    scanner = CallScanner(HERMES)
    pieces = scanner.feed('Hi <tool_call>{"name":"a","arguments":{}}</tool_call>\n ok <tool') + scanner.finish()
    assert pieces == [("text", "Hi"), ("call", "<tool_call>"), ("body", '{"name":"a","arguments":{}}'), ("end", ""), ("text", "ok"), ("text", " <tool")]


def test_marker_split_across_pieces_is_held_never_sent_as_text():
    text = 'Checking. <tool_call>{"name":"a","arguments":{"k":"v"}}</tool_call>'
    for cut in range(len(text) + 1):
        parser = StreamingToolParser(HERMES)
        first = parser.feed(text[:cut])
        assert all("<" not in e.text for e in first if isinstance(e, ContentDelta)), (cut, first)
        parsed = accumulate(first + parser.feed(text[cut:]) + parser.finish())
        assert parsed.content == "Checking." and [(c.name, c.arguments_json) for c in parsed.calls] == [("a", '{"k":"v"}')]
    parser = StreamingToolParser(HERMES)
    assert [e.text for e in parser.feed("2 < 3 <tool_ca")] == ["2 < 3"]  # only what could still be the marker waits
    assert [e.text for e in parser.finish()] == [" <tool_ca"]  # and the end of the output says it was text


def test_multibyte_characters_split_byte_by_byte():
    """Byte-level tokens end inside a character: the decoder yields "" or whole characters; all agree."""
    text = 'Voilà ☕ <tool_call>{"name":"note","arguments":{"text":"café 日本 🙂"}}</tool_call> Fini 🙂'
    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces = [decoder.decode(bytes([b])) for b in text.encode()]
    assert "" in pieces  # the split really fell inside characters
    parsed = assert_split_invariant(HERMES, text, pieces)
    assert parsed.content == "Voilà ☕Fini 🙂"
    assert [(c.name, c.arguments_json) for c in parsed.calls] == [("note", '{"text":"café 日本 🙂"}')]  # as written, not \\u-escaped


def test_parallel_calls_with_text_around_them():
    text = ('Two lookups.\n<tool_call>{"name":"a","arguments":{"x":1}}</tool_call>\n'
            '<tool_call>{"name":"b","arguments":{"y":[2, 3]}}</tool_call>\nThen I answer.')
    parsed = assert_split_invariant(HERMES, text, split_at(text, [5, 20, 41, 60, 77, 100]))
    assert parsed.content == "Two lookups.Then I answer."
    assert [(c.name, c.arguments_json) for c in parsed.calls] == [("a", '{"x":1}'), ("b", '{"y":[2,3]}')]
    events = stream(HERMES, list(text), id_factory=iter(["call_1", "call_2"]).__next__)
    heads = [(e.index, e.id, e.name) for e in events if isinstance(e, ToolCallDelta) and e.name]
    assert heads == [(0, "call_1", "a"), (1, "call_2", "b")]
    llama = assert_split_invariant(LLAMA3, '{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"n": 2}}')
    assert [c.name for c in llama.calls] == ["a", "b"]


def test_whole_text_parsing_stands_on_its_own():
    """formats/ parses without the streaming parser (no lazy import, no cycle)."""
    code = ("import sys; from llm_deeper.tools.formats import HERMES; "
            "p = HERMES.parse('<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>'); "
            "assert [c.name for c in p.calls] == ['a']; assert 'llm_deeper.tools.streaming' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
