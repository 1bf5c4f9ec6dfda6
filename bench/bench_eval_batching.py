"""The speedrun's eval generation, base and LoRA: one prompt at a time through transformers vs the engine.

A (the old path, kept here as the reference): every held-out tool prompt
through transformers' `generate`, one at a time, first the base model, then
the base wrapped by PEFT with the adapter. B (the library now): one engine,
all prompts decoded together by continuous batching, base and adapter picked
per request by name (what `evals.suite.local_run` runs). Same prompts, greedy, the
speedrun's reply length; A and B alternate. Prints one JSON object: seconds,
tokens/s, the speed-up, and how many replies were identical.

The adapter is a rank-16 LoRA on every projection with small random weights
(the speedrun's shape; a trained one gives different replies, not a different speed).

    .venv/bin/python bench/bench_eval_batching.py [--n 30] [--max-new-tokens 64] [--batch 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import alternate, report, timed


def make_adapter(model, folder: Path, rank: int = 16) -> Path:
    """A PEFT adapter with small random weights, saved; the model is left as it was."""
    import torch
    from peft import LoraConfig, get_peft_model

    from llm_deeper.finetune.config import DEFAULT_TARGETS

    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(DEFAULT_TARGETS), init_lora_weights=False))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    peft.save_pretrained(folder)
    peft.unload()
    return folder


def transformers_one_at_a_time(model, tokenizer, items, max_new_tokens: int) -> list[tuple[str, int]]:
    """(reply, generated tokens) per prompt: `generate`, batch size 1, stop token cut (the old evals path)."""
    import torch

    from llm_deeper.chat_format import pad_token_id, prompt_ids

    stops = {tokenizer.eos_token_id, *([model.generation_config.eos_token_id] if isinstance(model.generation_config.eos_token_id, int) else model.generation_config.eos_token_id or [])}
    out = []
    for messages, tools in items:
        ids = torch.tensor([prompt_ids(tokenizer, messages, tools)])
        with torch.inference_mode():
            new = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None, pad_token_id=pad_token_id(tokenizer))[0, ids.shape[1]:].tolist()
        n = next((k for k, t in enumerate(new) if t in stops), len(new))
        out.append((tokenizer.decode(new[:n], skip_special_tokens=True).strip(), n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="held-out tool prompts (the speedrun's test split)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="the speedrun eval stage's reply length")
    parser.add_argument("--batch", type=int, default=8, help="the engine's max batch (EvalConfig.batch_size)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of A and B")
    args = parser.parse_args()

    from peft import PeftModel

    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.evals.data import read_examples
    from llm_deeper.inference.engine import Engine
    from llm_deeper.inference.sampling import SamplingConfig
    from llm_deeper.models.loaders import load_model

    loaded = load_model("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        _, test = write_tool_dataset(Path(tmp) / "data", n_train=1, n_test=args.n, seed=0, distractors=1)
        examples = [e for e in read_examples(test) if e.generates]
        adapter = make_adapter(loaded.model, Path(tmp) / "adapter")
        items = [(e.prompt, e.tools) for e in examples]
        sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.0)

        def old_path() -> list[tuple[str, int]]:
            replies = transformers_one_at_a_time(loaded.model, loaded.tokenizer, items, args.max_new_tokens)
            tuned = PeftModel.from_pretrained(loaded.model, str(adapter), is_trainable=False).eval()
            replies += transformers_one_at_a_time(tuned, loaded.tokenizer, items, args.max_new_tokens)
            tuned.unload()
            return replies

        def engine_path() -> list[tuple[str, int]]:
            with Engine(loaded, adapters={"lora": adapter}, max_batch=args.batch) as engine:
                each = [{"tools": tools} for _, tools in items]
                b = [r for name in (None, "lora") for r in engine.generate_many([m for m, _ in items], sampling, adapter=name, each=each)]
            return [(r.text.strip(), r.usage.completion_tokens - (r.finish_reason == "stop")) for r in b]  # the stop token is not text

        # No warm-up round: each side runs for minutes, first-call costs are a small share of that.
        runs = alternate({"transformers_one_at_a_time": lambda: timed(old_path), "engine_batched": lambda: timed(engine_path)}, args.rounds, warmup=0)
    seconds = {name: sum(s for s, _ in rounds) for name, rounds in runs.items()}
    tokens = {name: sum(n for _, replies in rounds for _, n in replies) for name, rounds in runs.items()}
    replies = {name: [text for text, _ in rounds[-1][1]] for name, rounds in runs.items()}
    old, new = seconds["transformers_one_at_a_time"], seconds["engine_batched"]
    report("eval_batching", {
        "prompts": len(items), "runs": "base + lora", "max_new_tokens": args.max_new_tokens,
        "engine_max_batch": args.batch, "rounds": args.rounds,
        "seconds": {k: round(v / args.rounds, 1) for k, v in seconds.items()},
        "tokens_per_s": {k: round(tokens[k] / seconds[k], 1) for k in seconds},
        "speedup": round(old / new, 2),
        "identical_replies": f"{sum(x == y for x, y in zip(replies['transformers_one_at_a_time'], replies['engine_batched']))}/{2 * len(items)}",
    })


if __name__ == "__main__":
    main()
