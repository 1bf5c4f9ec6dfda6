"""The constraint a request puts on its reply, as one typed value.

A chat request constrains its reply in at most one way: JSON (any object, or
one matching a schema, from `response_format`) or tool calls (from `tools` and
`tool_choice`). Each kind knows how to compile itself for the engine's
tokenizer; the endpoints pass a `Grammar` around and never inspect it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Grammar(Protocol):
    """Something the engine's grammar cache can compile."""

    def compile(self, cache) -> Any:
        """A compiled xgrammar grammar (`cache` is an `inference.constrained.GrammarCache`)."""


@dataclass(frozen=True)
class JsonGrammar:
    """`response_format`: any JSON object (schema None) or JSON matching `schema`."""

    schema: dict | None = None

    def compile(self, cache):
        return cache.json_object() if self.schema is None else cache.json_schema(self.schema)


@dataclass(frozen=True)
class ToolCallGrammar:
    """`tools` + `tool_choice`: calls in the hermes format, their arguments held to each tool's schema."""

    tools: Any  # a tools.constrain.ToolGrammar

    def compile(self, cache):
        return cache.grammar(self.tools)
