"""Llama 3.1/3.2 JSON tool calls: `{"name": ..., "parameters": {...}}`.

The output starts with the JSON object (optionally after `<|python_tag|>`);
several calls are separated by `;`. Llama writes the arguments under
"parameters"; "arguments" is accepted too.
"""

from __future__ import annotations

from .base import ToolCallFormat


class Llama3Format(ToolCallFormat):
    name = "llama3"
    start = "<|python_tag|>"
    end = None
    bare_json = True
    separator = ";"
    argument_keys = ("parameters", "arguments")

    def format_call(self, call):
        # The python tag opens the whole output once, not every call.
        return super().format_call(call).removeprefix(self.start)

    def format_calls(self, calls):
        return self.separator.join(self.format_call(c) for c in calls)


LLAMA3 = Llama3Format()
