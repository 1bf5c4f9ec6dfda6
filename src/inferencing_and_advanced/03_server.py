"""An OpenAI-compatible server: start it, call it with the official client, stream, read errors

You will learn:
- the server is the engine behind the OpenAI HTTP API: any OpenAI client (Python,
  JavaScript, curl, the web page at /) talks to it by changing only the base URL;
- a non-streamed reply vs a streamed one (server-sent events: `data: {json}` chunks,
  then `data: [DONE]`), and that both carry the same text for the same seed;
- `/v1/models` lists the base model and every LoRA adapter, served by name;
- errors have one shape, `{"error": {"message", "type", "param", "code"}}`, with the
  status that says who must act (400 bad input, 404 unknown model, 429 busy);
- `response_format` with a JSON schema makes even a 135M model answer valid JSON;
- `/metrics` exposes Prometheus counters and histograms.

Run:   python src/inferencing_and_advanced/03_server.py   (or: llm-deeper lessons run inferencing_and_advanced/03)
       The same server from a terminal: llm-deeper serve   (then open http://127.0.0.1:8000/)
Takes: about 30 s on 2 CPU cores (--quick: shorter replies).
"""

# %%
import json

import httpx
import openai

from llm_deeper.inference.engine import Engine
from llm_deeper.lesson import check, done, is_quick, section, show
from llm_deeper.serve.app import create_app
from llm_deeper.serve.background import BackgroundServer

QUICK = is_quick()
MAX_TOKENS = 10 if QUICK else 48

# %% [markdown]
# ## 1. Start the server in this process
# `llm-deeper serve` does the same in a terminal; here it runs in a background
# thread on a free port of 127.0.0.1.

# %%
section("1. Start the server")
engine = Engine.load("smollm2-135m-instruct", max_batch=4)
server = BackgroundServer(create_app(engine)).start()
show("base URL", server.url + "/v1")
show("web chat page", server.url + "/")
check("the health route answers", httpx.get(server.url + "/health").json()["status"] == "ok")

# %% [markdown]
# ## 2. The official openai client
# Only `base_url` changes; the API key is unused unless the server was started
# with `--api-key`.

# %%
section("2. List models, ask a question")
client = openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed")
models = [m.id for m in client.models.list().data]
show("models", models)
check("the base model is listed", engine.name in models)
question = [{"role": "user", "content": "What is the capital of France?"}]
reply = client.chat.completions.create(model=engine.name, messages=question, max_tokens=MAX_TOKENS, temperature=0)
show("reply", repr(reply.choices[0].message.content))
show("usage", reply.usage.model_dump(exclude_none=True))
check("the model knows the answer", "Paris" in reply.choices[0].message.content)
check("usage adds up", reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens)

# %% [markdown]
# ## 3. Streaming
# With `stream=True` the reply arrives as chunks while it is generated. For the
# same seed, the chunks put together equal the non-streamed reply.

# %%
section("3. Stream a reply")
story = [{"role": "user", "content": "Write one sentence about the sea."}]
print("  streamed: ", end="", flush=True)
pieces = []
for chunk in client.chat.completions.create(model=engine.name, messages=story, max_tokens=MAX_TOKENS, temperature=0.8, seed=3, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
whole = client.chat.completions.create(model=engine.name, messages=story, max_tokens=MAX_TOKENS, temperature=0.8, seed=3)
check("streamed pieces == non-streamed text (same seed)", "".join(pieces) == whole.choices[0].message.content, f"{len(pieces)} chunks")
with httpx.stream("POST", server.url + "/v1/chat/completions", json={"model": engine.name, "messages": question, "max_tokens": 3, "stream": True}) as raw:
    lines = [line for line in raw.iter_lines() if line]
show("what goes over the wire (id, created and model left out)", "")
for line in lines:
    payload = line.removeprefix("data: ")
    print("    data: " + (payload if payload == "[DONE]" else json.dumps({k: v for k, v in json.loads(payload).items() if k in ("object", "choices")})))
check("an SSE stream ends with data: [DONE]", lines[-1] == "data: [DONE]")

# %% [markdown]
# ## 4. Constrained JSON
# `response_format` with a JSON schema restricts every sampled token to ones
# that keep the output valid (xgrammar builds the token masks).

# %%
section("4. JSON that always parses")
schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"]}
answer = client.chat.completions.create(model=engine.name, messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
                                        max_tokens=40, temperature=0, response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": schema}})
value = json.loads(answer.choices[0].message.content)
show("JSON reply", answer.choices[0].message.content)
check("the reply parses and has the required keys", set(value) == {"city", "country"})

# %% [markdown]
# ## 5. Errors
# Bad input never crashes the server; the status code says what went wrong.

# %%
section("5. Error responses")
bad = httpx.post(server.url + "/v1/chat/completions", json={"model": engine.name, "messages": question, "temperature": 7})
show("temperature 7", f"{bad.status_code} {bad.json()}")
check("an out-of-range value is a 400 naming the parameter", bad.status_code == 400 and bad.json()["error"]["param"] == "temperature")
try:
    client.chat.completions.create(model="gpt-17", messages=question)
    raise SystemExit("expected a 404")
except openai.NotFoundError as exc:
    show("unknown model", f"{exc.status_code} {exc.body['message'][:80]}")
    check("an unknown model is a 404 with code model_not_found", exc.body["code"] == "model_not_found")
after = client.chat.completions.create(model=engine.name, messages=question, max_tokens=4, temperature=0)
check("the server keeps serving after errors", after.choices[0].finish_reason in ("stop", "length"))

# %% [markdown]
# ## 6. Metrics
# Prometheus scrapes `/metrics`: request counts, token counts, latency and
# time-to-first-token histograms, batch size and queue depth.

# %%
section("6. Metrics")
metrics = httpx.get(server.url + "/metrics").text
wanted = [line for line in metrics.splitlines() if line.startswith(("llm_deeper_completion_tokens_total", "llm_deeper_request_latency_seconds_count", "llm_deeper_requests_total"))]
for line in wanted:
    print("    " + line)
check("generated tokens are counted", any(line.startswith("llm_deeper_completion_tokens_total ") and float(line.split()[-1]) > 0 for line in wanted))
server.stop()
engine.close()
done()
