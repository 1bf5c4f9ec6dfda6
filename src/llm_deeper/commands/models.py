"""`llm-deeper models {list,info,prepare}`, `chat` and `generate`."""

from __future__ import annotations

import typer

from ..cli_options import MAX_NEW_TOKENS_OPTION, MODEL_OPTION, SEED_OPTION, TEMPERATURE_OPTION, TOP_K_OPTION, TOP_P_OPTION

models_app = typer.Typer(help="List, inspect and prepare models. Example: llm-deeper models info smollm2-135m-instruct", no_args_is_help=True)


@models_app.command("list")
def list_models() -> None:
    """Show the embedded models and whether each is prepared. Example: llm-deeper models list"""
    from rich.console import Console
    from rich.table import Table

    from ..models.embedded import cached_folder, is_prepared
    from ..models.registry import DEFAULT_MODEL, REGISTRY

    table = Table(title="Embedded models (any HF folder or .gguf path works too)")
    for column in ("name", "description", "license", "prepared"):
        table.add_column(column, overflow="fold")
    for spec in REGISTRY.values():
        name = spec.name + (" (default)" if spec.name == DEFAULT_MODEL else "")
        table.add_row(name, spec.description, spec.license, "yes" if is_prepared(spec) else "no: `llm-deeper models prepare`")
    console = Console()
    console.print(table)
    console.print(f"converted models live in {cached_folder(REGISTRY[DEFAULT_MODEL]).parent}")


@models_app.command("info")
def info(name: str = typer.Argument(..., help="Registry name, HF folder or .gguf file.")) -> None:
    """Architecture, exact parameter count, dtype, context and chat/tool support. Example: llm-deeper models info smollm2-135m-instruct"""
    from rich.console import Console
    from rich.table import Table

    from ..models.inspect import describe
    from ..models.loaders import load_model

    console = Console()
    with console.status(f"loading {name}"):
        loaded = load_model(name)
    table = Table(title=f"{loaded.ref.display_name}", show_header=False)
    for key, value in describe(loaded).items():
        table.add_row(key, str(value))
    console.print(table)


@models_app.command("prepare")
def prepare(name: str = typer.Argument("smollm2-135m-instruct", help="Registry name of an embedded model.")) -> None:
    """Convert an embedded GGUF to a cached HF folder (once; ~15 s). Example: llm-deeper models prepare"""
    import time

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..errors import UserError
    from ..models.embedded import cached_folder, is_prepared
    from ..models.embedded import prepare as prepare_spec
    from ..models.registry import resolve

    ref = resolve(name)
    if ref.spec is None:
        raise UserError(f"{name} is a path, not a registry name: only embedded models need preparing (see `llm-deeper models list`)")
    console = Console()
    if is_prepared(ref.spec):
        console.print(f"[green]✓[/] {ref.spec.name} is already prepared: {cached_folder(ref.spec)}")
        return
    start = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"preparing {ref.spec.name}")
        folder = prepare_spec(ref.spec, lambda step: progress.update(task, description=step))
    console.print(f"[green]✓[/] {ref.spec.name} → {folder} ({time.perf_counter() - start:.1f} s)")


def chat(
    model: str = MODEL_OPTION,
    system: str = typer.Option(None, "--system", help="System prompt (default: the model template's own)."),
    max_new_tokens: int = MAX_NEW_TOKENS_OPTION,
    temperature: float = TEMPERATURE_OPTION,
    top_p: float = TOP_P_OPTION,
    top_k: int = TOP_K_OPTION,
    seed: int = SEED_OPTION,
) -> None:
    """Chat in the terminal; replies stream token by token. /reset clears, Ctrl-D exits. Example: llm-deeper chat"""
    from ..chat_repl import run_chat
    from ..inference.sampling import SamplingConfig

    config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed).validate()
    run_chat(model, config, system)


def generate(
    prompt: str = typer.Option(..., "--prompt", "-p", help="The user message (or raw text with --raw)."),
    model: str = MODEL_OPTION,
    raw: bool = typer.Option(False, "--raw", help="Continue the text as is, without the chat template."),
    system: str = typer.Option(None, "--system", help="System prompt (chat mode)."),
    max_new_tokens: int = MAX_NEW_TOKENS_OPTION,
    temperature: float = TEMPERATURE_OPTION,
    top_p: float = TOP_P_OPTION,
    top_k: int = TOP_K_OPTION,
    seed: int = SEED_OPTION,
) -> None:
    """One-shot generation, streamed to stdout. Example: llm-deeper generate -p "What is the capital of France?" -t 0"""
    import sys

    from ..inference.engine import Engine
    from ..inference.sampling import SamplingConfig
    from ..models.loaders import load_model

    config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed).validate()
    loaded = load_model(model)
    # --raw: the text as is (the tokenizer adds its BOS, as for any text); else chat messages.
    request = prompt if raw else ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    with Engine(loaded, max_batch=1) as engine:
        for event in engine.stream(request, config):
            sys.stdout.write(event.text)
            sys.stdout.flush()
    sys.stdout.write("\n")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("chat")(chat)
    app.command("generate")(generate)
