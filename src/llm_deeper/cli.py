"""`llm-deeper <command>`: one CLI, one module per command group.

Each module in `llm_deeper/commands/` has a `register(app)` function; heavy
imports (torch, transformers) live inside the commands, so `--help` is instant.
A `UserError` anywhere, or a flag click refuses (a value out of range, a
missing option), prints one line and exits 2, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from .errors import UserError, fail

app = typer.Typer(
    name="llm-deeper",
    help="From attention math to a served, tool-calling, LoRA-fine-tuned model. Example: llm-deeper speedrun --quick",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_registered = False  # register once: run() may be called many times in one process (tests)


def register_commands() -> None:
    """Add every command module's commands to the app, in file-name order."""
    global _registered
    from . import commands

    if _registered:
        return
    _registered = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


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


def usage_line(exc) -> str:
    """click's usage error (several lines and a box) as one line that points at the command's help."""
    where = exc.ctx.command_path if exc.ctx is not None else "llm-deeper"
    return f"{exc.format_message()} (see `{where} --help`)"


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; every error a user can cause is one line on stderr."""
    try:  # typer >= 0.26 carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer on plain click
        from click import exceptions as click_errors

    register_commands()
    try:
        return app(args=argv, prog_name="llm-deeper", standalone_mode=False) or 0
    except click_errors.NoArgsIsHelpError as exc:  # `llm-deeper tools`: the group's help, as click would
        help_text = exc.ctx.get_help()  # typer's rich help prints itself and returns ""
        if help_text:
            print(help_text)
        return exc.exit_code
    except click_errors.UsageError as exc:
        fail(usage_line(exc), exc.exit_code)
    except click_errors.ClickException as exc:  # e.g. a file click itself could not open
        fail(exc.format_message(), exc.exit_code)
    except UserError as exc:
        fail(str(exc))
    except (KeyboardInterrupt, typer.Abort):
        fail("interrupted", code=130)
    return 0


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    quiet_library_warnings()
    raise SystemExit(run(argv))


if __name__ == "__main__":  # python -m llm_deeper.cli
    main(sys.argv[1:])
