"""Constrained tool calls always end: free strings and arrays are bounded, and so is the number of calls."""

from __future__ import annotations

import json

import xgrammar as xgr

from llm_deeper.inference.constrained import ARRAY_MAX_ITEMS, MAX_CALLS, STRING_MAX_LENGTH, bounded_schema, grammar_cache
from llm_deeper.models.tiny import tiny_tokenizer
from llm_deeper.chat.tool_constraint import tool_call_constraint
from llm_deeper.tools.streaming import StreamingToolParser, accumulate

TIMER = [{"type": "function", "function": {"name": "set_timer", "parameters": {"type": "object", "properties": {
    "minutes": {"type": "integer", "minimum": 1}, "label": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
    "unit": {"type": "string", "enum": ["min", "h"]}, "code": {"type": "string", "maxLength": 400}}, "required": ["minutes"]}}}]


def engine_matcher(choice="required", parallel=True):
    """A matcher built the way the engine builds it (the server's GrammarCache)."""
    tokenizer = tiny_tokenizer()
    cache = grammar_cache(tokenizer, len(tokenizer))
    return xgr.GrammarMatcher(cache.compile(tool_call_constraint(TIMER, choice, parallel)))


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


# ── issue 26: schemas are capped, compiled outside the lock with a deadline, cached in a bounded LRU ──

def test_schema_caps_and_keywords_are_user_errors_naming_the_field():
    import pytest

    from llm_deeper.errors import UserError
    from llm_deeper.inference.constrained import MAX_DEPTH, MAX_PROPERTIES, Constraint

    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(MAX_PROPERTIES + 1)}}
    with pytest.raises(UserError, match=f"more than {MAX_PROPERTIES} properties"):
        Constraint.json_schema(wide)
    deep: dict = {"type": "string"}
    for _ in range(MAX_DEPTH + 1):
        deep = {"type": "array", "items": deep}
    with pytest.raises(UserError, match=f"deeper than {MAX_DEPTH}"):
        Constraint.tool_calls({"f": {"type": "object", "properties": {"a": deep}}}, where={"f": "tools[0].function.parameters"})
    with pytest.raises(UserError, match="bytes as JSON"):
        Constraint.json_schema({"type": "object", "description": "x" * 70_000})
    with pytest.raises(UserError, match=r"tools\[0\]\.function\.parameters\.properties\.a\.items\.minLength"):
        Constraint.tool_calls({"f": {"type": "object", "properties": {"a": {"type": "array", "items": {"minLength": "abc"}}}}},
                              where={"f": "tools[0].function.parameters"})
    # A key that is not a schema keyword is not read as a schema (it crashed the grammar builder: a 500).
    odd = Constraint.tool_calls({"f": {"type": "object", "x": {"type": "string", "minLength": "abc"}}})
    assert bounded_schema(json.loads(odd.tools[0][1]))["x"] == {"type": "string", "minLength": "abc"}


def test_a_slow_compile_holds_no_lock_and_misses_its_deadline():
    import threading

    import pytest

    from llm_deeper.errors import UserError
    from llm_deeper.inference.constrained import Constraint, GrammarCache

    tokenizer = tiny_tokenizer()
    cache = GrammarCache(tokenizer, len(tokenizer), deadline_s=0.5)
    slow, fast = Constraint.json_schema({"type": "object", "properties": {"slow": {"type": "string"}}}), Constraint.json_object()
    release = threading.Event()
    real = cache._xgrammar_compile

    def compile_or_wait(constraint):
        if constraint == slow:
            release.wait(30)  # a schema that compiles for as long as the test says
        return real(constraint)

    cache._xgrammar_compile = compile_or_wait
    try:
        with pytest.raises(UserError, match="longer than 0.5 s"):
            cache.compile(slow)
        assert cache.compile(fast) is cache.compile(fast)  # others compile (and hit the cache) while it still runs
    finally:
        release.set()


def test_the_compiled_grammar_cache_is_a_bounded_lru():
    from llm_deeper.inference.constrained import Constraint, GrammarCache

    tokenizer = tiny_tokenizer()
    cache = GrammarCache(tokenizer, len(tokenizer), max_entries=2)
    a, b, c = (Constraint.json_schema({"type": "object", "properties": {name: {"type": "integer"}}}) for name in "abc")
    first_a = cache.compile(a)
    cache.compile(b)
    assert cache.compile(a) is first_a  # a used again: b is now the oldest
    cache.compile(c)
    assert len(cache) == 2 and cache.compile(a) is first_a and b not in cache._compiled


# ── issue 23: a reply ends where it repeats a call, or where another call would not fit ──

def test_the_grammar_state_ends_a_reply_at_a_repeated_call():
    from llm_deeper.inference.constrained import grammar_cache

    tokenizer = tiny_tokenizer()
    cache = grammar_cache(tokenizer, len(tokenizer))
    constraint = tool_call_constraint(TIMER, "required", True)

    def done_after(text: str, budget: int | None = None) -> bool:
        state = cache.state(constraint, budget)
        for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
            assert state.accept(token), text
        return state.done

    one, other = call('{"minutes":5}'), call('{"minutes":6}')
    assert not done_after(one) and not done_after(one + "\n" + other)
    assert done_after(one + "\n" + other + "\n" + one)  # the same name and arguments again: the reply ends here
    size = len(tokenizer(one, add_special_tokens=False)["input_ids"])
    assert not done_after(one, budget=2 * size + 1)  # room for another call of this length (and its separator)
    assert done_after(one, budget=2 * size)  # none (the next call needs a separator too): the reply ends after this call, not inside the next
