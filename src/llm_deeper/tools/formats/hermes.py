"""Hermes / Qwen format: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

What SmolLM2- and Qwen-family models emit, and what our renderer teaches the
default model. Parallel calls are one `<tool_call>` block per line.
"""

from __future__ import annotations

from ..render import CALL_END, CALL_SEPARATOR, CALL_START
from .base import ToolCallFormat


class HermesFormat(ToolCallFormat):
    name = "hermes"
    start = CALL_START
    end = CALL_END
    separator = CALL_SEPARATOR
    argument_keys = ("arguments", "parameters")


HERMES = HermesFormat()
