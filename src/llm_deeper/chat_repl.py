"""The terminal chat loop behind `llm-deeper chat`."""

from __future__ import annotations

import sys

from .inference.sampling import SamplingConfig

HELP = "commands: /reset clears the conversation, /exit or Ctrl-D quits"


def run_chat(model_name: str, config: SamplingConfig, system: str | None = None, stdin=None, stdout=None) -> None:
    """Read user turns until EOF; stream each reply as it is generated."""
    from rich.console import Console

    from .inference.engine import Engine
    from .models.loaders import load_model

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    console = Console(file=sys.stderr, highlight=False)
    with console.status(f"loading {model_name}"):
        loaded = load_model(model_name)
    console.print(f"[dim]{loaded.ref.display_name} loaded in {loaded.seconds:.1f} s — {HELP}[/]")
    with Engine(loaded, max_batch=1) as engine:
        _loop(engine, config, system, stdin, stdout, console)


def _loop(engine, config: SamplingConfig, system: str | None, stdin, stdout, console) -> None:
    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    while True:
        stdout.write("\nyou> ")
        stdout.flush()
        line = stdin.readline()
        if not line:  # Ctrl-D / end of input
            stdout.write("\n")
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            messages = list(start)
            console.print("[dim]conversation cleared[/]")
            continue
        if text.startswith("/"):
            console.print(f"[yellow]unknown command {text}[/] — {HELP}")
            continue
        messages.append({"role": "user", "content": text})
        stdout.write("bot> ")
        pieces = []
        for event in engine.stream(messages, config):  # the user's text stays plain text (chat_format)
            pieces.append(event.text)
            stdout.write(event.text)
            stdout.flush()
        stdout.write("\n")
        messages.append({"role": "assistant", "content": "".join(pieces).strip()})
