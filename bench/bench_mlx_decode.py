"""Decode speed of mlx-lm (base and with a LoRA adapter) beside our engine and transformers `generate`, side by side.

Default model, fp32, greedy, the same chat prompt, N new tokens with the end
token ignored so every run makes the same number. The adapter is a rank-16
LoRA on the attention projections (random weights: speed does not depend on
the values), served by our engine as PEFT and by mlx-lm after
`convert peft-to-mlx`. Rounds alternate and the best of each side counts, so a
busy machine hurts every side alike. Decode rate = tokens after the first / time
from the first to the last token (prefill excluded) for mlx-lm and the engine;
`generate` has no token clock, so its figure includes the prefill (short here).

    .venv/bin/python bench/bench_mlx_decode.py [--tokens 64] [--rounds 2] [--quick]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import alternate, report, skipped


def mlx_rate(model, ids: list[int], tokens: int) -> float:
    """mlx-lm's own decode loop (generate_step: what stream_generate runs), end token ignored."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.sample_utils import make_sampler

    stamps = []
    for _token, _ in generate_step(mx.array(ids), model, max_tokens=tokens, sampler=make_sampler(temp=0.0)):
        stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def engine_rate(engine, messages, tokens: int, adapter: str | None = None) -> float:
    from llm_deeper.inference.sampling import SamplingConfig

    stamps = [time.perf_counter() for _ in engine.stream(messages, SamplingConfig(max_new_tokens=tokens, ignore_eos=True), adapter=adapter)]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def hf_rate(model, ids: list[int], tokens: int) -> float:
    import torch

    batch = torch.tensor([ids])
    with torch.inference_mode():
        start = time.perf_counter()
        model.generate(batch, attention_mask=torch.ones_like(batch), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                       temperature=None, top_p=None, top_k=None, pad_token_id=2)
    return tokens / (time.perf_counter() - start)


def random_adapter(model, folder: Path) -> Path:
    """A rank-16 PEFT adapter on q/k/v/o with nonzero B (the timing path is the same as a trained one)."""
    import copy

    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="8 tokens, 1 round (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.rounds = 8, 1

    from llm_deeper.chat_format import prompt_ids
    from llm_deeper.convert.lora_shapes import base_folder
    from llm_deeper.convert.mlx_runtime import load_mlx, mlx_status
    from llm_deeper.convert.peft_to_mlx import peft_to_mlx
    from llm_deeper.inference.engine import Engine
    from llm_deeper.models.loaders import load_model

    usable, reason = mlx_status()
    if not usable:
        skipped("mlx_decode", reason)
        return
    model_name = "smollm2-135m-instruct"
    messages = [{"role": "user", "content": "Tell me a story about a lighthouse keeper."}]
    loaded = load_model(model_name)
    ids = prompt_ids(loaded.tokenizer, messages)
    work = Path(tempfile.mkdtemp(prefix="bench-mlx-"))
    peft_dir = random_adapter(loaded.model, work / "peft")
    mlx_dir = peft_to_mlx(peft_dir, work / "mlx", model=model_name).folder
    mlx_base, _ = load_mlx(base_folder(model_name))
    mlx_tuned, _ = load_mlx(base_folder(model_name), mlx_dir)
    engine = Engine(loaded, adapters={"lora": peft_dir}, max_batch=1)
    sides = {
        "mlx-lm base": lambda: mlx_rate(mlx_base, ids, args.tokens),
        "mlx-lm + LoRA": lambda: mlx_rate(mlx_tuned, ids, args.tokens),
        "our engine base": lambda: engine_rate(engine, messages, args.tokens),
        "our engine + LoRA": lambda: engine_rate(engine, messages, args.tokens, adapter="lora"),
        "transformers generate base (incl. prefill)": lambda: hf_rate(loaded.model, ids, args.tokens),
    }
    try:
        best = {name: max(rates) for name, rates in alternate(sides, args.rounds).items()}
    finally:
        engine.close()
    base = best["mlx-lm base"]
    report("mlx_decode", {
        "model": model_name, "dtype": "float32", "prompt_tokens": len(ids), "new_tokens": args.tokens, "rounds": args.rounds,
        "tokens_per_s": {name: round(rate, 1) for name, rate in best.items()},
        "relative_to_mlx_base": {name: round(rate / base, 2) for name, rate in best.items()},
    })


if __name__ == "__main__":
    main()
