"""Tool calling's prompt format: typed Python functions as OpenAI tools, one renderer
for prompts, parsers for the call formats models emit (whole and streamed). It imports
no engine: the constraint for valid calls is `chat/tool_constraint.py`, the executor
and the agent loop are `agent/`.

Reading order: calls → registry → builtin → openai_spec → render → formats → streaming.
"""

from .calls import ToolCall
from .registry import Tool, ToolError, ToolRegistry, tool

__all__ = ["Tool", "ToolCall", "ToolError", "ToolRegistry", "tool"]
