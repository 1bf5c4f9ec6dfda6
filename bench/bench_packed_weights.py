"""float32 weights packed for oneDNN and transposed (quant.PackedWeight, the engine's default on x86-64) vs plain F.linear (MKL), side by side.

Default model, two runners on the same weights in one process: decode steps at
1 and 8 rows (a 64-token prompt in every slot; median ms per step over
`--steps`), and the prefill of a ~1,000-token prompt (seconds, whole, as the
engine does when no stream runs). Rounds alternate the runners (harness.alternate,
after a warm-up round). Also checks that both pick the same greedy tokens over
the decode steps of every row (fp32 rounding differs, ~1e-4 on the logits).

    .venv/bin/python bench/bench_packed_weights.py [--rounds 3] [--steps 16] [--threads N]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import alternate, progress, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16, help="decode steps per batch size and round")
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()

    import torch

    from llm_deeper.inference.runners import LlamaRunner
    from llm_deeper.models.loaders import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model("smollm2-135m-instruct").model
    runners = {"packed": LlamaRunner(model, 8, 2048, pack=True), "plain": LlamaRunner(model, 8, 2048, pack=False)}
    prompt = list(range(100, 164))
    long_prompt = [100 + (i * 7919) % 40000 for i in range(args.prompt_tokens)]
    tokens: dict[str, list] = {name: [] for name in runners}

    def measure(name: str) -> dict:
        runner = runners[name]
        figures = {}
        with torch.inference_mode():
            for batch in (1, 8):
                for slot in range(batch):
                    runner.prefill(slot, prompt, None)
                feed, times, picked = [7] * batch, [], []
                for step in range(args.steps):
                    start = time.perf_counter()
                    logits = runner.decode(feed, [len(prompt) + step] * batch, [None] * batch)
                    times.append(time.perf_counter() - start)
                    feed = logits.argmax(-1).tolist()
                    picked.append(feed)
                figures[f"ms_per_step_{batch}_rows"] = statistics.median(times) * 1e3
                tokens[name].append(picked)
            start = time.perf_counter()
            runner.prefill(0, long_prompt, None)
            figures["prefill_s"] = time.perf_counter() - start
        progress(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()))
        return figures

    runs = alternate({name: (lambda name=name: measure(name)) for name in runners}, rounds=args.rounds)
    median = {name: {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]} for name, rounds in runs.items()}
    report("packed_weights", {
        "dtype": "float32", "threads": torch.get_num_threads(), "rounds": args.rounds, "steps": args.steps, "prompt_tokens": args.prompt_tokens,
        "median": median,
        "plain_over_packed": {key: round(median["plain"][key] / median["packed"][key], 2) for key in median["packed"]},
        "greedy_tokens_equal": tokens["packed"] == tokens["plain"],
        "runs": runs,
    })


if __name__ == "__main__":
    main()
