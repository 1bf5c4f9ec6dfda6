"""The engine's step against the runner's own: what the scheduler loop adds around a batched decode step.

Default model, fp32, in-process (no HTTP). Two sides, alternating:
- `runner`: the runner's decode step alone, 8 rows, called from this thread at
  the engine's thread count (what bench_decode_profile.py times);
- `engine`: 8 chat requests of `--tokens` greedy tokens submitted together; the
  loop's wall time per decode step, split by wrapping the runner's calls: the
  decode forward, the prefill of the arriving prompts, and the rest (sampling,
  text, delivery, slot moves, prefix-cache copies).
The difference between the two sides' ms per step is what the loop costs.

    .venv/bin/python bench/bench_engine_loop.py [--rounds 3] [--tokens 64] [--threads N]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import alternate, progress, report

STORY = "Write a long story about a dragon who learns to cook. Give every character a name."
ROWS = 8


class Timed:
    """Wraps a runner method (as an instance attribute) and sums the seconds spent in it."""

    def __init__(self, runner, name: str):
        self.function, self.seconds, self.calls = getattr(runner, name), 0.0, 0
        setattr(runner, name, self)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per request")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, the engine's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from llm_deeper.inference.engine import Engine
    from llm_deeper.inference.sampling import SamplingConfig

    engine = Engine.load("smollm2-135m-instruct", dtype="float32", max_batch=ROWS)
    runner = engine.runner
    prompts = [[{"role": "user", "content": f"{STORY} Story number {i}."}] for i in range(ROWS)]
    start = max(len(engine.encode(p)) for p in prompts)
    config = SamplingConfig(max_new_tokens=args.tokens, temperature=0.0, ignore_eos=True)

    def runner_side() -> dict:
        # The engine's thread count now (its ThreadBudget lowers it while other processes hold the
        # cores; two threads spinning beside a busy process took 1,347 ms a step here at load ~3).
        torch.set_num_threads(engine.stats()["threads"])
        times = []
        with torch.inference_mode():
            for step in range(args.tokens - 1):
                begin = time.perf_counter()
                runner.decode([17] * ROWS, [start + step] * ROWS, [None] * ROWS)
                times.append(time.perf_counter() - begin)
        return {"ms_per_step": statistics.median(times) * 1e3}

    def engine_side() -> dict:
        decode, prefill = Timed(runner, "decode"), Timed(runner, "prefill_many")
        steps = engine.steps
        begin = time.perf_counter()
        requests = [engine.submit(p, config) for p in prompts]
        tokens = sum(len(r.result().token_ids) for r in requests)
        wall = time.perf_counter() - begin
        del runner.decode, runner.prefill_many  # the class's methods again
        steps = engine.steps - steps
        rest = wall - decode.seconds - prefill.seconds
        return {"tokens_per_s": tokens / wall, "ms_per_step": wall / steps * 1e3, "decode_ms_per_step": decode.seconds / steps * 1e3,
                "prefill_ms_per_step": prefill.seconds / steps * 1e3, "rest_ms_per_step": rest / steps * 1e3,
                "prefill_forwards": prefill.calls, "steps": steps}

    try:
        results = alternate({"runner": runner_side, "engine": engine_side}, args.rounds)
    finally:
        engine.close()
    medians = {side: {key: round(statistics.median(r[key] for r in rows), 2) for key in rows[0]} for side, rows in results.items()}
    progress(f"medians: {medians}")
    report("engine_loop", {"dtype": "float32", "rows": ROWS, "tokens": args.tokens, "threads": engine.threads, "rounds": args.rounds,
                           "prefix_cache": engine.stats()["prefix_cache"]["hit_rate"],
                           **medians, "engine_step_over_runner_step": round(medians["engine"]["ms_per_step"] / medians["runner"]["ms_per_step"], 3)})


if __name__ == "__main__":
    main()
