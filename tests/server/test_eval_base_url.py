"""`llm-deeper eval --base-url` against our server gives the in-process numbers (greedy decoding), base and LoRA."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from llm_deeper.evals.data import read_examples
from llm_deeper.evals.report import load_run
from llm_deeper.evals.runner import EvalConfig
from llm_deeper.evals.suite import local_run

TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "Time in a zone.",
          "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"UTC\"}"}}
DATA = [
    {"prompt": "Say hello.", "completion": "Hello!"},
    {"instruction": "Name a color.", "output": "Blue"},
    {"messages": [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome"}]},
    {"messages": [{"role": "user", "content": "time?"}, {"role": "assistant", "content": None, "tool_calls": [CALL]}], "tools": TOOLS},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello there"}], "tools": TOOLS},
]
COMPARED = ("rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match", "contains", "tool_full_match", "tool_call_decision", "tool_no_call")


@pytest.fixture(scope="module")
def chatty_dir(tmp_path_factory):
    """A tiny random Llama (2048-token context) that writes varied printable ASCII.

    Default random weights make a tiny model repeat one token; larger weights
    vary it, and zeroed output rows for non-ASCII bytes keep the text valid
    UTF-8 (their logit 0 never beats the maximum of ~95 random logits).
    """
    import torch

    from llm_deeper.models.embedded import write_portable_config
    from llm_deeper.models.tiny import tiny_llama, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-chatty")
    model, tok = tiny_llama(context=2048, tie_embeddings=False, seed=4), tiny_tokenizer()
    printable = {tok.convert_tokens_to_ids(c) for c in map(chr, range(33, 127))} | {tok.convert_tokens_to_ids("Ġ")}
    with torch.no_grad():
        generator = torch.Generator().manual_seed(4)
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.5, generator=generator)
        for token in range(model.config.vocab_size):
            if token not in printable:
                model.lm_head.weight[token] = 0
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 2
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    write_portable_config(folder)
    return folder


def test_base_url_matches_in_process_greedy(tmp_path, chatty_dir):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.tiny import tiny_llama
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in DATA) + "\n", encoding="utf-8")
    adapter = tmp_path / "adapter"
    get_peft_model(tiny_llama(context=2048), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    config = EvalConfig(metrics=("rouge", "exact", "tools"), max_new_tokens=12, constrain=True)
    engine = Engine.load(str(chatty_dir), loras={"lora": str(adapter)}, max_batch=2)
    try:
        examples = read_examples(data)
        # In process: the same engine, base and adapter by name, all prompts batched.
        local = {"base": local_run(engine, examples, config, "base"), "lora": local_run(engine, examples, config, "lora", adapter="lora")}
        with BackgroundServer(create_app(engine)) as server:
            for name in ("base", "lora"):
                result = run_cli("eval", "--base-url", server.url + "/v1", "--model", engine.name if name == "base" else "lora", "--data", str(data),
                                 "--metrics", "rouge,exact,tools", "--max-new-tokens", "12", "--label", name, "--out", str(tmp_path / name))
                assert result.returncode == 0, result.stderr
    finally:
        engine.close()
    for name in ("base", "lora"):
        served, here = load_run(tmp_path / name), local[name]
        assert served["info"]["base_url"].endswith("/v1") and served["info"]["label"] == name
        assert [r["prediction"] for r in served["examples"]] == [r["prediction"] for r in here.records], name
        assert [r["predicted_calls"] for r in served["examples"]] == [r["predicted_calls"] for r in here.records], name
        assert len({r["prediction"] for r in here.records}) == len(DATA)  # varied replies, so equality means something
        for metric in COMPARED:
            assert served["aggregate"][metric]["value"] == pytest.approx(here.aggregates[metric].value), (name, metric)
        assert served["aggregate"]["tokens_per_s"]["value"] > 0
    assert [r["prediction"] for r in local["base"].records] != [r["prediction"] for r in local["lora"].records]  # the adapter matters
    # Perplexity needs the weights: through --base-url it is a one-line error, not a traceback.
    result = run_cli("eval", "--base-url", "http://127.0.0.1:9/v1", "--data", str(data), "--metrics", "ppl")
    assert result.returncode == 2 and "cannot be computed through --base-url" in result.stderr


def test_chat_layer_in_process_and_over_http_give_the_same_replies(chatty_dir, one_torch_thread):
    """One chat layer: `EngineChatModel` and `OpenAIChatModel` (the real client, our server over a socket) agree, tools included."""
    import openai

    from llm_deeper.chat import ChatRequest
    from llm_deeper.chat.engine_model import EngineChatModel
    from llm_deeper.chat.openai_model import OpenAIChatModel
    from llm_deeper.inference.engine import Engine
    from llm_deeper.inference.sampling import SamplingConfig
    from llm_deeper.serve.app import create_app
    from llm_deeper.serve.background import BackgroundServer

    greedy = SamplingConfig(max_new_tokens=80, temperature=0.0)  # byte-level tokens: a call is ~60 of them
    history = [{"role": "user", "content": "time?"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
               {"role": "tool", "tool_call_id": "call_1", "content": "12:00"}]
    named = {"type": "function", "function": {"name": "get_time"}}
    requests = [
        ChatRequest([{"role": "user", "content": "Say hello."}], sampling=greedy),
        ChatRequest([{"role": "user", "content": "time in Tokyo?"}], tools=TOOLS, sampling=greedy),
        ChatRequest([{"role": "user", "content": "time in Tokyo?"}], tools=TOOLS, tool_choice="required", sampling=greedy),
        ChatRequest([{"role": "user", "content": "time in Oslo?"}], tools=TOOLS, tool_choice=named, sampling=greedy),
        ChatRequest(history, tools=TOOLS, tool_choice="none", sampling=greedy),
        ChatRequest([{"role": "user", "content": "JSON please"}], response_format={"type": "json_object"}, sampling=greedy),
        ChatRequest([{"role": "user", "content": "x"}], tools=[{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"a": {"type": "string", "minLength": "abc"}}}}}], tool_choice="required", sampling=greedy),
    ]

    def shape(reply):
        calls = [(c["function"]["name"], c["function"]["arguments"]) for c in reply.tool_calls]
        return reply.content, calls, reply.finish_reason, reply.completion_tokens, bool(reply.error)

    engine = Engine.load(str(chatty_dir), max_batch=2)
    try:
        here = EngineChatModel(engine).chat_many(requests)
        with BackgroundServer(create_app(engine)) as server:
            remote = OpenAIChatModel(server.url + "/v1")
            there = remote.chat_many(requests)
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            stream = client.chat.completions.create(model=engine.name, messages=requests[2].messages, tools=TOOLS, tool_choice="required",
                                                    max_tokens=80, temperature=0, stream=True)
            streamed: dict[int, list[str]] = {}
            for chunk in stream:
                for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    entry = streamed.setdefault(delta.index, ["", ""])
                    entry[0] += delta.function.name or ""
                    entry[1] += delta.function.arguments or ""
    finally:
        engine.close()
    assert [shape(r) for r in here] == [shape(r) for r in there]
    assert here[2].tool_calls and here[3].tool_calls and len(here[3].tool_calls) == 1  # required and named made calls; named exactly one
    assert json.loads(here[5].content) is not None  # json_object held the reply to JSON
    assert "minLength" in here[6].error and "tools[0].function.parameters" in here[6].error and there[6].error.startswith("HTTP 400")
    assert [tuple(v) for _, v in sorted(streamed.items())] == [(c["function"]["name"], c["function"]["arguments"]) for c in here[2].tool_calls]
