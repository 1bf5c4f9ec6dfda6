"""`EngineChatModel`: chat requests answered by the engine in this process, the server's way.

Each request goes through `plan.py` exactly as the server's route does (tool
prompt, constraint, parse), and all of them decode together through
`Engine.generate_many` (continuous batching, at most the engine's batch plus
queue in flight). With greedy decoding its replies equal the server's for the
same weights (tests/server/test_chat_layer.py checks it over a socket).
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from typing import Callable

from ..errors import UserError
from .plan import ChatRequestError, finish_reason, parse_reply, plan_request, prompt_messages
from .request import ChatReply, ChatRequest


class EngineChatModel:
    """A chat model over an `inference.engine.Engine` (the base model, or a LoRA adapter by `ChatRequest.model`)."""

    backend = "in-process (engine)"

    def __init__(self, engine, on_text: Callable[[str], None] | None = None):
        self.engine = engine
        self.on_text = on_text  # receives each reply's raw text (the lessons show it)

    def chat(self, request: ChatRequest) -> ChatReply:
        return self.chat_many([request])[0]

    def chat_many(self, requests: list[ChatRequest], on_done: Callable[[int], None] | None = None) -> list[ChatReply]:
        out: list[ChatReply | None] = [None] * len(requests)
        ready, prompts, each = [], [], []
        for index, request in enumerate(requests):
            try:
                plan, ids, config = self._prepare(request)
            except ChatRequestError as exc:  # what the server answers with a 400: a reply with the reason
                out[index] = ChatReply({"role": "assistant", "content": ""}, "error", error=str(exc))
                continue
            ready.append((index, plan, len(ids)))
            prompts.append(ids)
            each.append({"adapter": self._adapter(request.model), **{f.name: getattr(config, f.name) for f in fields(config)}})
        refused = len(requests) - len(ready)
        if refused and on_done:
            on_done(refused)
        start = time.perf_counter()
        results = self.engine.generate_many(prompts, each=each, on_result=(lambda i, _r: on_done(refused + i + 1)) if on_done else None) if prompts else []
        seconds = (time.perf_counter() - start) / max(len(results), 1)
        for (index, plan, prompt_len), result in zip(ready, results):
            if self.on_text:
                self.on_text(result.text)
            message = parse_reply(plan, result.text)
            out[index] = ChatReply(message, finish_reason(result.finish_reason, message), prompt_len, result.usage.completion_tokens,
                                   seconds, text=result.text)
        return out  # type: ignore[return-value]

    def _prepare(self, request: ChatRequest):
        """(plan, prompt ids, sampling with the constraint), compiled; a ChatRequestError for what the server refuses."""
        plan = plan_request(request)
        try:
            ids = self.engine.encode(prompt_messages(request, plan))
        except ChatRequestError:
            raise
        except Exception as exc:  # a chat template can reject a conversation (jinja raises)
            raise ChatRequestError(f"the chat template rejected these messages: {exc}", param="messages") from None
        if len(ids) >= self.engine.context_length:
            raise ChatRequestError(f"the prompt has {len(ids)} tokens but the model's context is {self.engine.context_length} tokens",
                                   param="messages")
        if plan.constraint is not None:
            try:
                self.engine.grammars.compile(plan.constraint)
            except UserError as exc:
                raise ChatRequestError(str(exc), param="tools" if plan.tools else "response_format") from None
        return plan, ids, replace(request.sampling, constraint=plan.constraint).validate()

    def _adapter(self, model: str | None) -> str | None:
        if model is None or model == self.engine.name:
            return None
        if model not in self.engine.adapters:
            raise UserError(f"unknown adapter {model!r}; loaded: {', '.join(self.engine.adapters) or 'none'}")
        return model
