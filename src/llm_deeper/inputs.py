"""Checks on what a user hands a command, run before any work starts.

A command checks its files and folders first, so a wrong path costs a
second, not a model load or a training run, and the user reads one line that
says what was wrong and how to fix it (a `UserError`), never a traceback:

- data files: a file (not a folder), readable, UTF-8 text, no line longer
  than `max_line_bytes()` (a 100 MB single line would otherwise be parsed,
  tokenized and trained on at gigabytes of memory);
- output folders and files: not the other kind of thing already, and in a
  place this user may write.

`text_lines` reads a data file the same way, line by line, so the limit also
holds for readers called from the library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from .errors import UserError

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024  # one JSONL conversation is kilobytes; 8 MiB leaves room for long documents
MAX_LINE_ENV = "LLM_DEEPER_MAX_LINE_BYTES"  # raises (or lowers) the per-line limit


def max_line_bytes() -> int:
    """The per-line limit of data files: $LLM_DEEPER_MAX_LINE_BYTES or 8 MiB."""
    value = os.environ.get(MAX_LINE_ENV, "")
    try:
        return int(value) if value.strip() else DEFAULT_MAX_LINE_BYTES
    except ValueError:
        raise UserError(f"{MAX_LINE_ENV}={value!r} must be a whole number of bytes") from None


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _line_too_long(where: str, limit: int) -> UserError:
    return UserError(f"{where}: the line is longer than {_size(limit)}, the per-line limit of data files "
                     f"(one JSON record per line; raise it with {MAX_LINE_ENV}=BYTES if the line is meant to be this long)")


def check_data_file(path: Path | str, flag: str = "--data", hint: str = "") -> Path:
    """`path` as a readable UTF-8 text file whose lines fit the limit, or a UserError naming `flag`."""
    path = Path(path).expanduser()
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".jsonl", ".txt", ".json"))[:3]
        example = f" (it holds {', '.join(inside)}: pass one of them, e.g. {path / inside[0]})" if inside else ""
        raise UserError(f"{flag} {path} is a folder, not a file: pass the data file itself{example}")
    if not path.exists():
        raise UserError(f"{flag} {path} does not exist{hint}")
    if not path.is_file():
        raise UserError(f"{flag} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {path} is not readable (check its permissions)")
    limit = max_line_bytes()
    for _ in text_lines(path, limit, flag=flag):  # the whole file: UTF-8 and line sizes, before any work
        pass
    return path


def text_lines(path: Path | str, limit: int | None = None, flag: str = "") -> Iterator[tuple[int, str]]:
    """(line number, text) for each line of a UTF-8 file, never holding more than one line of `limit` bytes.

    A line over the limit, or bytes that are not UTF-8 (a binary file), raise
    a UserError naming the file and line at once.
    """
    path = Path(path)
    limit = max_line_bytes() if limit is None else limit
    label = f"{flag} {path}" if flag else str(path)
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):  # limit + 1 bytes and still no line end
                raise _line_too_long(f"{label}:{number}", limit)
            if b"\x00" in raw:
                raise UserError(f"{label}:{number}: not a text file (it holds NUL bytes); pass a UTF-8 JSONL or text file")
            try:
                text = raw.decode("utf-8")  # a newline byte never sits inside a UTF-8 character, so lines decode alone
            except UnicodeDecodeError as exc:
                raise UserError(f"{label}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                                "pass a UTF-8 JSONL or text file") from None
            yield number, text


def check_output_dir(path: Path | str, flag: str = "--output") -> Path:
    """`path` as a folder this user can create or write into, or a UserError naming `flag`."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder: give a folder path (it is created if missing)")
    _check_writable_place(path, flag)
    return path


def check_output_file(path: Path | str, flag: str) -> Path:
    """`path` as a file this user can create or append to, or a UserError naming `flag`."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder, not a file: give a file path, e.g. {path / 'steps.jsonl'}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path} is not writable (check its permissions)")
    _check_writable_place(path.parent, flag, target=path)
    return path


def check_input_dir(path: Path | str, flag: str, what: str = "folder") -> Path:
    """`path` as an existing folder, or a UserError naming `flag`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{flag} {path} does not exist: pass the {what}")
    if not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder: pass the {what}")
    return path


def _check_writable_place(path: Path, flag: str, target: Path | None = None) -> None:
    """The nearest existing folder at or above `path` must be a folder we may write into."""
    target = target or path
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"{flag} {target}: {existing} is a file, so nothing can be created below it")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {target}: cannot write in {existing} (check its permissions, or choose another place)")
