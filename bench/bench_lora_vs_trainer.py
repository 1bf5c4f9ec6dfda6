"""LoRA: `llm-deeper finetune` vs transformers `Trainer` + PEFT (the path most tutorials take), same recipe.

Same base (the default model), same PEFT LoRA config (r 8, alpha 16, dropout 0,
q/k/v/o), same tokenized rows in the same order (the Trainer gets our
permutation and a sequential sampler), same batch, AdamW, learning rate and
linear schedule, same base dtype (ours picks it: bf16 only where measured
faster). Each side runs in its own fresh process (clean peak RSS), A and B
alternating per round. Reported: tokens/s (non-padding input tokens per
second of training steps), peak RSS, and the per-step loss of both (same
batches, so the curves should agree up to float noise).

Run:   python bench/bench_lora_vs_trainer.py [--steps 8] [--rounds 1] [--max-length 512]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import alternate, load, report

TARGETS = {"tokens_per_s_ratio_min": 1.5, "peak_rss_ratio_max": 1.0}


def prepare(folder: Path, n_train: int) -> Path:
    from llm_deeper.data.toolcalls import write_tool_dataset

    train, _ = write_tool_dataset(folder / "data", n_train=n_train, n_test=4, seed=0, distractors=1)
    return train


def worker(side: str, data: Path, steps: int, batch: int, max_length: int, out: Path, dtype: str) -> dict:
    """One side, in this process: returns losses, tokens/s, peak RSS."""
    import resource

    import torch

    from llm_deeper.finetune.config import FinetuneConfig

    config = FinetuneConfig(data=data, output=out, method="lora", batch_size=batch, max_length=max_length, max_steps=steps,
                            lr=2e-4, dropout=0.0, rank=8, alpha=16.0, seed=0, epochs=1, dtype=dtype)
    if side == "ours":
        from llm_deeper.finetune.loop import train

        result = train(config)
        losses, tps, seconds = result.train_losses, result.tokens_per_s, result.seconds
    else:
        from peft import LoraConfig, get_peft_model
        from transformers import Trainer, TrainingArguments

        from llm_deeper.data.sft import read_jsonl
        from llm_deeper.data.sft_render import collate, tokenize_dataset
        from llm_deeper.finetune.loop import pad_id
        from llm_deeper.models.loaders import load_model

        loaded = load_model(config.model, dtype=config.base_dtype)
        torch.manual_seed(config.seed)
        model = get_peft_model(loaded.model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=config.target_modules, task_type="CAUSAL_LM"))
        rows, _ = tokenize_dataset(loaded.tokenizer, read_jsonl(data), max_length)
        order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(config.seed * 1000)).tolist()  # our epoch-0 order
        ordered = [rows[i] for i in order][: steps * batch]
        pad = pad_id(loaded.tokenizer)
        tokens = [0]
        step_losses: list[float] = []

        def collator(items):
            batch_ = collate(items, pad)
            tokens[0] += int(batch_["attention_mask"].sum())
            return batch_

        class InOrder(Trainer):
            def _get_train_sampler(self, *args, **kwargs):
                return torch.utils.data.SequentialSampler(self.train_dataset)

        from transformers import TrainerCallback

        class Losses(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    step_losses.append(float(logs["loss"]))

        args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps, learning_rate=2e-4,
                                 lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, logging_steps=1,
                                 save_strategy="no", report_to=[], seed=config.seed, use_cpu=not torch.cuda.is_available(),
                                 dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True)
        trainer = InOrder(model=model, args=args, train_dataset=ordered, data_collator=collator, callbacks=[Losses()])
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        losses, tps = step_losses, tokens[0] / seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"losses": [round(x, 4) for x in losses], "tokens_per_s": round(tps, 1), "train_seconds": round(seconds, 1),
            "peak_rss_mb": round(peak), "base_dtype": config.base_dtype}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--worker", choices=["ours", "trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default=None, help="base dtype for both sides (default: what `finetune` picks here, decided once)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.steps, args.batch_size, args.max_length, args.out, args.dtype)))
        return 0
    if args.dtype is None:  # one decision for both sides (the measurement behind "auto" can flip with the load)
        from llm_deeper.finetune.config import FinetuneConfig

        args.dtype = FinetuneConfig(data=Path("x"), output=Path("y")).base_dtype
    with tempfile.TemporaryDirectory(prefix="lora-vs-trainer-") as tmp:
        folder = Path(tmp)
        data = prepare(folder, n_train=max(16, args.steps * args.batch_size))
        counter = {"trainer": 0, "ours": 0}

        def side(name: str) -> dict:
            before = load()
            out = folder / f"{name}{counter[name]}"
            counter[name] += 1
            proc = subprocess.run([sys.executable, __file__, "--worker", name, "--data", str(data), "--out", str(out),
                                   "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length), "--dtype", args.dtype],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
            return {**json.loads(proc.stdout.strip().splitlines()[-1]), "before": before}

        # Each side is a fresh process that pays its own start-up: no warm-up round.
        sides = alternate({"trainer": lambda: side("trainer"), "ours": lambda: side("ours")}, args.rounds, warmup=0)
        runs = []
        for ours, theirs in zip(sides["ours"], sides["trainer"]):
            pair = {"trainer": theirs, "ours": ours}
            if "error" not in ours and "error" not in theirs:
                pair["tokens_per_s_ratio"] = round(ours["tokens_per_s"] / theirs["tokens_per_s"], 2)
                pair["peak_rss_ratio"] = round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3)
                pair["max_loss_gap"] = round(max(abs(a - b) for a, b in zip(ours["losses"], theirs["losses"])), 4)
            runs.append(pair)
    good = [r for r in runs if "tokens_per_s_ratio" in r]
    summary = {}
    if good:
        tps = min(r["tokens_per_s_ratio"] for r in good)
        rss = max(r["peak_rss_ratio"] for r in good)
        summary = {"tokens_per_s_ratio_min": tps, "peak_rss_ratio_max": rss, "max_loss_gap": max(r["max_loss_gap"] for r in good),
                   "met": {"tokens_per_s": tps >= TARGETS["tokens_per_s_ratio_min"], "peak_rss": rss <= TARGETS["peak_rss_ratio_max"]}}
    report("lora_vs_trainer", {"recipe": vars(args) | {"worker": None, "data": None, "out": None}, "targets": TARGETS, "runs": runs, **summary})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
