"""Tool-call formats, one module each, behind one small interface (`base.ToolCallFormat`)."""

from __future__ import annotations

from ...errors import UserError
from .base import ToolCallFormat, ToolCallParseError
from .hermes import HERMES
from .json_plain import JSON_PLAIN
from .llama3 import LLAMA3

FORMATS: dict[str, ToolCallFormat] = {f.name: f for f in (HERMES, JSON_PLAIN, LLAMA3)}


def get_format(name: str | ToolCallFormat) -> ToolCallFormat:
    """A format by name ("hermes", "json", "llama3"); a clear error otherwise."""
    if isinstance(name, ToolCallFormat):
        return name
    if name not in FORMATS:
        raise UserError(f"unknown tool-call format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]


__all__ = ["FORMATS", "HERMES", "JSON_PLAIN", "LLAMA3", "ToolCallFormat", "ToolCallParseError", "get_format"]
