"""Our server vs vLLM (fp32), both through HTTP, side by side: the four rows of issue 24.

1. one stream: decode tokens/s of one greedy request (64 tokens);
2. 8 concurrent clients: total tokens/s;
3. time to first token of a ~1,000-token prompt seen for the first time;
4. time to first token of agent-style turns that share a ~1,000-token system
   prompt: the first turn fills each server's prefix cache (not timed), the
   next turns ask new questions after the same system prompt (median timed).

Each server runs in its own process (`llm-deeper serve` and vLLM's api_server
from its own environment) on the default model in float32: the precision in
which both give the same greedy tokens (tests/e2e/test_vllm_cross_engine.py),
so both decode the same number of tokens for the same prompt. vLLM's CPU
engine gets both cores (`VLLM_CPU_NUM_OF_RESERVED_CPU=0`; by default it
reserves one of two for its front end, see DESIGN.md); `--vllm-reserved-cpus 1`
measures its default. Rounds alternate between the servers (harness.alternate)
and, while one is measured, the other is paused (SIGSTOP of its process group),
so an idle server's polling threads cannot take the cores. Every prompt of rows
3 and 4 starts with a number unique to its round and server, so no round is
answered from an earlier one's cache. Each server first runs one whole round
untimed (its first long prompt and first batch are not the steady state). `--dtype bfloat16|int4` serves ours in
that format against vLLM's fp32 (tokens/s count each reply's own tokens), and
`--compile` starts ours with its compiled decode step.

    .venv/bin/python bench/bench_vllm_vs_ours.py [--rounds 2] [--vllm-url URL] [--dtype float32|bfloat16|int4] [--compile] [--quick]

`--quick` (8 tokens, ~200-token prompts, 1 round after the warm-up round) checks that everything runs; its figures mean nothing.

Prints one JSON object (the harness's: figures, then the machine). First run:
builds vLLM's environment (see llm_deeper.deploy.env).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from harness import OurServer, alternate, pause, progress, report, vllm_server

MODEL = "smollm2-135m-instruct"
STORY = "Write a long story about a dragon who learns to cook. Give every character a name."
MAX_TOKENS = 64
CONCURRENT = 8
TTFT_TOKENS = 1000
TURNS = 4  # agent-style turns on one system prompt: the first fills the cache, the others are timed
QUESTIONS = ("What is 17 times 23?", "Convert 12 miles to kilometers.", "What time is it in Tokyo?", "Summarize your tools in one line.")
UNIT = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "


def make_quick() -> None:
    """Tiny sizes: a smoke test of every row."""
    global MAX_TOKENS, TTFT_TOKENS
    MAX_TOKENS, TTFT_TOKENS = 8, 200


def one_request(client, messages: list[dict], max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first token, total seconds, completion tokens) of one streamed greedy request."""
    start = time.perf_counter()
    first, tokens = None, 0
    stream = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens,
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - start
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first or time.perf_counter() - start, time.perf_counter() - start, tokens


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def long_text(tokenizer, label: str, tokens: int) -> str:
    """About `tokens` tokens of text, made unique by its first line."""
    text = f"{label}.\n"
    while len(tokenizer(text)["input_ids"]) < tokens - 20:
        text += UNIT
    return text


def shared_prefix_ttft(client, tokenizer, label: str) -> tuple[float, float]:
    """(first turn's TTFT, median TTFT of the later turns) on one ~1,000-token system prompt."""
    system = {"role": "system", "content": "You are the assistant of " + long_text(tokenizer, label, TTFT_TOKENS)
                                           + "Answer the user's question in one sentence."}
    times = [one_request(client, [system, *user(question)], 1)[0] for question in QUESTIONS[:TURNS]]
    return times[0], statistics.median(times[1:])


def measure(client, tokenizer, label: str) -> dict:
    _, seconds, tokens = one_request(client, user(STORY), MAX_TOKENS)
    single = tokens / seconds
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(lambda i: one_request(client, user(f"{STORY} Story number {i}."), MAX_TOKENS), range(CONCURRENT)))
    aggregate = sum(r[2] for r in results) / (time.perf_counter() - started)
    ttft, _, _ = one_request(client, user(long_text(tokenizer, f"Document {label}", TTFT_TOKENS) + "\nSummarize the document in one sentence."), 1)
    cold, warm = shared_prefix_ttft(client, tokenizer, f"Agent {label}")
    figures = {"single_stream_tokens_per_s": single, "aggregate_tokens_per_s_8_clients": aggregate, "ttft_1000_tokens_s": ttft,
               "ttft_shared_prefix_turns_s": warm, "ttft_shared_prefix_first_turn_s": cold, "single_stream_tokens": tokens}
    progress(f"  {label}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server (medians reported)")
    parser.add_argument("--dtype", default="float32", help="our server's dtype (vLLM stays float32: its bf16 chat is wrong on CPU)")
    parser.add_argument("--compile", action="store_true", help="start our server with --compile (torch.compile'd decode step)")
    parser.add_argument("--vllm-url", default=None, help="use a running vLLM (serving the default model in fp32) instead of starting one")
    parser.add_argument("--quick", action="store_true", help="8 tokens, ~200-token prompts, 1 round (after the warm-up round): a smoke test")
    parser.add_argument("--vllm-reserved-cpus", type=int, default=0, help="VLLM_CPU_NUM_OF_RESERVED_CPU (0: vLLM's engine on every core)")
    args = parser.parse_args()

    import openai

    from llm_deeper.models.loaders import load_tokenizer

    if args.quick:
        make_quick()
        args.rounds = 1
    os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(args.vllm_reserved_cpus)  # the vLLM process inherits it
    tokenizer = load_tokenizer(MODEL)
    vllm = vllm_server(model=MODEL, max_model_len=2048, max_num_seqs=CONCURRENT, kv_cache_gib=1) if args.vllm_url is None else None
    ours = OurServer("--dtype", args.dtype, "--max-concurrency", str(CONCURRENT), *(["--compile"] if args.compile else []),
                     timeout_s=3600 if args.compile else 300)
    try:
        ours.start()
        processes = {"vllm": vllm.process if vllm is not None else None, "ours": ours.process}

        def only(name: str) -> None:  # only the measured server runs
            for other, process in processes.items():
                pause(process, other != name)

        clients = {"vllm": openai.OpenAI(base_url=args.vllm_url or vllm.base_url, api_key="x", timeout=600),
                   "ours": openai.OpenAI(base_url=ours.base_url, api_key="x", timeout=600)}
        labels = itertools.count()
        # One whole untimed round per server first (harness.alternate's warm-up): a server's first long
        # prompt, first batch of 8 and first cache hit pay one-off costs (allocation, kernel choice, cache
        # growth); one cold 1,000-token prompt read 3.78 s against 2.19 s warm (RESULTS.md, issue 24).
        runs = alternate({name: (lambda name=name: measure(clients[name], tokenizer, f"{name} {next(labels)}")) for name in clients},
                         rounds=args.rounds, warmup=1, before=only)
        only("ours")
        health = ours.health()
    finally:
        for process in (vllm.process if vllm is not None else None, ours.process):
            pause(process, False)
        ours.stop()
        if vllm is not None:
            vllm.stop()
    summary = {name: {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]} for name, rounds in runs.items()}
    # ours ÷ vLLM, higher is better for ours: tokens/s as is, times inverted
    better = {key: (summary["ours"][key] / summary["vllm"][key] if "tokens_per_s" in key else summary["vllm"][key] / summary["ours"][key])
              for key in summary["ours"] if key != "single_stream_tokens" and summary["ours"][key] and summary["vllm"][key]}
    report("vllm_vs_ours", {
        "model": MODEL, "dtype": args.dtype, "vllm_dtype": "float32", "compiled": args.compile, "max_tokens": MAX_TOKENS, "prompt_tokens": TTFT_TOKENS, "rounds": args.rounds, "quick": args.quick,
        "vllm_reserved_cpus": args.vllm_reserved_cpus, "median": summary,
        # times our engine gave up a core to other processes (inference/openmp.ThreadBudget): 0 on a quiet machine
        "ours_threads_lowered": health.get("threads_lowered"),
        "ours_vs_vllm": {key: round(value, 2) for key, value in better.items()},
        "runs": runs,
    })


if __name__ == "__main__":
    main()
