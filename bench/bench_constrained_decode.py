"""Constrained vs unconstrained decode speed on the default model (target: constrained ≥ 0.8× tokens/s).

Same prompt (a chat with the tool prompt), greedy, KV-cached decode loop; A = free decoding
(end-of-turn suppressed so every run makes the same number of tokens), B = the same loop with
an xgrammar matcher masking the logits at every step (JSON schema compiled compact). Runs
alternate A, B, A, B, ... so a busy machine slows both alike; the figure is the median.
Also times the transformers `generate` path with xgrammar's LogitsProcessor (what the lessons
and the agent use), and the grammar's own cost per token (mask fill + apply) alone.
Prints one JSON object. Run: nice -n 10 .venv/bin/python bench/bench_constrained_decode.py [--tokens 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from harness import alternate, report

# A schema whose every output is long enough for a full run: 12 compact objects.
LONG_SCHEMA = {"type": "object", "properties": {"readings": {"type": "array", "minItems": 12, "maxItems": 12, "items": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 16}, "celsius": {"type": "integer", "minimum": -40, "maximum": 50}},
    "required": ["city", "celsius"]}}}, "required": ["readings"]}


def decode(model, prompt, steps: int, eos: int, compiled=None):
    """(tokens, decode seconds, mask seconds): greedy with a KV cache, one token per step."""
    import torch
    import xgrammar as xgr

    matcher = xgr.GrammarMatcher(compiled) if compiled is not None else None
    bitmask = xgr.allocate_token_bitmask(1, model.config.vocab_size) if matcher else None
    tokens: list[int] = []
    mask_seconds = 0.0
    with torch.inference_mode():
        out = model(input_ids=prompt, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :].float()
        start = time.perf_counter()
        for _ in range(steps):
            if matcher is not None:
                t = time.perf_counter()
                matcher.fill_next_token_bitmask(bitmask)
                xgr.apply_token_bitmask_inplace(logits, bitmask)
                mask_seconds += time.perf_counter() - t
            else:
                logits[0, eos] = float("-inf")  # free runs always make `steps` tokens
            token = int(logits.argmax(-1))
            if matcher is not None:
                matcher.accept_token(token)
                if matcher.is_terminated():
                    break
            tokens.append(token)
            out = model(input_ids=torch.tensor([[token]]), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1, :].float()
        seconds = time.perf_counter() - start
    return tokens, seconds, mask_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is far faster on a busy shared machine)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    from llm_deeper.models.loaders import load_model
    from llm_deeper.tools.builtin import default_registry
    from llm_deeper.chat_format import prompt_ids
    from llm_deeper.inference.constrained import grammar_cache
    from llm_deeper.chat.tool_constraint import tool_call_constraint

    loaded = load_model("smollm2-135m-instruct")
    model, tokenizer = loaded.model, loaded.tokenizer
    registry = default_registry().subset(["get_weather", "calculator"])
    prompt = torch.tensor([prompt_ids(tokenizer, [{"role": "user", "content": "List the temperature of twelve cities as JSON."}], registry)])
    cache = grammar_cache(tokenizer, int(model.get_output_embeddings().weight.shape[0]))  # the engine's cache
    compiler = cache.compiler
    start = time.perf_counter()
    long_grammar = compiler.compile_json_schema(json.dumps(LONG_SCHEMA), any_whitespace=False, separators=(",", ":"))
    compile_long = time.perf_counter() - start
    tool_constraint = tool_call_constraint(registry, "required", parallel_tool_calls=False)
    start = time.perf_counter()
    tool_compiled = cache.compile(tool_constraint)
    compile_tool = time.perf_counter() - start
    eos = tokenizer.eos_token_id

    runs = alternate({"free": lambda: decode(model, prompt, args.tokens, eos),
                      "constrained": lambda: decode(model, prompt, args.tokens, eos, long_grammar)}, args.rounds)
    free_rates = [len(tokens) / seconds for tokens, seconds, _ in runs["free"]]
    constrained_rates = [len(tokens) / seconds for tokens, seconds, _ in runs["constrained"]]
    mask_per_token = [mask / max(1, len(tokens)) for tokens, _, mask in runs["constrained"]]
    tool_tokens, tool_seconds, tool_mask = decode(model, prompt, 80, eos, tool_compiled)
    call_text = tokenizer.decode(tool_tokens)

    # The transformers `generate` path (xgrammar's LogitsProcessor), timed the same way.
    def hf_rate(grammar) -> float:
        from xgrammar.contrib.hf import LogitsProcessor

        kwargs = {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if grammar is not None:
            kwargs = {"max_new_tokens": args.tokens, "do_sample": False, "temperature": None, "top_p": None, "top_k": None,
                      "logits_processor": [LogitsProcessor(compiler.compile_json_schema(json.dumps(grammar), any_whitespace=False, separators=(",", ":")))]}
        with torch.inference_mode():
            start = time.perf_counter()
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=eos, **kwargs)
            seconds = time.perf_counter() - start
        return (out.shape[1] - prompt.shape[1]) / seconds

    hf_free = [hf_rate(None) for _ in range(1)]
    hf_constrained = [hf_rate(LONG_SCHEMA) for _ in range(1)]

    free, constrained = statistics.median(free_rates), statistics.median(constrained_rates)
    report("constrained_decode", {
        "model": "smollm2-135m-instruct", "prompt_tokens": int(prompt.shape[1]),
        "tokens_per_run": args.tokens, "rounds": args.rounds,
        "free_tokens_per_s": round(free, 2), "constrained_tokens_per_s": round(constrained, 2),
        "ratio": round(constrained / free, 3), "target_ratio": 0.8, "meets_target": constrained / free >= 0.8,
        "mask_ms_per_token": round(1000 * statistics.median(mask_per_token), 3),
        "decode_ms_per_token_free": round(1000 / free, 1),
        "hf_generate_free_tokens_per_s": round(statistics.median(hf_free), 2),
        "hf_generate_constrained_tokens_per_s": round(statistics.median(hf_constrained), 2),
        "compile_ms_long_schema": round(1000 * compile_long, 1), "compile_ms_tool_grammar": round(1000 * compile_tool, 1),
        "tool_call_tokens": len(tool_tokens), "tool_call_mask_ms_per_token": round(1000 * tool_mask / max(1, len(tool_tokens)), 3),
        "tool_call_text": call_text,
    })


if __name__ == "__main__":
    main()
