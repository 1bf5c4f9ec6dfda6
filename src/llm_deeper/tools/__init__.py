"""Tool calling: typed Python functions as OpenAI tools, one renderer for prompts,
parsers for the call formats models emit (whole and streamed), grammars that
constrain a model to valid calls, an executor and an agent loop.

Reading order: calls → registry → builtin → openai_spec → render → formats →
streaming → constrain → executor → agent.
"""

from .calls import ToolCall
from .registry import Tool, ToolError, ToolRegistry, tool

__all__ = ["Tool", "ToolCall", "ToolError", "ToolRegistry", "tool"]
