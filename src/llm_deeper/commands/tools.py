"""`llm-deeper tools {list,call,conformance}`."""

from __future__ import annotations

import typer

from ..cli_options import CLIENT_API_KEY_OPTION

tools_app = typer.Typer(help="Built-in tools and the tool-calling conformance suite. Example: llm-deeper tools list", no_args_is_help=True)


@tools_app.command("list")
def list_tools(schemas: bool = typer.Option(False, "--schemas", help="Print the OpenAI JSON definitions instead of a table.")) -> None:
    """The built-in demo tools and their parameters. Example: llm-deeper tools list --schemas"""
    import json

    from rich.console import Console
    from rich.table import Table

    from ..tools.builtin import default_registry

    registry = default_registry()
    if schemas:
        print(json.dumps(registry.schemas(), indent=2, ensure_ascii=False))
        return
    table = Table(title="Built-in tools (llm_deeper.tools.builtin)")
    for column in ("name", "parameters", "description"):
        table.add_column(column)
    for item in registry:
        required = set(item.parameters.get("required", []))
        params = ", ".join(p + ("" if p in required else "?") for p in item.parameters["properties"]) or "(none)"
        table.add_row(item.name, params, item.description)
    Console().print(table)


@tools_app.command("call")
def call_tool(
    name: str = typer.Argument(..., help="Tool name (see `llm-deeper tools list`)."),
    arguments: str = typer.Argument("{}", help="Arguments as a JSON object."),
) -> None:
    """Run one built-in tool through the executor (validation, timeout). Example: llm-deeper tools call get_weather '{"city": "Paris"}'"""
    import json

    from ..errors import UserError
    from ..tools.builtin import default_registry
    from ..tools.calls import ToolCall
    from ..agent.executor import ToolExecutor

    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise UserError(f"arguments must be a JSON object, e.g. '{{\"city\": \"Paris\"}}' ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise UserError("arguments must be a JSON object, e.g. '{\"city\": \"Paris\"}'")
    import logging

    logging.getLogger("llm_deeper.tools").setLevel(logging.ERROR)  # the result is printed below
    result = ToolExecutor(default_registry()).run_one(ToolCall(name, parsed))
    print(result.content)
    if not result.ok:
        raise typer.Exit(1)


@tools_app.command("conformance")
def conformance(
    base_url: str = typer.Option(..., "--base-url", help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1"),
    model: str = typer.Option(None, "--model", "-m", help="Model name on that server (default: its first model)."),
    api_key: str = CLIENT_API_KEY_OPTION,
    max_tokens: int = typer.Option(400, "--max-tokens", min=16, help="Token limit of each request."),
) -> None:
    """Check a server's tool calling (streaming, tool_choice, parallel calls, errors). Example: llm-deeper tools conformance --base-url http://127.0.0.1:8000/v1"""
    import openai
    from rich.console import Console
    from rich.table import Table

    from ..errors import UserError
    from ..tools.conformance import Conformance

    console = Console()
    suite = Conformance(base_url, model, api_key, max_tokens)
    # One request first: an unreachable server or a refused key is one line, not a traceback or a table of failures.
    try:
        listed = suite.client.models.list().data
    except openai.APIStatusError as exc:
        raise UserError(f"{base_url} answered HTTP {exc.status_code} to GET /models: {exc.message}") from None
    except openai.APIConnectionError as exc:
        raise UserError(f"cannot reach {base_url} ({exc.__cause__ or exc}); is the server running?") from None
    if suite.model is None:
        if not listed:
            raise UserError(f"{base_url} serves no models (GET /models is empty); pass --model NAME")
        suite.model = listed[0].id
    results = suite.run(on_result=lambda r: console.print(("[green]✓[/] " if r.passed else "[red]✗[/] ") + r.name, highlight=False))
    table = Table(title=f"Tool-calling conformance: {base_url} ({suite.model})")
    for column in ("check", "result", "detail", "s"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, "[green]pass[/]" if r.passed else "[red]FAIL[/]", r.detail, f"{r.seconds:.1f}")
    console.print(table)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed}/{len(results)} checks passed")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools")
