"""Bad input gets the OpenAI error shape and the right status; the server keeps serving."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny_llama_dir):
    engine = Engine.load(str(tiny_llama_dir), max_batch=2, max_queue=4)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(engine):
    with BackgroundServer(create_app(engine, default_max_tokens=8)) as srv:
        yield srv


def post(server, path, body=None, content=None, headers=None):
    return httpx.post(server.url + path, json=body, content=content, headers=headers, timeout=30)


def assert_error(response, status, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def ok_after(server, engine):
    reply = post(server, "/v1/chat/completions", {"model": engine.name, "messages": HI, "max_tokens": 2})
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["role"] == "assistant"


CASES = {
    "negative max_tokens": ({"messages": HI, "max_tokens": -5}, 400, "max_tokens"),
    "zero max_tokens": ({"messages": HI, "max_tokens": 0}, 400, "max_tokens"),
    # max_completion_tokens wins, but a max_tokens past the context is refused as /openapi.json's maximum says (was a 200)
    "max_tokens past the context beside max_completion_tokens": ({"messages": HI, "max_tokens": 10**6, "max_completion_tokens": 2}, 400, "max_tokens"),
    "temperature too high": ({"messages": HI, "temperature": 3.5}, 400, "temperature"),
    "top_p zero": ({"messages": HI, "top_p": 0}, 400, "top_p"),
    "empty messages": ({"messages": []}, 400, "messages"),
    "unknown role": ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, None),
    "no messages": ({}, 400, "messages"),
    "n too large": ({"messages": HI, "n": 1000}, 400, "n"),
    "bad response_format": ({"messages": HI, "response_format": {"type": "xml"}}, 400, None),
    "json_schema without schema": ({"messages": HI, "response_format": {"type": "json_schema"}}, 400, "response_format"),
    "invalid tool schema": ({"messages": HI, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": 12}}}}}]}, 400, "tools"),
    "named tool not in tools": ({"messages": HI, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}, 400, None),
    "required without tools": ({"messages": HI, "tool_choice": "required"}, 400, None),
    "too many stops": ({"messages": HI, "stop": ["a"] * 17}, 400, "stop"),  # issue 26: 130,000 stops slowed every request's step
    "stop too long": ({"messages": HI, "stop": "x" * 129}, 400, "stop"),
    "boolean for an integer": ({"messages": HI, "top_logprobs": True}, 400, "top_logprobs"),  # issue 26 §5: as /openapi.json says
    "integer for a boolean": ({"messages": HI, "stream": 0}, 400, "stream"),
    "boolean for a number": ({"messages": HI, "frequency_penalty": True}, 400, "frequency_penalty"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_parameters_are_400(server, engine, case):
    body, status, param = CASES[case]
    assert_error(post(server, "/v1/chat/completions", {"model": engine.name, **body}), status, param)
    ok_after(server, engine)


def test_malformed_json_is_400(server, engine):
    error = assert_error(post(server, "/v1/chat/completions", content=b'{"messages": [', headers={"content-type": "application/json"}), 400)
    assert "JSON" in error["message"]
    assert_error(post(server, "/v1/completions", content=b"not json", headers={"content-type": "application/json"}), 400)
    ok_after(server, engine)


def test_unknown_model_is_404(server, engine):
    error = assert_error(post(server, "/v1/chat/completions", {"model": "gpt-17", "messages": HI}), 404, "model")
    assert error["code"] == "model_not_found" and engine.name in error["message"]
    assert_error(post(server, "/v1/completions", {"model": "gpt-17", "prompt": "x"}), 404, "model")
    ok_after(server, engine)


def test_prompt_longer_than_context_names_both_numbers(server, engine):
    long = "x" * (engine.context_length + 100)
    error = assert_error(post(server, "/v1/chat/completions", {"model": engine.name, "messages": [{"role": "user", "content": long}]}), 400)
    prompt_tokens = len(engine.encode([{"role": "user", "content": long}]))
    assert str(engine.context_length) in error["message"] and str(prompt_tokens) in error["message"]
    error = assert_error(post(server, "/v1/chat/completions", {"model": engine.name, "messages": HI, "max_tokens": engine.context_length}), 400, "max_tokens")
    assert str(engine.context_length) in error["message"]
    assert_error(post(server, "/v1/completions", {"model": engine.name, "prompt": long}), 400)
    ok_after(server, engine)


def test_unknown_route_and_method(server, engine):
    assert_error(httpx.get(server.url + "/v1/nothing"), 404)
    assert_error(httpx.get(server.url + "/v1/chat/completions"), 405)
    ok_after(server, engine)


def test_openai_client_raises_typed_errors(server, engine):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=HI)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=engine.name, messages=HI, temperature=9)
    assert info.value.body["param"] == "temperature"


def test_too_many_requests_is_429(tmp_path):
    from llm_deeper.models.tiny import save_tiny_model

    # A long context, so the first request runs for seconds (it is cancelled early).
    engine = Engine.load(str(save_tiny_model(tmp_path / "tiny", context=8192)), max_batch=1, max_queue=0)
    try:
        with BackgroundServer(create_app(engine)) as srv:
            long = {"model": engine.name, "messages": HI, "max_tokens": 8000, "stream": True, "ignore_eos": True}
            with httpx.Client(timeout=30) as http, http.stream("POST", srv.url + "/v1/chat/completions", json=long) as first:
                lines = first.iter_lines()
                next(lines)  # the first request holds the only slot now
                error = assert_error(http.post(srv.url + "/v1/chat/completions", json={"model": engine.name, "messages": HI, "max_tokens": 2}), 429)
                assert "retry" in error["message"]
            # The stream was closed (client gone): the slot frees and requests succeed again.
            import time

            deadline = time.monotonic() + 5
            while engine.stats()["running"] and time.monotonic() < deadline:
                time.sleep(0.02)
            ok_after(srv, engine)
    finally:
        engine.close()


def test_api_key_is_enforced(engine):
    with BackgroundServer(create_app(engine, api_key="s3cret")) as srv:
        assert_error(httpx.get(srv.url + "/v1/models"), 401)
        assert_error(httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(httpx.post(srv.url + "/v1/chat/completions", json={"messages": HI}), 401)
        assert httpx.get(srv.url + "/health").status_code == 200  # health stays open for load balancers
        good = openai.OpenAI(base_url=srv.url + "/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in good.models.list().data] == [engine.name]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_concurrent_bad_and_good_requests(server, engine):
    results = []

    def call(body):
        results.append(post(server, "/v1/chat/completions", body).status_code)

    bodies = [{"model": engine.name, "messages": HI, "max_tokens": 3}, {"model": engine.name, "messages": HI, "max_tokens": -1},
              {"model": "zzz", "messages": HI}] * 3
    threads = [threading.Thread(target=call, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted([200, 400, 404] * 3)


def test_host_header_check_refuses_foreign_names(server, engine):
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends `Host: evil.example`."""
    port = server.url.rsplit(":", 1)[1]
    error = assert_error(httpx.get(server.url + "/v1/models", headers={"Host": f"evil.example:{port}"}), 400)
    assert error["code"] == "invalid_host" and "--allowed-host" in error["message"]
    assert_error(post(server, "/v1/chat/completions", {"messages": HI}, headers={"Host": "evil.example"}), 400)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "LocalHost."):  # names we allow, and any address
        assert httpx.get(server.url + "/v1/models", headers={"Host": host}).status_code == 200, host
    with BackgroundServer(create_app(engine, allowed_hosts=("models.internal",))) as srv:
        assert httpx.get(srv.url + "/v1/models", headers={"Host": "models.internal:80"}).status_code == 200
        assert httpx.get(srv.url + "/v1/models", headers={"Host": "localhost"}).status_code == 400  # the list replaces the default
    with BackgroundServer(create_app(engine, allowed_hosts=("*",))) as srv:
        assert httpx.get(srv.url + "/v1/models", headers={"Host": "evil.example"}).status_code == 200
