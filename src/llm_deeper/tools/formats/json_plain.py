"""Plain JSON: the whole output is `{"name": ..., "arguments": {...}}` or a list of them.

What a model prompted to "answer with JSON" writes, and what many OpenAI-style
fine-tunes emit. Content before the JSON makes the output plain text.
"""

from __future__ import annotations

from .base import ToolCallFormat


class JsonPlainFormat(ToolCallFormat):
    name = "json"
    start = None
    end = None
    bare_json = True
    bare_array = True
    separator = ","
    argument_keys = ("arguments", "parameters")

    def format_calls(self, calls):
        calls = list(calls)
        if len(calls) == 1:
            return self.format_call(calls[0])
        return "[" + ",".join(self.format_call(c) for c in calls) + "]"


JSON_PLAIN = JsonPlainFormat()
