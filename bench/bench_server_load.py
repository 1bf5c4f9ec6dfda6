"""Load test: 32 concurrent clients × 10 requests each against a tiny model; zero failures expected.

Each request is a short streamed or non-streamed chat completion (alternating),
so the server's queue, batching and SSE paths are all under load. Reports
failures, throughput and latency percentiles.

    .venv/bin/python bench/bench_server_load.py [--clients 32] [--requests 10] [--tokens 16]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from harness import in_thread, report


async def run(url: str, model: str, clients: int, per_client: int, tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
    latencies, failures, completion = [], [], 0

    async def worker(index: int) -> None:
        nonlocal completion
        for number in range(per_client):
            start = time.perf_counter()
            try:
                kwargs = dict(model=model, messages=[{"role": "user", "content": f"client {index} request {number}"}], max_tokens=tokens,
                              temperature=0.8, seed=index * 1000 + number)
                if number % 2:
                    stream = await client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
                    usage = None
                    async for chunk in stream:
                        usage = chunk.usage or usage
                    completion += usage.completion_tokens
                else:
                    reply = await client.chat.completions.create(**kwargs)
                    completion += reply.usage.completion_tokens
                latencies.append(time.perf_counter() - start)
            except Exception as exc:  # a benchmark counts failures instead of stopping
                failures.append(f"{type(exc).__name__}: {exc}")

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    seconds = time.perf_counter() - start
    await client.close()
    ordered = sorted(latencies)
    return {
        "requests": clients * per_client,
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "wall_s": round(seconds, 2),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "completion_tokens_per_s": round(completion / seconds, 1),
        "latency_p50_s": round(statistics.median(ordered), 3) if ordered else None,
        "latency_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3) if ordered else None,
        "latency_max_s": round(ordered[-1], 3) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--max-concurrency", type=int, default=16)
    args = parser.parse_args()

    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.tiny import save_tiny_model

    folder = save_tiny_model(tempfile.mkdtemp(prefix="llm-deeper-load-"), arch="llama")
    # Queue room for every client: the load test measures latency, not rejection.
    engine = Engine.load(str(folder), max_batch=args.max_concurrency, max_queue=args.clients)
    with in_thread(engine) as server:
        figures = asyncio.run(run(server.url, engine.name, args.clients, args.requests, args.tokens))
    engine.close()
    report("server_load", {"model": "tiny random llama (2 layers, hidden 64)", "clients": args.clients,
                           "requests_per_client": args.requests, "max_tokens": args.tokens, "max_concurrency": args.max_concurrency, **figures})


if __name__ == "__main__":
    main()
