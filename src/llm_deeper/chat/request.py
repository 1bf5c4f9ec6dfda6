"""What goes into a chat model and what comes out, and the protocol both backends follow.

One error policy for both: a request the model refuses (bad tools or schema:
the server's HTTP 400) comes back as a reply with `error` set, so a batch of
evaluation items goes on; a server that cannot be reached or fails (5xx) raises
a one-line `UserError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..inference.sampling import SamplingConfig


@dataclass
class ChatRequest:
    """One chat completion to make."""

    messages: list[dict]  # OpenAI messages (assistant tool_calls and tool results included)
    tools: list[dict] | None = None  # OpenAI tool definitions
    tool_choice: str | dict | None = None  # "none" | "auto" | "required" | {"type": "function", "function": {"name": ...}}; None: auto with tools
    parallel_tool_calls: bool | None = True  # several calls in one reply
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # max_new_tokens, temperature, seed, stop, ...
    response_format: dict | None = None  # {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}
    model: str | None = None  # a LoRA adapter's name (in-process) or the served model's (HTTP); None: the base model
    constrain: bool = True  # False: tools go into the prompt but the reply is free (in-process only: what a model learned)


@dataclass
class ChatReply:
    """One assistant reply, as an OpenAI chat completion's first choice has it."""

    message: dict  # {"role": "assistant", "content": str | None, "tool_calls": [...]?}
    finish_reason: str  # "stop", "tool_calls", "length", or "error" (the request was refused: see `error`)
    prompt_tokens: int = 0
    completion_tokens: int = 0  # as the server's usage counts them (the end-of-turn token included)
    seconds: float = 0.0  # wall time of the request (in a batch: the batch's time shared out evenly)
    error: str = ""  # why the model refused the request (HTTP 400: a schema it cannot compile, ...)
    text: str = ""  # the model's raw text, calls included (in-process only)

    @property
    def content(self) -> str:
        return self.message.get("content") or ""

    @property
    def tool_calls(self) -> list[dict]:
        return self.message.get("tool_calls") or []


class ChatModel(Protocol):
    """Something that answers chat requests: `EngineChatModel` or `OpenAIChatModel`."""

    backend: str  # how reports name it ("in-process (engine)", "OpenAI-compatible endpoint")

    def chat(self, request: ChatRequest) -> ChatReply:
        """One reply."""

    def chat_many(self, requests: list[ChatRequest], on_done: Callable[[int], None] | None = None) -> list[ChatReply]:
        """One reply per request, in order; `on_done(n)` as the first n are in."""
