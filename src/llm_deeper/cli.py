"""`llm-deeper <command>`: one CLI, one module per command group.

Each module in `llm_deeper/commands/` has a `register(app)` function; heavy
imports (torch, transformers) live inside the commands, so `--help` is instant.
A `UserError` anywhere prints one line and exits 2, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from .errors import UserError

app = typer.Typer(
    name="llm-deeper",
    help="From attention math to a served, tool-calling, LoRA-fine-tuned model. Example: llm-deeper speedrun --quick",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register_commands() -> None:
    """Add every command module's commands to the app, in file-name order."""
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


def fail(message: str, code: int = 2) -> None:
    """Print one red error line on stderr and exit."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)


def quiet_library_warnings() -> None:
    """Keep libraries' deprecation notices (transformers' FutureWarnings, its logger's advice) out of
    the user's output, in this process and the ones it starts (lessons, torchrun workers).
    A `PYTHONWARNINGS` or `TRANSFORMERS_VERBOSITY` that the user set wins."""
    import os
    import warnings

    if not os.environ.get("PYTHONWARNINGS"):
        os.environ["PYTHONWARNINGS"] = "ignore::FutureWarning,ignore::DeprecationWarning"
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    quiet_library_warnings()
    register_commands()
    try:
        app(args=argv, prog_name="llm-deeper", standalone_mode=True)
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)


if __name__ == "__main__":  # python -m llm_deeper.cli
    main(sys.argv[1:])
