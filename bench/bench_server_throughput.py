"""Server overhead and concurrency: tokens/s through HTTP streaming vs the engine called directly.

The server runs as `llm-deeper serve` in a subprocess; the direct engine runs in
this process (only one of them works at a time). Default model, 128 new tokens, greedy, EOS ignored. A/B alternate, best run
counts. Also aggregate tokens/s with 8 concurrent streaming clients vs 1,
through the HTTP server (a lean async httpx client).

    .venv/bin/python bench/bench_server_throughput.py [--tokens 128] [--rounds 4] [--dtype bfloat16|int4|...] [--quick]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from harness import OurServer, alternate, report

MESSAGES = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]


def direct_rate(engine, tokens: int) -> float:
    from llm_deeper.inference.sampling import SamplingConfig

    start = time.perf_counter()
    count = sum(len(e.token_ids) for e in engine.stream(MESSAGES, SamplingConfig(max_new_tokens=tokens, ignore_eos=True)))
    return count / (time.perf_counter() - start)


async def http_rate(url: str, model: str, clients: int, tokens: int) -> float:
    """Streaming chat completions through a lean client (httpx, as vLLM's serving benchmark uses aiohttp).

    The client shares the 2 cores with the server, so a heavy client would be billed to
    the server; the official `openai` client is tested for correctness elsewhere.
    """
    import httpx

    payload = {"model": model, "messages": MESSAGES, "max_tokens": tokens, "stream": True, "stream_options": {"include_usage": True},
               "ignore_eos": True, "temperature": 0 if clients == 1 else 0.8}

    async def one(client, seed: int) -> int:
        usage = None
        async with client.stream("POST", url + "/v1/chat/completions", json={**payload, "seed": seed}) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"usage":{' in line:  # only the last chunk carries usage
                    usage = json.loads(line[6:])["usage"]
        return usage["completion_tokens"]

    async with httpx.AsyncClient(timeout=600) as client:
        start = time.perf_counter()
        counts = await asyncio.gather(*(one(client, i) for i in range(clients)))
        seconds = time.perf_counter() - start
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)  # at 80 tokens/s a 1 ms hiccup is 8%: best of 4
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--quick", action="store_true", help="16 tokens, 1 round (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.rounds = 16, 1

    from llm_deeper.inference.engine import Engine

    # The server runs in its own process, as in production: its event loop and
    # the client's parsing do not share a GIL with the engine it is compared to.
    with OurServer("--dtype", args.dtype, "--max-concurrency", "8") as server:
        engine = Engine.load("smollm2-135m-instruct", dtype=args.dtype, max_batch=8)
        try:
            url, model = server.url, server.model()
            side_by_side = alternate({"direct": lambda: direct_rate(engine, args.tokens),
                                      "http": lambda: asyncio.run(http_rate(url, model, 1, args.tokens))}, args.rounds)
            clients = alternate({"one": lambda: asyncio.run(http_rate(url, model, 1, args.tokens // 2)),
                                 "eight": lambda: asyncio.run(http_rate(url, model, 8, args.tokens // 2))}, args.rounds, warmup=0)
        finally:
            engine.close()
    direct, http, one, eight = side_by_side["direct"], side_by_side["http"], clients["one"], clients["eight"]
    report("server_throughput", {
        "model": "smollm2-135m-instruct",
        "dtype": args.dtype,
        "new_tokens": args.tokens,
        "rounds": args.rounds,
        "engine_direct_tokens_per_s": round(max(direct), 1),
        "http_streaming_tokens_per_s": round(max(http), 1),
        "ratio_http_vs_direct": round(max(http) / max(direct), 3),
        "http_1_client_tokens_per_s": round(max(one), 1),
        "http_8_clients_tokens_per_s": round(max(eight), 1),
        "ratio_8_vs_1": round(max(eight) / max(one), 2),
    })


if __name__ == "__main__":
    main()
