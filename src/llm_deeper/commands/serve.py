"""`llm-deeper serve`: the OpenAI-compatible server with the web chat page."""

from __future__ import annotations

import typer

from ..cli_options import MODEL_OPTION


def parse_lora(values: list[str]) -> dict[str, str]:
    """`name=DIR` pairs → {name: DIR}, with a clear error for anything else."""
    from ..errors import UserError

    out: dict[str, str] = {}
    for value in values or []:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise UserError(f"--lora expects NAME=DIR (e.g. --lora tools=./adapters/tools), got {value!r}")
        if name.strip() in out:
            raise UserError(f"--lora name {name.strip()!r} is given twice")
        out[name.strip()] = folder.strip()
    return out


def serve(
    model: str = MODEL_OPTION,
    lora: list[str] = typer.Option(None, "--lora", help="A LoRA adapter served as its own model name: NAME=DIR (repeatable)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 exposes the server to the network)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    api_key: str = typer.Option(None, "--api-key", envvar="LLM_DEEPER_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 routes."),
    allowed_host: list[str] = typer.Option(None, "--allowed-host", help="A host name the server answers to besides localhost and IP addresses (repeatable; '*': any). Guards against DNS rebinding."),
    max_concurrency: int = typer.Option(8, "--max-concurrency", min=1, help="Requests decoded together in one batch."),
    max_queue: int = typer.Option(64, "--max-queue", min=0, help="Requests that may wait for a batch slot; more get 429."),
    max_model_len: int = typer.Option(None, "--max-model-len", min=16, help="Cap the context length (default: the model's)."),
    default_max_tokens: int = typer.Option(1024, "--default-max-tokens", min=1, help="Reply length when a request sets no max_tokens."),
    max_request_bytes: int = typer.Option(None, "--max-request-bytes", min=1024, help="Larger request bodies get 413 (default: 1 MiB + 64 bytes per context token)."),
    shutdown_timeout: float = typer.Option(5.0, "--shutdown-timeout", min=0.0, help="Seconds requests in flight may run on after SIGTERM/Ctrl+C; then they are cancelled."),
    compile_decode: bool = typer.Option(False, "--compile", help="Compile the decode step with torch.compile at start (minutes once; faster steps). Llama models."),
    prefix_cache: bool = typer.Option(True, "--prefix-cache/--no-prefix-cache", help="Reuse the KV of prompt prefixes seen before (a shared system prompt is computed once)."),
    prefix_cache_mib: float = typer.Option(512, "--prefix-cache-mib", min=0, help="Memory the prefix cache may hold, in MiB (least recently used blocks go first)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 (exact), bfloat16, int4 (4-bit weights in Q4_1 groups, bf16 activations: fastest decode, bf16's quality) or int8."),
) -> None:
    """Serve a model (and LoRA adapters) over an OpenAI-compatible API with a web chat page at /. Example: llm-deeper serve --port 8000"""
    import uvicorn
    from rich.console import Console

    from ..inference.engine import Engine
    from ..serve.app import create_app
    from ..serve.shutdown import GracefulServer

    from ..inputs import check_input_dir
    from ..serve.auth import checked_api_key

    api_key = checked_api_key(api_key)  # before the model loads
    adapters = parse_lora(lora)
    for name, folder in adapters.items():
        check_input_dir(folder, f"--lora {name}=", "PEFT adapter folder")
    console = Console(stderr=True)
    with console.status(f"loading {model}" + (" and compiling its decode step" if compile_decode else "")):
        engine = Engine.load(model, dtype=dtype, loras=adapters, max_batch=max_concurrency, max_queue=max_queue, max_len=max_model_len,
                             compile_decode=compile_decode, prefix_cache=prefix_cache, prefix_cache_mib=prefix_cache_mib)
    if engine.compile_seconds is not None:
        console.print(f"[green]✓[/] decode step compiled in {engine.compile_seconds:.0f} s")
    console.print(f"[green]✓[/] {engine.prefix.describe()}" if engine.prefix is not None else "  prefix cache: off")
    from ..serve.hosts import LOOPBACK_NAMES, is_address

    hosts = [*LOOPBACK_NAMES, *(allowed_host or []), *([] if is_address(host) else [host])]  # --host by name answers to that name
    app = create_app(engine, api_key=api_key, default_max_tokens=default_max_tokens, max_request_bytes=max_request_bytes,
                     shutdown_timeout=shutdown_timeout, allowed_hosts=tuple(hosts))
    names = ", ".join([engine.name, *engine.adapters])
    console.print(f"[green]✓[/] serving {names} (context {engine.context_length}, {dtype}, batch ≤ {max_concurrency})")
    console.print(f"  web chat: http://{host}:{port}/   API: http://{host}:{port}/v1   docs: http://{host}:{port}/docs"
                  + ("   (API key required)" if api_key else ""))
    try:
        GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning"), app.state.gate).run()
    finally:
        engine.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
