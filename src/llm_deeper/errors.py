"""Errors a user can fix: the CLI prints their message as one line, no traceback."""


class UserError(Exception):
    """Bad input from the user (unknown model, missing file, invalid value).

    The message must say what was wrong and how to fix it.
    """


class ModelNotFoundError(UserError):
    """A model name or path that resolves to nothing usable."""


def fail(message: str, code: int = 2) -> None:
    """Print one red error line on stderr and exit (the CLI's, and any `python -m` entry point's, way to stop)."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)
