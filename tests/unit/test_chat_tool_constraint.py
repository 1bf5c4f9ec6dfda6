"""Constrained tool calls: the grammar admits exactly valid calls; a random model always produces one."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_deeper.models.tiny import tiny_llama, tiny_tokenizer
from llm_deeper.tools.builtin import default_registry
from llm_deeper.inference.constrained import Constraint, ebnf, grammar_cache, structural_tag
from llm_deeper.chat.tool_constraint import tool_call_constraint
from llm_deeper.tools.formats import HERMES
from llm_deeper.tools.openai_spec import InvalidToolsError


@pytest.fixture(scope="module")
def tiny():
    # One thread: on a busy 2-core machine a tiny model decodes ~20x faster than with two.
    from llm_deeper.inference.engine import Engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with Engine.from_model(tiny_llama(context=4096), tiny_tokenizer(), max_batch=1) as engine:
        yield engine, engine.tokenizer
    torch.set_num_threads(threads)


def matcher(tokenizer, grammar):
    import xgrammar as xgr

    return xgr.GrammarMatcher(grammar_cache(tokenizer, 259).compile(grammar))


def accepts(tokenizer, grammar, text) -> bool:
    m = matcher(tokenizer, grammar)
    return m.accept_string(text) and (m.is_completed() or m.is_terminated())


WEATHER = '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>'
TIME = '<tool_call>{"name":"get_current_time","arguments":{}}</tool_call>'


def test_required_grammar_admits_valid_calls_only():
    tokenizer = tiny_tokenizer()
    registry = default_registry()
    required = tool_call_constraint(registry, "required", parallel_tool_calls=True)
    assert accepts(tokenizer, required, WEATHER)
    assert accepts(tokenizer, required, WEATHER + "\n" + TIME)  # parallel calls
    for bad in ["Hello", WEATHER.replace('"Paris"', '3'), WEATHER.replace(":{", ": {", 1),  # not text, not typed, not compact
                WEATHER.replace("get_weather", "get_wether"), WEATHER.replace("}}<", ',"country":"FR"}}<'),
                '<tool_call>{"name":"get_weather","arguments":{"unit":"celsius"}}</tool_call>']:  # missing required city
        assert not accepts(tokenizer, required, bad), bad
    single = tool_call_constraint(registry, "required", parallel_tool_calls=False)
    assert accepts(tokenizer, single, WEATHER) and not accepts(tokenizer, single, WEATHER + "\n" + TIME)
    named = tool_call_constraint(registry, {"type": "function", "function": {"name": "get_current_time"}})
    assert accepts(tokenizer, named, TIME) and not accepts(tokenizer, named, WEATHER)
    assert not accepts(tokenizer, named, TIME + "\n" + TIME)  # a named tool: exactly one call (issue 23), as OpenAI and vLLM
    assert "root ::=" in ebnf(named) and structural_tag(named)["type"] == "structural_tag"


def test_a_cached_grammar_keeps_its_tokenizer_so_no_other_tokenizer_takes_its_id():
    import gc
    import weakref

    tokenizer = tiny_tokenizer()
    alive = weakref.ref(tokenizer)
    grammar_cache(tokenizer, 259)
    del tokenizer
    gc.collect()
    assert alive() is not None  # freed, its id could go to the next tokenizer made, which would get this one's grammars


def test_auto_grammar_allows_text_and_constrains_calls_once_started():
    tokenizer = tiny_tokenizer()
    auto = tool_call_constraint(default_registry(), "auto")
    assert accepts(tokenizer, auto, "It is sunny, no tool needed.")
    assert accepts(tokenizer, auto, "Let me look. " + WEATHER)
    m = matcher(tokenizer, auto)
    assert m.accept_string("Sure <tool_call>")
    assert not m.accept_string('{"name":"rm"')  # inside a call only real tools are possible
    assert tool_call_constraint(default_registry(), "none") is None
    with pytest.raises(InvalidToolsError):
        tool_call_constraint(default_registry(), {"type": "function", "function": {"name": "nope"}})


# ── property: random schemas, random model, always a schema-valid call ───────

def leaf_schema():
    return st.one_of(
        st.just({"type": "boolean"}),
        st.integers(0, 50).map(lambda hi: {"type": "integer", "minimum": -3, "maximum": hi}),
        st.integers(1, 20).map(lambda hi: {"type": "number", "minimum": 0, "maximum": hi}),
        st.integers(0, 4).map(lambda n: {"type": "string", "maxLength": n}),
        st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=4), min_size=1, max_size=3, unique=True).map(lambda v: {"type": "string", "enum": v}),
    )


def object_schema(depth: int):
    child = leaf_schema() if depth == 0 else st.one_of(leaf_schema(), object_schema(depth - 1),
                                                       leaf_schema().map(lambda s: {"type": "array", "items": s, "maxItems": 2}))
    return st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), child, max_size=3).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props)) if props else st.nothing(), unique=True, max_size=len(props)).map(
            lambda req: {"type": "object", "properties": props, "required": req}))


tools_strategy = st.lists(st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), object_schema(1)), min_size=1, max_size=3,
                          unique_by=lambda t: t[0]).map(lambda items: [{"type": "function", "function": {"name": n, "parameters": p}} for n, p in items])


# derandomize: CI replays the same 25 examples, so a pass here is a pass there.
@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tools=tools_strategy, seed=st.integers(0, 10_000), parallel=st.booleans())
def test_random_model_always_emits_schema_valid_calls(tiny, tools, seed, parallel):
    engine, tokenizer = tiny
    constraint = tool_call_constraint(tools, "required", parallel_tool_calls=parallel)
    prompt = tokenizer("<|im_start|>assistant\n")["input_ids"]
    # A random model ends a parallel turn by chance (EOS vs "\n" after each call): leave room for many calls.
    text = engine.generate(prompt, max_new_tokens=3000 if parallel else 400, temperature=1.0, seed=seed, constraint=constraint).text
    parsed = HERMES.parse(text, tool_names=[t["function"]["name"] for t in tools])
    assert parsed.errors == [] and parsed.content == "", text
    assert parsed.calls and (parallel or len(parsed.calls) == 1)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for call in parsed.calls:
        jsonschema.validate(call.arguments, schemas[call.name])
        assert json.loads(call.arguments_json) == call.arguments  # strict JSON, even with control characters


def test_json_schema_constraint_for_response_format(tiny):
    engine, tokenizer = tiny
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["ok", "n"]}
    prompt = tokenizer("<|im_start|>assistant\n")["input_ids"]
    for seed in range(3):
        text = engine.generate(prompt, max_new_tokens=40, temperature=1.0, seed=seed, constraint=Constraint.json_schema(schema)).text
        jsonschema.validate(json.loads(text), schema)
        assert " " not in text


def test_engine_stream_yields_every_token_and_parses_like_the_whole(tiny):
    from llm_deeper.tools.streaming import StreamingToolParser, accumulate

    engine, tokenizer = tiny
    constraint = tool_call_constraint(default_registry().subset(["get_current_time", "get_weather"]), "required", parallel_tool_calls=False)
    prompt = tokenizer("<|im_start|>assistant\n")["input_ids"]
    pieces = [e.text for e in engine.stream(prompt, max_new_tokens=200, constraint=constraint) if e.text]
    assert len(pieces) > 20  # byte-level tokens: one piece per token, not one at the end
    parser = StreamingToolParser("hermes")
    events = [e for piece in pieces for e in parser.feed(piece)] + parser.finish()
    whole = HERMES.parse("".join(pieces))
    assert [(c.name, c.arguments_json) for c in accumulate(events).calls] == [(c.name, c.arguments_json) for c in whole.calls]
    assert len(whole.calls) == 1 and not whole.errors
