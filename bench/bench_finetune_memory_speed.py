"""LoRA vs full fine-tuning of the default model: training tokens/s and peak RSS, batch 4 × 256 tokens.

Each method runs in its own subprocess, so each peak RSS is clean (ru_maxrss
never goes down within a process). Methods alternate (lora, full, lora, ...)
over --rounds rounds so a change in machine load hits both alike.
Targets: LoRA peak RSS ≤ 60% of full; LoRA tokens/s ≥ 1.3× full. "lora" runs as
`llm-deeper finetune --method lora` does by default (a bf16 base where the hardware
has bf16 units); "lora-fp32" forces an fp32 base, "lora-fp32+gc" adds gradient
checkpointing (less activation memory, more compute).

Run: nice -n 10 .venv/bin/python bench/bench_finetune_memory_speed.py [--steps 3] [--rounds 1]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from harness import alternate, report

BATCH, LENGTH = 4, 256
METHODS = ("lora", "full", "lora-fp32", "lora-fp32+gc")


def measure(method: str, steps: int) -> dict:
    """One method in this process: 1 warm-up step, then `steps` timed AdamW steps on real tokens."""
    import time
    from pathlib import Path

    import torch

    from llm_deeper.data.toolcalls import make_tool_dataset
    from llm_deeper.finetune.config import FinetuneConfig
    from llm_deeper.train.loop import make_optimizer, peak_rss_mb
    from llm_deeper.finetune.modeling import build_trainable, make_token_loss, parameter_counts
    from llm_deeper.data.sft_render import tokenize_example

    config = FinetuneConfig(data=Path("unused"), output=Path("unused"), method=method.split("-")[0], rank=8, alpha=16, dropout=0.0,
                            gradient_checkpointing=method.endswith("+gc"), dtype="float32" if "fp32" in method else None)
    model, tokenizer = build_trainable(config)
    rows = [tokenize_example(tokenizer, e) for e in make_tool_dataset(n_train=BATCH, n_test=1, seed=0)[0]]
    ids = torch.tensor([r.input_ids[:LENGTH] + [2] * (LENGTH - len(r.input_ids[:LENGTH])) for r in rows])  # real text, exactly 256 tokens
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}  # plain LM loss on every token
    loss_module = make_token_loss(model)
    optimizer = make_optimizer(model.parameters(), lr=1e-5)  # what `finetune` builds
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss, count = loss_module(**batch)
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:  # step 0 warms up allocators and creates Adam's state
            times.append(time.perf_counter() - start)
    trainable, total = parameter_counts(model)
    seconds = sum(times) / len(times)
    return {"method": method, "base_dtype": config.base_dtype, "seconds_per_step": round(seconds, 3), "tokens_per_s": round(BATCH * LENGTH / seconds, 1),
            "peak_rss_mb": round(peak_rss_mb()), "trainable": trainable, "total": total, "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method and round")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (lora, full) × rounds")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return

    def child(method: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--child", method, "--steps", str(args.steps)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    # Each child warms up with its own first step (a fresh process each time): no warm-up round here.
    runs = alternate({method: (lambda method=method: child(method)) for method in METHODS}, args.rounds, warmup=0)
    best = {m: max(r, key=lambda x: x["tokens_per_s"]) for m, r in runs.items()}  # least disturbed round
    rss = {m: max(x["peak_rss_mb"] for x in r) for m, r in runs.items()}
    ratio_rss = rss["lora"] / rss["full"]
    ratio_speed = best["lora"]["tokens_per_s"] / best["full"]["tokens_per_s"]
    report("finetune_memory_speed", {
        "model": "smollm2-135m-instruct", "batch": f"{BATCH} x {LENGTH} tokens", "lora": "r=8 on q,k,v,o",
        "full_tokens_per_s": best["full"]["tokens_per_s"], "full_peak_rss_mb": rss["full"],
        "lora_base_dtype": best["lora"]["base_dtype"], "lora_tokens_per_s": best["lora"]["tokens_per_s"], "lora_peak_rss_mb": rss["lora"],
        "lora_rss_share_of_full": round(ratio_rss, 3), "lora_speedup": round(ratio_speed, 2),
        "meets_targets": {"rss <= 0.6": ratio_rss <= 0.6, "speedup >= 1.3": ratio_speed >= 1.3},
        **{f"{m}_{k}": v for m in ("lora-fp32", "lora-fp32+gc") for k, v in (
            ("tokens_per_s", best[m]["tokens_per_s"]), ("peak_rss_mb", rss[m]),
            ("rss_share_of_full", round(rss[m] / rss["full"], 3)), ("speedup", round(best[m]["tokens_per_s"] / best["full"]["tokens_per_s"], 2)))},
        "trainable": {m: best[m]["trainable"] for m in best}, "rounds": runs,
    })


if __name__ == "__main__":
    main()
