"""Errors a user can fix: the CLI prints their message as one line, no traceback."""


class UserError(Exception):
    """Bad input from the user (unknown model, missing file, invalid value).

    The message must say what was wrong and how to fix it.
    """


class ModelNotFoundError(UserError):
    """A model name or path that resolves to nothing usable."""
