"""Eval generation speed: batch size 1 (the reference) vs batched, on held-out tool prompts.

Runs both settings alternately on the same prompts with the default model,
greedy, and prints one JSON object: tokens/s and seconds per example for each,
the speed-up, and how many replies were identical.

    .venv/bin/python bench/bench_eval_batching.py [--n 8] [--batch 8] [--max-new-tokens 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="held-out prompts")
    parser.add_argument("--batch", type=int, default=8, help="batch size of the batched setting")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both settings")
    args = parser.parse_args()

    import torch

    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.evals.data import read_examples
    from llm_deeper.evals.generate import LocalGenerator
    from llm_deeper.inference.sampling import SamplingConfig
    from llm_deeper.models.loaders import load_model

    loaded = load_model("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        _, test = write_tool_dataset(tmp, n_train=1, n_test=args.n, seed=0, distractors=1)
        examples = read_examples(test)
    items = [(e.prompt, e.tools) for e in examples]
    generator = LocalGenerator(loaded.model, loaded.tokenizer, SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.0))
    seconds = {"batch_1": 0.0, f"batch_{args.batch}": 0.0}
    tokens = dict.fromkeys(seconds, 0)
    replies: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for key, size in (("batch_1", 1), (f"batch_{args.batch}", args.batch)):
            start = time.perf_counter()
            out = [g for i in range(0, len(items), size) for g in generator.batch(items[i:i + size])]
            seconds[key] += time.perf_counter() - start
            tokens[key] += sum(g.completion_tokens for g in out)
            replies[key] = [g.text + json.dumps(g.tool_calls) for g in out]
    one, many = seconds["batch_1"], seconds[f"batch_{args.batch}"]
    print(json.dumps({
        "bench": "eval_batching",
        "prompts": len(items), "max_new_tokens": args.max_new_tokens, "rounds": args.rounds,
        "tokens_per_s": {k: round(tokens[k] / seconds[k], 2) for k in seconds},
        "seconds_per_example": {k: round(seconds[k] / (len(items) * args.rounds), 3) for k in seconds},
        "speedup": round(one / many, 2),
        "identical_replies": sum(a == b for a, b in zip(replies["batch_1"], replies[f"batch_{args.batch}"])),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
    }))


if __name__ == "__main__":
    main()
