"""`llm-deeper convert peft-to-mlx` / `mlx-to-peft`: LoRA adapters between PEFT and mlx-lm."""

from __future__ import annotations

from pathlib import Path

import typer

convert_app = typer.Typer(help="Convert LoRA adapters between PEFT and mlx-lm. Example: llm-deeper convert peft-to-mlx adapter adapter-mlx", no_args_is_help=True)


@convert_app.command("peft-to-mlx")
def peft_to_mlx_command(
    adapter: Path = typer.Argument(..., help="PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)."),
    out: Path = typer.Argument(..., help="Folder to write the mlx-lm adapter to (adapter_config.json + adapters.safetensors)."),
    model: str = typer.Option(None, "--model", "-m", help="Base model (registry name or HF folder); default: the one the adapter names."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it already exists."),
) -> None:
    """Convert a PEFT LoRA adapter for mlx-lm. Example: llm-deeper convert peft-to-mlx adapter adapter-mlx"""
    from rich.console import Console

    from ..convert.peft_to_mlx import peft_to_mlx

    result = peft_to_mlx(adapter, out, model=model, force=force)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[green]✓[/] mlx-lm adapter → {result.folder}: {result.modules} modules, rank {result.rank}, scale {result.scale:g}, "
                  f"last {result.num_layers} layers, keys {', '.join(result.keys)}"
                  + (f"; {len(result.padded)} uncovered modules as zeros" if result.padded else "")
                  + (f"; {len(result.folded)} per-module scales folded into B" if result.folded else ""))
    console.print(f"  run it: python -m mlx_lm generate --model {result.base} --adapter-path {result.folder} --prompt 'Hello'")
    warn_rope(result.base, console)


@convert_app.command("mlx-to-peft")
def mlx_to_peft_command(
    adapter: Path = typer.Argument(..., help="mlx-lm adapter folder (adapter_config.json + adapters.safetensors)."),
    out: Path = typer.Argument(..., help="Folder to write the PEFT adapter to."),
    model: str = typer.Option(..., "--model", "-m", help="Base model the adapter was trained on (registry name or HF folder)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it already exists."),
) -> None:
    """Convert an mlx-lm LoRA adapter to PEFT. Example: llm-deeper convert mlx-to-peft adapter-mlx adapter-peft --model smollm2-135m-instruct"""
    from rich.console import Console

    from ..convert.mlx_to_peft import mlx_to_peft

    folder, config = mlx_to_peft(adapter, out, model=model, force=force)
    Console(highlight=False, soft_wrap=True).print(f"[green]✓[/] PEFT adapter → {folder}: r {config['r']}, alpha {config['lora_alpha']:g}, "
                                   f"targets {', '.join(sorted(config['target_modules']) if isinstance(config['target_modules'], list) else [config['target_modules']])}; "
                                   f"serve it: llm-deeper serve --model {model} --lora NAME={folder}")


def warn_rope(base: Path, console) -> None:
    """mlx-lm reads only a top-level rope_theta; a folder that keeps it under rope_parameters drifts silently."""
    import json

    config = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    if "rope_theta" not in config and "rope_theta" in (config.get("rope_parameters") or {}):
        console.print(f"[yellow]note:[/] {base}/config.json has rope_theta only under rope_parameters; mlx-lm will use 10000 and drift. "
                      "Add a top-level rope_theta (llm_deeper.models.embedded.write_portable_config does it).")


def register(app: typer.Typer) -> None:
    app.add_typer(convert_app, name="convert")
