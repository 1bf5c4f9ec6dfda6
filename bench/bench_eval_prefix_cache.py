"""The speedrun's eval generation (base, then LoRA, on the held-out tool prompts) with the prefix cache off and on.

What the eval stage's engine does (`evals.suite.base_vs_adapter`): one engine,
the 40 held-out prompts of the tool recipe (two tool schemas each, ~530 tokens)
decoded 8 at a time, greedy, 64 tokens, first the base model, then the adapter
by name. Each side starts a fresh engine (an empty cache), and the sides
alternate (harness.alternate). Also reported: how much of the prompts the cache
served (a prompt shares its prefix with earlier prompts that offer the same first
tool; the base and the adapter never share: their keys and values differ), and
whether every reply is identical with and without the cache (it must be).

The adapter is the recipe's shape (rank 16 on every projection of the last 16
layers) with small random weights: a trained one answers differently, not
faster or slower per token; `--adapter DIR` uses a real one.

    .venv/bin/python bench/bench_eval_prefix_cache.py [--n 40] [--rounds 1] [--adapter DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from harness import alternate, progress, report, timed


def make_adapter(model, folder: Path) -> Path:
    """A PEFT adapter in the tool recipe's shape with small random weights, saved; the model is left as it was."""
    import torch
    from peft import LoraConfig, get_peft_model

    from llm_deeper.finetune.tool_recipe import ToolRecipe

    recipe = ToolRecipe()
    layers = model.config.num_hidden_layers
    config = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, target_modules=list(recipe.targets), init_lora_weights=False,
                        layers_to_transform=list(range(layers - recipe.layers, layers)) if recipe.layers else None)
    peft = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    peft.save_pretrained(folder)
    peft.unload()
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="held-out tool prompts (the tool recipe's test split: 40)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="the eval stage's reply length")
    parser.add_argument("--batch", type=int, default=8, help="the engine's max batch (EvalConfig.batch_size)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of each side")
    parser.add_argument("--adapter", default=None, help="a trained tool adapter (RUN/finetune/adapter); default: random, recipe-shaped")
    args = parser.parse_args()

    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.evals.data import read_examples
    from llm_deeper.finetune.tool_recipe import ToolRecipe
    from llm_deeper.inference.engine import Engine
    from llm_deeper.inference.sampling import SamplingConfig
    from llm_deeper.models.loaders import load_model

    recipe = ToolRecipe()
    loaded = load_model("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        _, test = write_tool_dataset(Path(tmp) / "data", n_train=1, n_test=args.n, seed=recipe.seed, distractors=recipe.distractors)
        examples = [e for e in read_examples(test) if e.generates]
        adapter = Path(args.adapter) if args.adapter else make_adapter(loaded.model, Path(tmp) / "adapter")
        prompts, each = [e.prompt for e in examples], [{"tools": e.tools} for e in examples]
        sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.0)

        def stage(cache: bool):
            """Base then LoRA on one fresh engine, as the eval stage runs them: (seconds, results, cache stats)."""
            def run():
                with Engine(loaded, adapters={"lora": adapter}, max_batch=args.batch, prefix_cache=cache) as engine:
                    results = [r for name in (None, "lora") for r in engine.generate_many(prompts, sampling, adapter=name, each=each)]
                    return results, engine.stats()["prefix_cache"]
            seconds, (results, stats) = timed(run)
            progress(f"prefix cache {'on' if cache else 'off'}: {seconds:.1f} s")
            return seconds, results, stats

        runs = alternate({"cache_off": lambda: stage(False), "cache_on": lambda: stage(True)}, rounds=args.rounds, warmup=0)
    seconds = {side: round(statistics.median(s for s, _, _ in results), 1) for side, results in runs.items()}
    off, on = runs["cache_off"][-1][1], runs["cache_on"][-1][1]
    stats = runs["cache_on"][-1][2]
    report("eval_prefix_cache", {
        "prompts": len(prompts), "runs": "base + lora", "max_new_tokens": args.max_new_tokens, "engine_max_batch": args.batch,
        "rounds": args.rounds, "adapter": str(args.adapter or "random, recipe-shaped"),
        "seconds": seconds, "speedup": round(seconds["cache_off"] / seconds["cache_on"], 2),
        "prompt_tokens": stats["lookup_tokens"], "cached_prompt_tokens": stats["hit_tokens"], "hit_rate": round(stats["hit_rate"], 3),
        "identical_replies": f"{sum(a.token_ids == b.token_ids for a, b in zip(off, on))}/{len(off)}",
    })


if __name__ == "__main__":
    main()
