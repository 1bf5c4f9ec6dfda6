"""`llm-deeper agent`: a question answered by a model that calls the built-in tools."""

from __future__ import annotations

import typer

from ..cli_options import CLIENT_API_KEY_OPTION, MODEL_OPTION, SEED_OPTION


def agent(
    question: str = typer.Argument(..., help="What to ask, e.g. \"What's the weather in Tokyo?\""),
    model: str = MODEL_OPTION,
    base_url: str = typer.Option(None, "--base-url", help="Use an OpenAI-compatible server instead of a local model, e.g. http://127.0.0.1:8000/v1"),
    api_key: str = CLIENT_API_KEY_OPTION,
    tools: str = typer.Option(None, "--tools", help="Comma-separated tool names (default: all built-in tools; fewer = shorter prompt)."),
    tool_choice: str = typer.Option("required", "--tool-choice", help="First turn: auto, required or a tool name."),
    then: str = typer.Option("none", "--then", help="Later turns: auto, none or required ('none' makes the model answer after the tools ran)."),
    max_steps: int = typer.Option(4, "--max-steps", min=1, help="Model turns before giving up."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", "-n", min=1, help="Token limit per model turn (room for the longest constrained call)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds each tool call may take."),
    log: str = typer.Option(None, "--log", help="Also write each step as a JSON line to this file."),
    seed: int = SEED_OPTION,
) -> None:
    """Run the agent loop: the model calls tools, sees their results, answers. Example: llm-deeper agent "What is 17 * 23?" --tools calculator"""
    import logging

    from rich.console import Console

    from ..errors import UserError
    from ..inference.sampling import SamplingConfig
    from ..agent.loop import Agent, AgentConfig
    from ..tools.builtin import default_registry
    from ..agent.executor import ExecutorConfig

    console = Console(highlight=False)
    if log:
        from ..inputs import check_output_file

        check_output_file(log, "--log")  # before the model loads, not after its first turn
    registry = default_registry()
    if tools:
        names = [n.strip() for n in tools.split(",") if n.strip()]
        unknown = [n for n in names if n not in registry]
        if unknown:
            raise UserError(f"unknown tool(s) {', '.join(unknown)}; built-in tools: {', '.join(registry.names())}")
        registry = registry.subset(names)

    def choice(value: str):
        if value in ("auto", "required", "none"):
            return value
        if value in registry:
            return {"type": "function", "function": {"name": value}}
        raise UserError(f"tool choice {value!r} must be auto, required, none or one of: {', '.join(registry.names())}")

    config = AgentConfig(max_steps=max_steps, tool_choice=choice(tool_choice), followup_tool_choice=choice(then),
                         sampling=SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed))
    if base_url:
        from ..chat.openai_model import OpenAIChatModel

        backend = OpenAIChatModel(base_url, None if model == "smollm2-135m-instruct" else model, api_key)
    else:
        from ..chat.engine_model import EngineChatModel
        from ..inference.engine import Engine

        with console.status(f"loading {model}"):
            backend = EngineChatModel(Engine.load(model, max_batch=1))

    def show(step) -> None:
        for call, result in zip(step.message.get("tool_calls") or [], step.results):
            mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
            console.print(f"step {step.index} ({step.seconds:.1f} s) → {call['function']['name']}({call['function']['arguments']})")
            console.print(f"   {mark} {result.content[:300]}")
        if not step.message.get("tool_calls"):
            console.print(f"step {step.index} ({step.seconds:.1f} s) → answer")

    logging.getLogger("llm_deeper.tools").setLevel(logging.ERROR)  # each step is printed by show()
    result = Agent(backend, registry, config, ExecutorConfig(timeout_s=timeout), log_path=log, on_step=show).run(question)
    if result.stopped == "max_steps":
        console.print(f"[yellow]stopped after {max_steps} steps without a final answer[/]")
        raise typer.Exit(1)
    if result.stopped == "repeated_failure":
        console.print(f"[yellow]stopped: {result.reason}[/]")
        raise typer.Exit(1)
    if result.stopped == "no_tool_call":
        console.print(f"[yellow]the model had to call a tool but its call did not finish (raise --max-new-tokens?): {result.answer[:200]!r}[/]")
        raise typer.Exit(1)
    console.print(f"\n[bold]{result.answer}[/]")


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
