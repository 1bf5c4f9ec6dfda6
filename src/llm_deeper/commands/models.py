"""`llm-deeper models {list,info,prepare}` (`chat` and `generate` are in commands/chat.py)."""

from __future__ import annotations

import typer

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


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
