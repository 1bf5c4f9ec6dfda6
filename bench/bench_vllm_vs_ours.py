"""Our server vs vLLM (fp32), both through HTTP, side by side: single-stream decode, 8 concurrent clients, TTFT of a 1,000-token prompt.

Each server runs in its own process (`llm-deeper serve` and vLLM's api_server
from its own environment), on the default model in float32: the precision in
which both give the same greedy tokens (tests/e2e/test_vllm_cross_engine.py),
so both decode the same number of tokens for the same prompt. Rounds
alternate between the engines so load from other processes hits both alike.
Every TTFT prompt starts with a different number, so neither server's prefix
cache can answer it from an earlier round. While one server is measured the
other is paused (SIGSTOP of its process group), so an idle server's polling
threads cannot take the cores. `--dtype bfloat16|int4` serves ours in that
format against vLLM's fp32 (tokens/s count each reply's own tokens), and
`--compile` starts ours with its compiled decode step.

    .venv/bin/python bench/bench_vllm_vs_ours.py [--rounds 2] [--vllm-url URL] [--dtype float32|bfloat16|int4] [--compile]

Prints one JSON object. First run: builds vLLM's environment (see llm_deeper.deploy.env).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

MODEL = "smollm2-135m-instruct"
STORY = "Write a long story about a dragon who learns to cook. Give every character a name."
MAX_TOKENS = 64
CONCURRENT = 8
TTFT_TOKENS = 1000


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_ours(port: int, dtype: str = "float32", compile_decode: bool = False) -> subprocess.Popen:
    """`llm-deeper serve` with 8 batch slots, in its own process like vLLM (`--compile`: minutes of start-up)."""
    process = subprocess.Popen([sys.executable, "-m", "llm_deeper", "serve", "--port", str(port), "--dtype", dtype,
                                "--max-concurrency", str(CONCURRENT), *(["--compile"] if compile_decode else [])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + (3600 if compile_decode else 300)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("our server did not start")


def pause(process: subprocess.Popen | None, paused: bool) -> None:
    """Stop (SIGSTOP) or resume a server's process group: an idle vLLM's CPU workers keep
    polling, which took the cores from our server at load 20 (RESULTS.md)."""
    import signal

    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGSTOP if paused else signal.SIGCONT)


def one_request(client, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first token, total seconds, completion tokens) of one streamed greedy request."""
    start = time.perf_counter()
    first, tokens = None, 0
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - start
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first or 0.0, time.perf_counter() - start, tokens


def long_prompt(tokenizer, round_index: int) -> str:
    """About TTFT_TOKENS tokens of text, made unique by its first line."""
    unit = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "
    text = f"Document {round_index * 7919}.\n"
    while len(tokenizer(text)["input_ids"]) < TTFT_TOKENS - 20:
        text += unit
    return text + "\nSummarize the document in one sentence."


def measure(client, tokenizer, round_index: int) -> dict:
    _, seconds, tokens = one_request(client, STORY, MAX_TOKENS)
    single = tokens / seconds
    print(f"  single stream: {tokens} tokens in {seconds:.1f} s", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        results = list(pool.map(lambda i: one_request(client, f"{STORY} Story number {i}.", MAX_TOKENS), range(CONCURRENT)))
    aggregate = sum(r[2] for r in results) / (time.perf_counter() - started)
    print(f"  {CONCURRENT} clients: {aggregate:.1f} tokens/s", file=sys.stderr, flush=True)
    ttft, _, _ = one_request(client, long_prompt(tokenizer, round_index), 1)
    return {"single_stream_tokens_per_s": single, "aggregate_tokens_per_s_8_clients": aggregate, "ttft_1000_tokens_s": ttft,
            "single_stream_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per engine")
    parser.add_argument("--dtype", default="float32", help="our server's dtype (vLLM stays float32: its bf16 chat is wrong on CPU)")
    parser.add_argument("--compile", action="store_true", help="start our server with --compile (torch.compile'd decode step)")
    parser.add_argument("--vllm-url", default=None, help="use a running vLLM (serving the default model in fp32) instead of starting one")
    args = parser.parse_args()

    import openai

    from llm_deeper.deploy.launch import VllmConfig, VllmServer
    from llm_deeper.models.loaders import load_tokenizer

    tokenizer = load_tokenizer(MODEL)
    vllm = None
    if args.vllm_url is None:
        vllm = VllmServer(VllmConfig(model=MODEL, max_model_len=2048, max_num_seqs=CONCURRENT, kv_cache_gib=1)).start()
    vllm_url = args.vllm_url or vllm.base_url
    port = free_port()
    ours = start_ours(port, args.dtype, args.compile)
    processes = {"vllm": vllm.process if vllm is not None else None, "ours": ours}
    clients = {"vllm": openai.OpenAI(base_url=vllm_url, api_key="x", timeout=600),
               "ours": openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", timeout=600)}
    try:
        for client in clients.values():  # warm-up: first-request costs are not the steady state
            one_request(client, "Hi", 4)
        runs: dict[str, list[dict]] = {name: [] for name in clients}
        for round_index in range(args.rounds):
            order = list(clients) if round_index % 2 == 0 else list(reversed(clients))
            for name in order:
                for other in processes:  # only the measured server runs
                    pause(processes[other], other != name)
                runs[name].append(measure(clients[name], tokenizer, round_index * 2 + (name == "ours")))
                print(f"round {round_index + 1} {name}: {json.dumps({k: round(v, 2) for k, v in runs[name][-1].items()})}", file=sys.stderr, flush=True)
    finally:
        for process in processes.values():
            pause(process, False)
        os.killpg(ours.pid, 15)
        ours.wait(60)
        if vllm is not None:
            vllm.stop()
    summary = {name: {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]} for name, rounds in runs.items()}
    ratios = {key: round(summary["vllm"][key] / summary["ours"][key], 2) for key in summary["ours"] if summary["ours"][key]}
    print(json.dumps({"bench": "vllm_vs_ours", "model": MODEL, "dtype": args.dtype, "vllm_dtype": "float32", "compiled": args.compile, "max_tokens": MAX_TOKENS, "rounds": args.rounds,
                      "median": summary, "vllm_over_ours": ratios, "runs": runs, "load_average": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
