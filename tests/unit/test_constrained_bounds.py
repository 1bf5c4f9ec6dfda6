"""Constrained tool calls always end: free strings and arrays are bounded, and so is the number of calls."""

from __future__ import annotations

import xgrammar as xgr

from llm_deeper.inference.constrained import ARRAY_MAX_ITEMS, MAX_CALLS, STRING_MAX_LENGTH, bounded_schema, grammar_cache
from llm_deeper.models.tiny import tiny_tokenizer
from llm_deeper.tools.constrain import tool_call_grammar
from llm_deeper.tools.streaming import StreamingToolParser, accumulate

TIMER = [{"type": "function", "function": {"name": "set_timer", "parameters": {"type": "object", "properties": {
    "minutes": {"type": "integer", "minimum": 1}, "label": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
    "unit": {"type": "string", "enum": ["min", "h"]}, "code": {"type": "string", "maxLength": 400}}, "required": ["minutes"]}}}]


def engine_matcher(choice="required", parallel=True):
    """A matcher built the way the engine builds it (the server's GrammarCache)."""
    tokenizer = tiny_tokenizer()
    cache = grammar_cache(tokenizer, len(tokenizer))
    return xgr.GrammarMatcher(cache.grammar(tool_call_grammar(TIMER, choice, parallel)))


def call(arguments: str) -> str:
    return '<tool_call>{"name":"set_timer","arguments":' + arguments + "}</tool_call>"


def test_bounded_schema_adds_limits_only_where_none_is_set():
    schema = TIMER[0]["function"]["parameters"]
    out = bounded_schema(schema)["properties"]
    assert out["label"]["maxLength"] == STRING_MAX_LENGTH and out["tags"]["maxItems"] == ARRAY_MAX_ITEMS
    assert out["tags"]["items"]["maxLength"] == STRING_MAX_LENGTH
    assert "maxLength" not in out["unit"] and out["code"]["maxLength"] == 400 and "maxLength" not in out["minutes"]
    assert bounded_schema({"type": "string", "minLength": 500})["maxLength"] == 500  # never below a minimum
    assert schema["properties"]["label"] == {"type": "string"}  # the caller's schema is left alone


def test_a_looping_string_must_close_and_the_call_must_end():
    ok = engine_matcher()
    assert ok.accept_string(call('{"minutes":45,"label":"' + "x" * STRING_MAX_LENGTH + '"}'))
    looping = engine_matcher()
    assert not looping.accept_string(call('{"minutes":10,"label":"' + "10 minutes is 10 minutes. " * 6 + '"}'))  # 156 characters
    assert engine_matcher().accept_string(call('{"minutes":1,"code":"' + "y" * 400 + '"}'))  # an explicit maxLength wins


def test_at_most_max_calls_per_reply():
    one = call('{"minutes":5}')
    full = engine_matcher()
    assert full.accept_string("\n".join([one] * MAX_CALLS)) and full.is_terminated() is False
    assert not engine_matcher().accept_string("\n".join([one] * (MAX_CALLS + 1)))
    single = engine_matcher(parallel=False)
    assert single.accept_string(one) and not single.accept_string("\n" + one)


def test_a_cut_call_is_kept_with_its_partial_arguments_when_asked():
    text = 'Sure. <tool_call>{"name":"set_timer","arguments":{"minutes":10,"label":"Set ti'
    parser = StreamingToolParser("hermes", tool_names=["set_timer"])
    events = parser.feed(text) + parser.finish()
    assert accumulate(events).calls == [] and accumulate(events).content == "Sure."
    kept = accumulate(events, keep_cut=True)
    assert kept.content == "Sure." and [(c.name, c.arguments_json) for c in kept.calls] == [("set_timer", '{"minutes":10,"label":"Set ti')]
    split = StreamingToolParser("hermes", tool_names=["set_timer"])
    pieces = [e for i in range(0, len(text), 7) for e in split.feed(text[i:i + 7])] + split.finish()
    assert [(c.name, c.arguments_json) for c in accumulate(pieces, keep_cut=True).calls] == [("set_timer", '{"minutes":10,"label":"Set ti')]
    header_only = StreamingToolParser("hermes", tool_names=["set_timer"])
    cut_early = accumulate(header_only.feed('<tool_call>{"name":"set_t') + header_only.finish(), keep_cut=True)
    assert cut_early.calls == [] and cut_early.content == '<tool_call>{"name":"set_t'  # not announced yet: its text, as streamed
