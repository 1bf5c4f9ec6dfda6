"""`llm-deeper chat` (a terminal chat that streams) and `llm-deeper generate` (one reply, streamed to stdout)."""

from __future__ import annotations

import typer

from ..cli_options import MAX_NEW_TOKENS_OPTION, MODEL_OPTION, SEED_OPTION, TEMPERATURE_OPTION, TOP_K_OPTION, TOP_P_OPTION


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
    app.command("chat")(chat)
    app.command("generate")(generate)
