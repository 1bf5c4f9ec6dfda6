"""`llm-deeper tinygpt {train,sample,export}`: a GPT from scratch, end to end."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_options import QUICK_OPTION

tinygpt_app = typer.Typer(help="Train a TinyGPT from scratch, sample from it, export it to transformers. Example: llm-deeper tinygpt train --quick", no_args_is_help=True)

RUN_ARGUMENT = typer.Argument(None, help="Run folder written by `tinygpt train` (default: $LLM_DEEPER_HOME/tinygpt/default).")


def default_run_dir() -> Path:
    from ..paths import artifact_dir

    return artifact_dir("tinygpt") / "default"


# What --quick changes, for the flags a user did not give (an explicit flag always wins).
QUICK_SETTINGS = {"layers": 2, "heads": 2, "embd": 64, "context": 64, "steps": 60, "batch_size": 8, "vocab_size": 320,
                  "warmup": 10, "eval_every": 0, "checkpoint_every": 0}


def quick_defaults(ctx: typer.Context, values: dict) -> dict:
    """`values` with --quick's settings in place of every flag left at its default."""
    def given(name: str) -> bool:  # by name: typer may carry its own copy of click's ParameterSource
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {name: (value if given(name) or name not in QUICK_SETTINGS else QUICK_SETTINGS[name]) for name, value in values.items()}


@tinygpt_app.command("train")
def train_command(
    ctx: typer.Context,
    text: Path = typer.Option(None, "--text", help="UTF-8 text file to train on (default: Python stdlib docstrings)."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder for checkpoint.pt and loss.png (default: $LLM_DEEPER_HOME/tinygpt/default)."),
    tokenizer: str = typer.Option("bpe", "--tokenizer", help="'bpe' (byte-level BPE) or 'char'."),
    vocab_size: int = typer.Option(512, "--vocab-size", min=258, help="BPE vocabulary size (ignored for char)."),
    flavor: str = typer.Option("llama", "--flavor", help="'llama' (RoPE, RMSNorm, SwiGLU) or 'gpt2' (learned positions, LayerNorm, GELU)."),
    layers: int = typer.Option(4, "--layers", min=1, help="Transformer blocks."),
    heads: int = typer.Option(4, "--heads", min=1, help="Attention heads."),
    embd: int = typer.Option(128, "--embd", min=8, help="Width of the residual stream."),
    context: int = typer.Option(128, "--context", min=8, help="Context length in tokens."),
    dropout: float = typer.Option(0.0, "--dropout", min=0.0, max=0.9, help="Dropout while training."),
    steps: int = typer.Option(600, "--steps", min=1, help="Optimizer steps."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Sequences per micro-batch, per process."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Micro-batches per optimizer step."),
    lr: float = typer.Option(1e-3, "--lr", min=0.0, help="Peak learning rate."),
    warmup: int = typer.Option(50, "--warmup", min=0, help="Linear warmup steps."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", min=0.0, help="Clip the global gradient norm to this (0: off)."),
    eval_every: int = typer.Option(250, "--eval-every", min=0, help="Steps between validation losses (0 = end only)."),
    checkpoint_every: int = typer.Option(250, "--checkpoint-every", min=0, help="Steps between checkpoints (0 = end only)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's checkpoint (same losses as an uninterrupted run)."),
    seed: int = typer.Option(1337, "--seed", help="Seed for weights, batches and dropout."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0 = one per idle core)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model (pays off on long runs)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bfloat16 autocast where the CPU/GPU has bf16 units, else float32), bfloat16 or float32."),
    bf16: bool = typer.Option(False, "--bf16", hidden=True, help="Same as --dtype bfloat16 (kept for old scripts)."),
    device: str = typer.Option("auto", "--device", help="'auto', 'cpu' or 'cuda'."),
    sharding: str = typer.Option("ddp", "--sharding", help="Under torchrun: ddp (a full replica per process) or fsdp (weights, gradients, Adam state split across processes)."),
    quick: bool = QUICK_OPTION,
) -> None:
    """Train on the default corpus or --text; works under torchrun (DDP or FSDP). Example: llm-deeper tinygpt train --steps 300"""
    import os

    from rich.console import Console

    from ..data.corpus import fingerprint
    from ..errors import UserError
    from ..scratch.tinygpt import TinyGPTConfig
    from ..train.tinygpt.config import TrainConfig
    from ..train.tinygpt.pretrain import train
    from ..inputs import check_data_file, check_output_dir
    from ..train.tinygpt.text import prepare

    if text is not None:
        check_data_file(text, "--text")
    out = check_output_dir(out or default_run_dir(), "--out")  # before the corpus is built and the model trained
    if quick:
        chosen = quick_defaults(ctx, {"layers": layers, "heads": heads, "embd": embd, "context": context, "steps": steps, "batch_size": batch_size,
                                      "vocab_size": vocab_size, "warmup": warmup, "eval_every": eval_every, "checkpoint_every": checkpoint_every})
        layers, heads, embd, context, steps, batch_size = (chosen[k] for k in ("layers", "heads", "embd", "context", "steps", "batch_size"))
        vocab_size, warmup, eval_every, checkpoint_every = (chosen[k] for k in ("vocab_size", "warmup", "eval_every", "checkpoint_every"))
    main = int(os.environ.get("RANK", "0")) == 0
    console = Console(quiet=not main)
    with console.status("building corpus and tokenizer"):
        corpus, tok, data = prepare(text, tokenizer, vocab_size, context, max_chars=300_000 if quick else None)
    try:
        model_config = TinyGPTConfig(vocab_size=tok.vocab_size, context=context, n_layer=layers, n_head=heads, n_embd=embd, flavor=flavor, dropout=dropout)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    cfg = TrainConfig(steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr, min_lr=lr / 10, warmup_steps=warmup, grad_clip=grad_clip,
                      sharding=sharding, eval_every=eval_every, checkpoint_every=checkpoint_every, seed=seed, threads=threads, compile=compile,
                      dtype="bfloat16" if bf16 else dtype, device=device)
    console.print(f"corpus {corpus.name}: {corpus.chars:,} chars → {data.train.numel():,} train / {data.val.numel():,} val tokens ({tok.kind}, vocab {tok.vocab_size})")
    result = train(model_config, cfg, data, tok, out, resume=resume, data_fingerprint=fingerprint(corpus.train), log=console.print)
    if main:
        val = f"{result.eval_losses[-1][1]:.3f}" if result.eval_losses else "n/a"
        console.print(f"[green]✓[/] {result.total:,} parameters, {len(result.train_losses)} steps: train loss {result.train_losses[-1]:.3f}, "
                      f"val loss {val}, {result.tokens_per_s:,.0f} tokens/s")
        console.print(f"checkpoint: {result.checkpoint}\nloss curve: {result.plot}")


@tinygpt_app.command("sample")
def sample_command(
    run: Path = RUN_ARGUMENT,
    prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue (default: start of a document)."),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", "-n", min=1, help="Tokens to generate per sample."),
    temperature: float = typer.Option(0.8, "--temperature", "-t", min=0.0, max=2.0, help="0 = greedy."),
    top_k: int = typer.Option(0, "--top-k", min=0, help="Keep the k most likely tokens (0 = off)."),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus mass (1 = off)."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", min=0.01, help=">1 discourages repeats."),
    samples: int = typer.Option(1, "--samples", "-s", min=1, help="How many samples."),
    seed: int = typer.Option(None, "--seed", help="Seed for reproducible samples."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the whole sequence each step (slow; for comparison)."),
) -> None:
    """Generate text from a trained TinyGPT (stops at end-of-text). Example: llm-deeper tinygpt sample -p "Return the" -n 100"""
    import time

    from rich.console import Console

    from ..errors import UserError
    from ..scratch.tinygpt_sampling import generate
    from ..train.tinygpt.checkpoint import model_from_checkpoint

    if not 0.0 < top_p <= 1.0:
        raise UserError(f"top-p must be in (0, 1], got {top_p}")
    model, tok, _ = model_from_checkpoint(run or default_run_dir())
    prompt_ids = tok.encode(prompt) if prompt else ([tok.eos_id] if tok.eos_id is not None else [0])
    if len(prompt_ids) > model.config.context:
        prompt_ids = prompt_ids[-model.config.context :]
    console = Console(highlight=False)
    for i in range(samples):
        start = time.perf_counter()
        out = generate(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, repetition_penalty, tok.eos_id,
                       seed=None if seed is None else seed + i, use_cache=not no_cache)
        seconds = time.perf_counter() - start
        text = tok.decode([t for t in out.tokens if t != tok.eos_id])
        console.rule(f"sample {i + 1}: {len(out.tokens)} tokens, {len(out.tokens) / seconds:,.0f} tokens/s" + (", stopped at end-of-text" if out.stopped_on_eos else ""))
        console.print(prompt + text, markup=False)


@tinygpt_app.command("export")
def export_command(
    run: Path = RUN_ARGUMENT,
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the HF model (default: RUN/hf)."),
) -> None:
    """Write an HF folder (Llama or GPT-2) that transformers loads with equal logits. Example: llm-deeper tinygpt export --out ./tinygpt-hf"""
    from rich.console import Console

    from ..convert.tinygpt_export import export_hf, logits_parity
    from ..inputs import check_output_dir
    from ..train.tinygpt.checkpoint import model_from_checkpoint

    if out is not None:
        check_output_dir(out, "--out")
    run = run or default_run_dir()
    model, tok, ckpt = model_from_checkpoint(run)
    out = out or Path(ckpt["path"]).parent / "hf"
    folder = export_hf(model, tok, out, {"checkpoint": ckpt["path"], "step": ckpt["step"]})
    probe = tok.encode("def parity(check):\n    return logits")[: model.config.context] or [0]
    diff = logits_parity(model, folder, probe)
    arch = "LlamaForCausalLM" if model.config.flavor == "llama" else "GPT2LMHeadModel"
    Console().print(f"[green]✓[/] {arch} → {folder}\n  transformers vs TinyGPT: max |Δlogit| = {diff:.2e} over {len(probe)} tokens\n"
                    f"  use it anywhere a model goes: llm-deeper generate --model {folder} --raw -p 'Return the'")
    if diff > 1e-4:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(tinygpt_app, name="tinygpt")
