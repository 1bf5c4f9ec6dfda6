"""The server on a real socket, called with the official openai client (sync and async)."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import openai
import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer

HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def tiny_long_dir(tmp_path_factory):
    """A tiny random Llama with a 2048-token context (the byte tokenizer makes tool prompts long)."""
    from llm_deeper.models.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-long"), arch="llama", context=2048)


@pytest.fixture(scope="module")
def server(tiny_long_dir):
    engine = Engine.load(str(tiny_long_dir), max_batch=4, max_queue=16)
    with BackgroundServer(create_app(engine, default_max_tokens=32)) as srv:
        srv.engine = engine
        yield srv
    engine.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_the_base_model(client, server):
    assert [m.id for m in client.models.list().data] == [server.engine.name]


def test_chat_usage_counts_and_n_choices(client, server):
    reply = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=7, n=3, temperature=0.9, seed=1,
                                           extra_body={"ignore_eos": True})
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" for c in reply.choices)
    assert reply.usage.prompt_tokens == len(server.engine.encode(HI))
    assert reply.usage.completion_tokens == 3 * 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 21
    assert len({c.message.content for c in reply.choices}) > 1, "different seeds per choice give different samples"


def test_stream_concatenation_equals_non_streamed(client, server):
    kwargs = dict(model=server.engine.name, messages=HI, max_tokens=24, temperature=0.8, seed=7)
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [whole.choices[0].finish_reason]


def test_async_client_concurrent_streams(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)

        async def one(seed):
            stream = await client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=12, temperature=1.0, seed=seed, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            whole = await client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=12, temperature=1.0, seed=seed)
            return text, whole.choices[0].message.content

        results = await asyncio.gather(*(one(s) for s in range(5)))
        await client.close()
        return results

    for streamed, whole in asyncio.run(main()):
        assert streamed == whole


def test_completions_with_logprobs_and_stream(client, server):
    kwargs = dict(model=server.engine.name, prompt="Once upon", max_tokens=6, temperature=0.0)
    whole = client.completions.create(logprobs=2, n=2, **kwargs)
    assert len(whole.choices) == 2 and whole.choices[0].text == whole.choices[1].text  # greedy
    lp = whole.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == 6 and all(v <= 0 for v in lp.token_logprobs)
    assert all(len(top) <= 2 for top in lp.top_logprobs)
    # Greedy picks the most likely token, so its logprob is the best alternative's.
    assert lp.token_logprobs[0] == pytest.approx(max(lp.top_logprobs[0].values()), abs=1e-6)  # one number, reported twice (JSON float)
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kwargs) if c.choices)
    assert streamed == whole.choices[0].text


def test_chat_logprobs(client, server):
    reply = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert len(content) == 4 and all(len(t.top_logprobs) == 3 for t in content)
    assert content[0].logprob == pytest.approx(content[0].top_logprobs[0].logprob, abs=1e-6)  # one number, reported twice


def test_stop_string_cuts_the_reply(client, server):
    base = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=30, temperature=0).choices[0].message.content
    stop = base[5:8]
    reply = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=30, temperature=0, stop=[stop])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == base[: base.index(stop)]
    streamed = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=30, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == base[: base.index(stop)]


SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"}}, "required": ["name", "age"]}


def test_response_format_json_schema_and_object(client, server):
    reply = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=60, temperature=0.7, seed=3,
                                           response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}})
    value = json.loads(reply.choices[0].message.content)
    jsonschema.validate(value, SCHEMA)
    assert reply.choices[0].finish_reason == "stop"
    assert " " not in reply.choices[0].message.content.replace(value["name"], ""), "compact JSON"
    reply = client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=60, temperature=0, response_format={"type": "json_object"})
    if reply.choices[0].finish_reason == "stop":
        json.loads(reply.choices[0].message.content)


TOOLS = [
    {"type": "function", "function": {"name": "get_time", "description": "Current time", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "add", "description": "Add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}},
]


def _accumulate(chunks):
    calls, content = {}, ""
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for tc in delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = tc.id or entry["id"]
            entry["name"] = tc.function.name or entry["name"]
            entry["arguments"] += tc.function.arguments or ""
    return content, [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_time"}}, {"type": "function", "function": {"name": "add"}}])
def test_tool_calls_streamed_equal_whole(client, server, choice):
    kwargs = dict(model=server.engine.name, messages=[{"role": "user", "content": "What time is it?"}], tools=TOOLS, tool_choice=choice,
                  parallel_tool_calls=False, max_tokens=120, temperature=0.7, seed=11)
    whole = client.chat.completions.create(**kwargs)
    message = whole.choices[0].message
    assert whole.choices[0].finish_reason == "tool_calls"
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    args = json.loads(call.function.arguments)
    if call.function.name == "get_time":
        assert call.function.arguments == "{}", "parameterless tools get '{}'"
    else:
        jsonschema.validate(args, TOOLS[1]["function"]["parameters"])
    if isinstance(choice, dict):
        assert call.function.name == choice["function"]["name"]
    content, calls, finish = _accumulate(client.chat.completions.create(stream=True, **kwargs))
    assert finish == "tool_calls"
    assert [(c["name"], c["arguments"]) for c in calls] == [(call.function.name, call.function.arguments)]
    assert calls[0]["id"] and (content or None) == message.content


def test_tool_history_and_none(client, server):
    history = [
        {"role": "user", "content": "add 2 and 3"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":2,"b":3}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ]
    reply = client.chat.completions.create(model=server.engine.name, messages=history, tools=TOOLS, tool_choice="none", max_tokens=8, temperature=0)
    assert reply.choices[0].message.tool_calls is None and reply.choices[0].finish_reason in ("stop", "length")
    reply = client.chat.completions.create(model=server.engine.name, messages=history, tools=TOOLS, tool_choice="auto", max_tokens=8, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_cancelled_stream_frees_the_engine(server):
    import time

    import httpx

    body = {"model": server.engine.name, "messages": HI, "max_tokens": 1500, "stream": True, "ignore_eos": True}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", server.url + "/v1/chat/completions", json=body) as response:
            lines = response.iter_lines()
            for _ in range(3):
                next(lines)
            assert server.engine.stats()["running"] == 1
    deadline = time.monotonic() + 5
    while server.engine.stats()["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.engine.stats()["running"] == 0, "the disconnected request must leave the batch"


def test_metrics_are_prometheus_text(client, server):
    import re

    import httpx

    client.chat.completions.create(model=server.engine.name, messages=HI, max_tokens=3)
    text = httpx.get(server.url + "/metrics").text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.e+Inf]+$')
    values = {}
    for line in text.strip().splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert sample.match(line), f"not a Prometheus sample line: {line!r}"
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    assert values['llm_deeper_requests_total{route="/v1/chat/completions",status="200"}'] >= 1
    assert values["llm_deeper_completion_tokens_total"] >= 3
    assert values['llm_deeper_request_latency_seconds_bucket{le="+Inf"}'] == values["llm_deeper_request_latency_seconds_count"] >= 1
    for gauge in ("llm_deeper_batch_size", "llm_deeper_queue_depth", "llm_deeper_running_requests"):
        assert gauge in values


def test_cached_prompt_tokens_are_reported_as_openai_does(client, server):
    """A repeated system prompt is served from the prefix cache: usage.prompt_tokens_details.cached_tokens says how much."""
    import httpx

    from llm_deeper.inference.prefix_cache import BLOCK_TOKENS

    messages = [{"role": "system", "content": "Cached tool prompt. " * 10}, {"role": "user", "content": "first"}]
    kwargs = dict(model=server.engine.name, max_tokens=4, temperature=0)
    first = client.chat.completions.create(messages=messages, **kwargs)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    again = client.chat.completions.create(messages=messages, **kwargs)
    cached = again.usage.prompt_tokens_details.cached_tokens
    assert cached == (again.usage.prompt_tokens - 1) // BLOCK_TOKENS * BLOCK_TOKENS > 0
    assert again.choices[0].message.content == first.choices[0].message.content
    turn = messages[:1] + [{"role": "user", "content": "second question"}]
    chunks = list(client.chat.completions.create(messages=turn, stream=True, stream_options={"include_usage": True}, **kwargs))
    assert 0 < chunks[-1].usage.prompt_tokens_details.cached_tokens < chunks[-1].usage.prompt_tokens
    n_choices = client.chat.completions.create(messages=turn, n=3, **kwargs)  # this prompt was just streamed
    assert n_choices.usage.prompt_tokens_details.cached_tokens == (n_choices.usage.prompt_tokens - 1) // BLOCK_TOKENS * BLOCK_TOKENS, \
        "a prompt counts once, as in prompt_tokens"
    prompt = "Completions share prefixes too. " * 5
    text = [client.completions.create(model=server.engine.name, prompt=prompt, max_tokens=2) for _ in range(2)]
    assert text[0].usage.prompt_tokens_details.cached_tokens == 0 < text[1].usage.prompt_tokens_details.cached_tokens
    streamed = list(client.completions.create(model=server.engine.name, prompt=prompt, max_tokens=2, stream=True,
                                              stream_options={"include_usage": True}))
    assert streamed[-1].usage.prompt_tokens_details.cached_tokens == text[1].usage.prompt_tokens_details.cached_tokens
    health = httpx.get(server.url + "/health").json()["prefix_cache"]
    assert health["enabled"] and health["budget_bytes"] > 0 and health["hit_tokens"] > 0
    metrics = httpx.get(server.url + "/metrics").text
    assert f"llm_deeper_prefix_cache_hit_tokens_total {health['hit_tokens']}" in metrics
    assert f"llm_deeper_prefix_cache_budget_bytes {health['budget_bytes']}" in metrics


def test_health_and_web_page(server):
    import httpx

    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok"
    # the engine's thread count and how often it gave up a core (bench_vllm_vs_ours reports the latter)
    assert health["threads"] >= 1 and health["threads_lowered"] >= 0
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "<textarea" in page.text


@pytest.mark.slow
def test_default_model_through_the_openai_client(default_model):
    engine = Engine(default_model, max_batch=2)
    try:
        with BackgroundServer(create_app(engine)) as srv:
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
            question = [{"role": "user", "content": "What is the capital of France?"}]
            whole = client.chat.completions.create(model=engine.name, messages=question, max_tokens=16, temperature=0)
            streamed = "".join(c.choices[0].delta.content or "" for c in
                               client.chat.completions.create(model=engine.name, messages=question, max_tokens=16, temperature=0, stream=True) if c.choices)
            assert "Paris" in whole.choices[0].message.content and streamed == whole.choices[0].message.content
    finally:
        engine.close()
