"""The runner, report and comparison: crafted replies, a tiny model, a tiny LoRA adapter."""

from __future__ import annotations

import json

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.evals.compare import bar_chart, compare, markdown
from llm_deeper.evals.data import EvalExample
from llm_deeper.chat.engine_model import EngineChatModel
from llm_deeper.chat.plan import ChatPlan, parse_reply
from llm_deeper.evals.generate import ChatGenerator, Generation
from llm_deeper.evals.report import load_run, write_run
from llm_deeper.evals.runner import EvalConfig, parse_metrics, run_eval
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.models.tiny import tiny_llama, tiny_tokenizer

TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}]


def call(name, args):
    return {"id": "c", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def examples():
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    return [
        EvalExample("a", user("time in UTC?"), TOOLS, "", [call("get_time", {"tz": "UTC"})], target={"role": "assistant", "content": None, "tool_calls": [call("get_time", {"tz": "UTC"})]}),
        EvalExample("b", user("time in Tokyo?"), TOOLS, "", [call("get_time", {"tz": "Asia/Tokyo"})], target={"role": "assistant", "content": None, "tool_calls": [call("get_time", {"tz": "Asia/Tokyo"})]}),
        EvalExample("c", user("say hello"), TOOLS, "Hello there", [], target={"role": "assistant", "content": "Hello there"}),
        EvalExample("d", user("capital of France?"), None, "Paris", None, target={"role": "assistant", "content": "Paris"}),
    ]


class Scripted:
    """The model under test replaced by fixed replies (the runner's own logic is what is tested)."""

    def __init__(self, replies):
        self.replies = iter(replies)

    def __call__(self, messages, tools=None):
        return next(self.replies)


REPLIES = [
    Generation("", [call("get_time", {"tz": "UTC"})], completion_tokens=10, seconds=0.5),  # right
    Generation("", [call("get_time", {"tz": "Tokyo"})], completion_tokens=10, seconds=0.5),  # right tool, wrong argument
    Generation("Hello there!", [], completion_tokens=3, seconds=0.25),  # right: no call
    Generation("It is Paris.", [], completion_tokens=4, seconds=0.25),
]


def test_runner_applies_each_metric_where_it_belongs():
    run = run_eval(examples(), EvalConfig(metrics=("tools", "rouge", "exact")), generator=Scripted(REPLIES), info={"label": "scripted"})
    agg = {k: a.value for k, a in run.aggregates.items()}
    assert agg["tool_full_match"] == pytest.approx(2 / 3)  # a and c right, b wrong; d is not a tool example
    assert agg["tool_selection"] == 1.0 and agg["tool_args_exact"] == 0.5 and agg["tool_no_call"] == 1.0
    assert run.aggregates["rouge1"].n == 2  # only c and d have reference text
    assert agg["exact_match"] == 0.5 and agg["contains"] == 1.0  # "Hello there!" matches; "It is Paris." only contains
    assert agg["tokens_per_s"] == pytest.approx(27 / 1.5)  # pooled: Σ tokens / Σ seconds
    assert agg["latency_s"] == pytest.approx(1.5 / 4)
    assert run.info["label"] == "scripted" and run.info["examples"] == 4


def test_metric_words_and_missing_backends_are_user_errors():
    assert parse_metrics("tools, rouge,tools") == ("tools", "rouge")
    assert set(parse_metrics("all")) == {"ppl", "rouge", "bertscore", "exact", "tools"}
    with pytest.raises(UserError, match="unknown metric blue"):
        parse_metrics("rouge,blue")
    with pytest.raises(UserError, match="cannot be computed through --base-url"):
        run_eval(examples(), EvalConfig(metrics=("ppl",)), generator=Scripted(REPLIES), scorer=None)


def test_perplexity_scores_exactly_the_reference_turn():
    model, tok = tiny_llama(tie_embeddings=False), tiny_tokenizer()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # uniform: NLL = ln V for every scored token
    exs = examples()[2:]  # plain text answers (no tool renderer needed)
    run = run_eval(exs, EvalConfig(metrics=("ppl",)), scorer=(model, tok))
    # byte-level tokenizer: "Hello there" + "Paris" bytes, plus one <|im_end|> token each
    tokens = len("Hello there") + 1 + len("Paris") + 1
    assert run.aggregates["ppl"].weight == tokens
    assert run.aggregates["ppl"].value == pytest.approx(model.config.vocab_size, rel=1e-5)
    assert run.aggregates["bits_per_byte"].weight == len("Hello there<|im_end|>") + len("Paris<|im_end|>")


def test_report_round_trip_compare_and_chart(tmp_path):
    base = run_eval(examples(), EvalConfig(metrics=("tools", "rouge")), generator=Scripted(REPLIES), info={"label": "base"})
    better = [REPLIES[0], Generation("", [call("get_time", {"tz": "Asia/Tokyo"})], 10, 0.5), REPLIES[2], Generation("Paris", [], 1, 0.1)]
    tuned = run_eval(examples(), EvalConfig(metrics=("tools", "rouge")), generator=Scripted(better), info={"label": "lora"})
    results, report = write_run(base, tmp_path / "base")
    write_run(tuned, tmp_path / "lora")
    text = report.read_text()
    assert "| tool: all right | 0.667 |" in text and "get_time(" in text
    runs = [load_run(tmp_path / "base"), load_run(tmp_path / "lora" / "results.json")]
    comp = compare(runs, resamples=200)
    assert comp.labels == ["base", "lora"]
    full = comp.table["tool_full_match"]
    assert full[0].value == pytest.approx(2 / 3) and full[1].value == 1.0
    delta = comp.deltas["tool_full_match"][1]
    assert delta.value == pytest.approx(1 / 3) and delta.low >= 0.0  # paired: b improved, nothing got worse
    table = markdown(comp, "base vs lora")
    assert "Δ lora − base" in table and "+0.333" in table
    png = bar_chart(comp, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="no evaluation results"):
        load_run(tmp_path / "nothing")


def test_local_generator_equals_plain_generate_and_parses_hermes_calls():
    from llm_deeper.inference.engine import Engine

    model, tok = tiny_llama(seed=1), tiny_tokenizer()
    messages = [{"role": "user", "content": "hi"}]
    with Engine.from_model(model, tok, max_batch=2) as engine:
        reply = ChatGenerator(EngineChatModel(engine), SamplingConfig(max_new_tokens=6, temperature=0.0))(messages)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False, pad_token_id=2)
    assert reply.text == tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert 0 < reply.completion_tokens <= 6 and reply.seconds > 0
    message = parse_reply(ChatPlan([], None, (), True), 'Sure.<tool_call>{"name":"get_time","arguments":{"tz":"UTC"}}</tool_call>')
    content, calls = message["content"], message["tool_calls"]
    assert content.strip() == "Sure." and calls[0]["function"] == {"name": "get_time", "arguments": '{"tz":"UTC"}'}


def test_batched_generation_equals_one_by_one():
    from llm_deeper.inference.engine import Engine

    model, tok = tiny_llama(seed=2), tiny_tokenizer()
    with torch.no_grad():  # larger random weights: varied tokens with clear margins (default init repeats one token)
        generator = torch.Generator().manual_seed(2)
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.5, generator=generator)
    prompts = [([{"role": "user", "content": text}], None) for text in ("hi", "a much longer question here?", "ok")]
    with Engine.from_model(model, tok, max_batch=3) as engine:
        local = ChatGenerator(EngineChatModel(engine), SamplingConfig(max_new_tokens=6, temperature=0.0))
        steps = engine.steps
        batched = local.batch(prompts)
        assert engine.steps - steps < 3 * 5  # the three shared decode steps
        single = [local(messages) for messages, _ in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert len({g.text for g in single}) == 3 and all(g.completion_tokens == 6 for g in batched)
