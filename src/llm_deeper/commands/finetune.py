"""`llm-deeper finetune` (full or LoRA) and `llm-deeper merge` (adapter → standalone model)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import MODEL_OPTION


def finetune(
    data: Path = typer.Option(None, "--data", help="Training JSONL (messages / Alpaca / prompt-completion; a tools column is allowed). Required unless --recipe."),
    output: Path = typer.Option(..., "--output", "--out", "-o", help="Folder to write: a PEFT adapter (lora) or a full HF model (full)."),
    method: str = typer.Option("lora", "--method", help="full (every weight) or lora (low-rank adapters)."),
    model: str = MODEL_OPTION,
    eval_data: Path = typer.Option(None, "--eval-data", help="Held-out JSONL: loss before training and after each epoch."),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Passes over the training data."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimizer steps."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 2e-4 for lora, 2e-5 for full)."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", min=0, help="Linear warm-up steps, then linear decay."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", min=0.0, help="AdamW weight decay on matrices (not norms, biases)."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", min=0.0, help="Clip the global gradient norm to this (0: off)."),
    rank: int = typer.Option(8, "--rank", "-r", min=1, help="LoRA rank r."),
    alpha: float = typer.Option(16.0, "--alpha", help="LoRA alpha (update scaled by alpha / r)."),
    dropout: float = typer.Option(0.05, "--dropout", min=0.0, max=0.9, help="Dropout on the LoRA input."),
    target_modules: str = typer.Option("q_proj,k_proj,v_proj,o_proj", "--target-modules", help="Comma-separated linear layers that get adapters."),
    layers: int = typer.Option(None, "--layers", min=1, help="Adapt only the last N decoder layers (mlx-lm's num_layers): faster backward. Default: all."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", min=1, help="Conversations per micro-batch (per process)."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Micro-batches per optimizer step."),
    max_length: int = typer.Option(512, "--max-length", min=8, help="Tokens per sequence; longer conversations are cut and counted."),
    pack: bool = typer.Option(False, "--pack", help="Pack several conversations into each max-length row."),
    bucket: bool = typer.Option(False, "--bucket", help="Batch conversations of similar length (less padding, same data)."),
    decision_weight: float = typer.Option(1.0, "--decision-weight", help="Loss weight of each assistant turn's first tokens (call or words); 1 = plain loss."),
    decision_tokens: int = typer.Option(2, "--decision-tokens", help="How many first tokens of an assistant turn --decision-weight covers."),
    seed: int = typer.Option(0, "--seed", help="Seed for adapter init, dropout and data order (same seed, same run)."),
    save_every: int = typer.Option(0, "--save-every", min=0, help="Also checkpoint every N steps (0: each epoch end only)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --output."),
    qlora: bool = typer.Option(False, "--qlora", help="4-bit base via bitsandbytes (needs a CUDA GPU)."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations in backward: less memory, more time."),
    dtype: str = typer.Option(None, "--dtype", help="Base weights: float32 or bfloat16. Default: bfloat16 for LoRA on hardware with bf16 units (frozen base, fp32 adapters), else float32."),
    sharding: str = typer.Option("ddp", "--sharding", help="Under torchrun: ddp (a full replica per process) or fsdp (weights, gradients, Adam state split across processes)."),
    recipe: str = typer.Option(None, "--recipe", help="Run a named tool-calling recipe end to end instead (its own synthetic data, settings and held-out probe): speedrun (~5 min) or full (~20-45 min)."),
) -> None:
    """Fine-tune a model on JSONL chat data, full or LoRA; torchrun gives DDP. Example: llm-deeper finetune --method lora --data train.jsonl --eval-data test.jsonl --output adapter"""
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..errors import UserError
    from ..finetune.config import FinetuneConfig
    from ..inputs import check_data_file, check_output_dir

    if recipe is not None:
        run_named_recipe(recipe, model, output, data)
        return
    if data is None:
        raise UserError("--data is required: a training JSONL (make one with `llm-deeper data make-tools --out DIR`), or run a named recipe with --recipe speedrun|full")
    check_data_file(data, "--data", " (make one with `llm-deeper data make-tools --out DIR`)")
    if eval_data is not None:
        check_data_file(eval_data, "--eval-data")
    check_output_dir(output, "--output")  # before training, not after it
    from ..models.registry import resolve

    resolve(model)  # a bad --model is one line before anything loads
    from ..finetune.loop import train

    config = FinetuneConfig(
        data=data, output=output, method=method, model=model, eval_data=eval_data, epochs=epochs, max_steps=max_steps, lr=lr,
        warmup_steps=warmup_steps, weight_decay=weight_decay, grad_clip=grad_clip, rank=rank, alpha=alpha, dropout=dropout, target_modules=[t.strip() for t in target_modules.split(",") if t.strip()], layers=layers,
        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, pack=pack, bucket=bucket, decision_weight=decision_weight, decision_tokens=decision_tokens, seed=seed, save_every=save_every, resume=resume, qlora=qlora, gradient_checkpointing=gradient_checkpointing, dtype=dtype, sharding=sharding,
    ).validate()
    if qlora:
        from ..finetune.modeling import require_qlora_support

        require_qlora_support()  # fail before loading anything
    main_process = os.environ.get("RANK", "0") == "0"
    console = Console(quiet=not main_process)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}  {task.fields[speed]} tok/s"), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not main_process) as bar:
        task = bar.add_task(f"{method} fine-tune", total=None, loss="-", speed="-")

        def on_log(log) -> None:
            bar.update(task, completed=log.step, total=log.total_steps, loss=f"{log.loss:.3f}", speed=f"{log.tokens_per_s:.0f}")

        result = train(config, on_log=on_log, on_note=lambda note: console.print(f"[yellow]note:[/] {note}"))
    if result.halted:
        console.print(f"halted at step {result.steps}; continue with the same command plus --resume")
        return
    if result.eval_losses:
        console.print("eval loss: " + " → ".join(f"{x:.4f}" for _, x in result.eval_losses) + "  (before training, then after each epoch)")
    console.print(f"{result.steps} steps, {result.seconds:.1f} s, {result.tokens_per_s:.0f} tokens/s, trainable {result.trainable:,} of {result.total:,} parameters, peak RSS {result.peak_rss_mb:.0f} MB")
    kind = "PEFT adapter" if method == "lora" else "HF model folder"
    console.print(f"[green]✓[/] {kind} → {output}")


def run_named_recipe(name: str, model: str, output: Path, data: Path | None) -> None:
    """`finetune --recipe NAME`: the tool-calling recipe (finetune.tool_recipe.RECIPES) with its data under OUTPUT/data,
    the adapter in OUTPUT/adapter, and the probe's figures printed."""
    import json

    from rich.console import Console

    from ..errors import UserError
    from ..finetune.tool_recipe import RECIPES
    from ..inputs import check_output_dir

    if name not in RECIPES:
        raise UserError(f"--recipe {name!r} is not a recipe: use one of {', '.join(RECIPES)}")
    if data is not None:
        raise UserError("--recipe makes its own data (the synthetic tool set under OUTPUT/data): leave out --data, or leave out --recipe to train on your file")
    check_output_dir(output, "--output")
    from ..models.loaders import load_model
    from ..models.registry import resolve

    resolve(model)
    from ..finetune.tool_recipe import run_tool_recipe

    console = Console()
    result = run_tool_recipe(model, load_model(model), output, RECIPES[name], log=console.print)
    console.print_json(json.dumps(result.figures()))
    console.print(f"[green]✓[/] PEFT adapter → {result.adapter_dir} (held-out set: {result.test_file}; score it with "
                  f"`llm-deeper eval --data {result.test_file} --adapter {result.adapter_dir} --with-base --metrics tools`)")


def merge(
    adapter: Path = typer.Option(..., "--adapter", help="PEFT adapter folder (from `finetune --method lora`)."),
    output: Path = typer.Option(..., "--output", "--out", "-o", help="Folder to write the merged standalone model to."),
    model: str = MODEL_OPTION,
) -> None:
    """Merge a LoRA adapter into its base model and save a standalone HF folder. Example: llm-deeper merge --adapter adapter --output merged"""
    from rich.console import Console

    from ..finetune.merge import merge_adapter
    from ..inputs import check_input_dir, check_output_dir

    check_input_dir(adapter, "--adapter", "PEFT adapter folder written by `llm-deeper finetune --method lora`")
    check_output_dir(output, "--output")
    folder = merge_adapter(model, adapter, output)
    Console().print(f"[green]✓[/] merged model → {folder} (use it with --model {folder})")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
    app.command("merge")(merge)
