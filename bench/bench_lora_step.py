"""One LoRA training step of the default model on the speedrun's tool data, three ways, side by side.

A diagnosis of the fine-tune stage's cost (not a user-facing figure; bench_lora_vs_trainer.py is that):
- `all layers, padding mask`: what the loop did before (sdpa gets a (batch, heads, T, T) mask);
- `all layers, no mask`: right-padded rows under a causal mask need no padding mask, so sdpa runs its fused kernel;
- `last 16 layers, no mask`: `--layers 16` (mlx-lm's default num_layers): backward stops below the adapted layers.
The variants alternate on the same batches; the losses must be equal (the B matrices start at zero).
Prints one JSON object. Run: .venv/bin/python bench/bench_lora_step.py [--batches=N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from harness import alternate, report, timed


def main() -> None:
    from llm_deeper.data.sft_render import collate
    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.finetune.config import FinetuneConfig
    from llm_deeper.finetune.loop import pad_id, tokenize
    from llm_deeper.finetune.modeling import build_trainable, make_token_loss
    from llm_deeper.finetune.tool_recipe import ToolRecipe

    batches = next((int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--batches=")), 4)
    recipe = ToolRecipe()
    with tempfile.TemporaryDirectory() as folder:
        train_path, _ = write_tool_dataset(Path(folder), recipe.n_train, recipe.n_test, recipe.seed, recipe.distractors)
        models = {}
        for layers in (None, 16):
            config = FinetuneConfig(data=train_path, output=Path(folder) / "out", rank=recipe.rank, alpha=recipe.alpha,
                                    max_length=recipe.max_length, layers=layers, dropout=0.0)
            models[layers], tokenizer = build_trainable(config)
        rows = tokenize(config.data, tokenizer, config, [])
    data = [collate(rows[i:i + recipe.batch_size], pad_id(tokenizer)) for i in range(0, batches * recipe.batch_size, recipe.batch_size)]
    variants = {"all layers, padding mask": (None, True), "all layers, no mask": (None, False), "last 16 layers, no mask": (16, False)}
    seconds = {name: [] for name in variants}
    modules = {name: make_token_loss(models[layers], padding_mask=mask) for name, (layers, mask) in variants.items()}

    def step(module, batch) -> tuple[float, float]:
        def forward_backward():
            loss, _ = module(**batch)
            loss.backward()
            return loss

        elapsed, loss = timed(forward_backward)
        module.zero_grad(set_to_none=True)
        return elapsed, round(float(loss.detach()), 3)

    for batch in data:  # one round per batch, after one untimed step of each variant
        runs = alternate({name: (lambda module=module: step(module, batch)) for name, module in modules.items()}, rounds=1,
                         warmup=1 if batch is data[0] else 0)
        losses = {loss for rounds in runs.values() for _, loss in rounds}
        assert len(losses) == 1, f"variants disagree on the loss: {losses}"
        for name, rounds in runs.items():
            seconds[name] += [elapsed for elapsed, _ in rounds]
    tokens = sum(int(b["attention_mask"].sum()) for b in data)
    base = statistics.median(seconds["all layers, padding mask"])
    report("lora_step", {"batches": batches, "batch_size": recipe.batch_size, "tokens": tokens,
                      "variants": {name: {"median step s": round(statistics.median(s), 2), "tokens/s": round(tokens / sum(s), 1),
                                          "speed-up": round(base / statistics.median(s), 2)} for name, s in seconds.items()}})


if __name__ == "__main__":
    main()
