"""`OpenAIChatModel`: chat requests sent to an OpenAI-compatible server with the official `openai` client.

The server renders, constrains and parses (`llm-deeper serve` with the same
`plan.py`; vLLM and llama.cpp with their own). Errors follow the chat layer's
one policy (request.py): a 400 is a reply with `error`, anything else that
fails is a one-line `UserError`.
"""

from __future__ import annotations

import time
from typing import Callable

from ..errors import UserError
from .request import ChatReply, ChatRequest


class OpenAIChatModel:
    """A chat model behind `base_url` (`.../v1`); `model` None: the server's first model."""

    backend = "OpenAI-compatible endpoint"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, timeout: float = 300.0):
        from openai import OpenAI

        self.base_url = base_url
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)
        self.model = model or self._call(lambda: self.client.models.list().data[0].id)

    def _call(self, send):
        """Run a request; connection and server errors become one-line UserErrors (a 400 is the caller's to read)."""
        import openai

        try:
            return send()
        except openai.BadRequestError:
            raise
        except openai.APIStatusError as exc:
            raise UserError(f"{self.base_url} answered HTTP {exc.status_code}: {exc.message}") from None
        except openai.APIConnectionError as exc:
            raise UserError(f"cannot reach {self.base_url} ({exc.__cause__ or exc}); is the server running (llm-deeper serve)?") from None

    def chat(self, request: ChatRequest) -> ChatReply:
        import openai

        sampling = request.sampling
        kwargs: dict = {"model": request.model or self.model, "messages": request.messages, "max_tokens": sampling.max_new_tokens,
                        "temperature": sampling.temperature}
        optional = {"top_p": None if sampling.greedy else sampling.top_p, "seed": sampling.seed, "stop": list(sampling.stop) or None,
                    "frequency_penalty": sampling.frequency_penalty or None, "presence_penalty": sampling.presence_penalty or None,
                    "response_format": request.response_format}
        kwargs.update({key: value for key, value in optional.items() if value is not None})
        if request.tools:
            kwargs.update(tools=request.tools, tool_choice=request.tool_choice or "auto",
                          parallel_tool_calls=True if request.parallel_tool_calls is None else request.parallel_tool_calls)
        start = time.perf_counter()
        try:
            response = self._call(lambda: self.client.chat.completions.create(**kwargs))
        except openai.BadRequestError as exc:  # a request this server refuses: a reply with its reason
            return ChatReply({"role": "assistant", "content": ""}, "error", seconds=time.perf_counter() - start,
                             error=f"HTTP 400: {exc.message}")
        choice = response.choices[0]
        message: dict = {"role": "assistant", "content": choice.message.content}
        if choice.message.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                     for c in choice.message.tool_calls]
        usage = response.usage
        return ChatReply(message, choice.finish_reason or "", usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                         time.perf_counter() - start)

    def chat_many(self, requests: list[ChatRequest], on_done: Callable[[int], None] | None = None) -> list[ChatReply]:
        out = []
        for request in requests:
            out.append(self.chat(request))
            if on_done:
                on_done(len(out))
        return out
