"""`llm-deeper deploy vllm` and `llm-deeper adapters lint`."""

from __future__ import annotations

import typer

from ..cli_options import MODEL_OPTION

deploy_app = typer.Typer(help="Serve with a production engine (vLLM). Example: llm-deeper deploy vllm --tools --dry-run", no_args_is_help=True)
adapters_app = typer.Typer(help="Check LoRA adapters before serving them. Example: llm-deeper adapters lint ./adapter", no_args_is_help=True)


@deploy_app.command("vllm")
def deploy_vllm(
    model: str = MODEL_OPTION,
    lora: list[str] = typer.Option(None, "--lora", help="A LoRA adapter served as its own model name: NAME=DIR (repeatable)."),
    tools: bool = typer.Option(False, "--tools", help="Tool calling: --enable-auto-tool-choice, the parser, a tools-aware chat template."),
    tool_parser: str = typer.Option("hermes", "--tool-parser", help="vLLM's --tool-call-parser (hermes reads our <tool_call> JSON)."),
    gpu_memory: float = typer.Option(None, "--gpu-memory", min=1, help="GPU memory in GiB: plan for a CUDA machine of this size."),
    max_model_len: int = typer.Option(None, "--max-model-len", min=16, help="Context cap per sequence (default: the model's)."),
    max_lora_rank: int = typer.Option(None, "--max-lora-rank", min=1, help="vLLM's LoRA rank limit (default: the smallest that fits)."),
    kv_cache_gib: float = typer.Option(1.0, "--kv-cache-gib", min=0.1, help="CPU: KV-cache memory (VLLM_CPU_KVCACHE_SPACE)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 exposes the server)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: a free one)."),
    api_key: str = typer.Option(None, "--api-key", envvar="LLM_DEEPER_API_KEY", help="Require 'Authorization: Bearer KEY'."),
    run: bool = typer.Option(False, "--run/--dry-run", help="--dry-run (default): check and print the command; --run: start vLLM and serve until Ctrl-C."),
) -> None:
    """Check a vLLM deployment (adapters, template, KV cache) and print or run its command. Example: llm-deeper deploy vllm --lora tools=./adapter --tools --run"""
    import shlex
    import time

    from rich.console import Console

    from ..deploy.checks import plan
    from ..cli_options import API_KEY_ENV
    from ..deploy.launch import API_KEY_VARIABLE, VllmConfig, VllmServer
    from .serve import parse_lora

    console = Console(stderr=True, highlight=False)
    from ..deploy.env import has_nvidia_gpu
    from ..errors import UserError

    from ..serve.auth import checked_api_key

    api_key = checked_api_key(api_key)
    if run and gpu_memory and not has_nvidia_gpu():
        raise UserError("--gpu-memory plans for a GPU machine and this one has no NVIDIA GPU: use --dry-run here, --run there")
    config = VllmConfig(model=model, loras=parse_lora(lora), tools=tools, tool_parser=tool_parser, max_lora_rank=max_lora_rank,
                        max_model_len=max_model_len, kv_cache_gib=kv_cache_gib, host=host, port=port, api_key=api_key,
                        device="cuda" if gpu_memory else None)
    checked = plan(config, gpu_memory_gib=gpu_memory, tool_parser=tool_parser, port=port or 8000)
    for line in checked.report:
        console.print(f"[green]✓[/] {line}")
    if not run:
        # The key is not printed (terminals and shell histories keep it): the shell fills it in from the variable.
        shown = [f'{k}="${API_KEY_ENV}"' if k == API_KEY_VARIABLE else shlex.quote(f"{k}={v}") for k, v in checked.variables.items()]
        print(" ".join(shown + [shlex.quote(arg) for arg in checked.argv]))
        return
    server = VllmServer(config)
    server.start()
    console.print(f"[green]✓[/] serving {', '.join([server.name, *config.loras])} at {server.base_url}   (Ctrl-C stops it)")
    try:
        while server.process.poll() is None:
            time.sleep(1)
        raise SystemExit(f"vLLM exited with code {server.process.returncode}; its log: {server.log_path}")
    finally:
        server.stop()


@adapters_app.command("lint")
def lint_adapter(
    folder: str = typer.Argument(..., help="PEFT adapter folder (adapter_config.json + adapter_model.safetensors)."),
    target: str = typer.Option("all", "--target", help="vllm, mlx, llamacpp, ours or all."),
    base: str = typer.Option(None, "--base", help="Base model to check target modules against (default: the adapter's own base)."),
) -> None:
    """Which servers accept a LoRA adapter, and the fix for each that does not. Example: llm-deeper adapters lint ./adapter --target vllm"""
    from rich.console import Console

    from ..deploy.lint import TARGETS, lint
    from ..errors import UserError

    if target != "all" and target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)} or all, not {target!r}")
    info, verdicts = lint(folder, TARGETS if target == "all" else (target,), base=base)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{info.folder}: LoRA rank {info.rank}, targets {info.targets}, weights {sorted(info.dtypes) or '?'}")
    for verdict in verdicts:
        mark = "[green]✓ accepts[/]" if verdict.ok else "[red]✗ needs a fix[/]"
        console.print(f"{verdict.target:9s} {mark}")
        for problem in verdict.problems:
            console.print(f"          - {problem}")
        for note in verdict.notes:
            console.print(f"          [dim]· {note}[/]")
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(adapters_app, name="adapters")
