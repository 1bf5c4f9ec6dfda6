"""From an OpenAI request to engine requests and back to OpenAI responses.

The routes stay thin: they hand a validated body to `CompletionService`, which
resolves the model (base or LoRA adapter), builds the prompt and sampling
settings, checks the context length, submits one engine request per choice,
and assembles either one JSON response or a stream of SSE chunks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import UserError
from ..inference.engine import ContextLengthError, Engine, QueueFullError, StreamEvent
from ..inference.sampling import SamplingConfig
from . import tool_calls
from .errors import APIError
from .metrics import Metrics
from .schemas import ChatCompletionRequest, CompletionRequest
from .sse import DONE, sse


@dataclass
class Job:
    """One choice to generate."""

    prompt_ids: list[int]
    config: SamplingConfig
    adapter: str | None
    constraint: object | None = None  # a fresh inference.constrained.Constraint
    logprobs: int | None = None


@dataclass
class Choice:
    """What one choice has produced so far."""

    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0


class CompletionService:
    """The generation side of the server."""

    def __init__(self, engine: Engine, metrics: Metrics, default_max_tokens: int = 1024):
        self.engine = engine
        self.metrics = metrics
        self.default_max_tokens = default_max_tokens
        self.created = int(time.time())
        engine.observers.append(self._observe)

    def _observe(self, request, event: StreamEvent) -> None:
        now = time.perf_counter()
        first = request.first_token_at - request.submitted if request.first_token_at else None
        self.metrics.record_generation(len(request.prompt_ids), len(request.output), now - request.submitted, first)

    # -- models ---------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [self.engine.name, *self.engine.adapters]

    def models_payload(self) -> dict:
        base = {"id": self.engine.name, "object": "model", "created": self.created, "owned_by": "llm-deeper",
                "root": self.engine.name, "parent": None, "max_model_len": self.engine.context_length}
        adapters = [{"id": name, "object": "model", "created": self.created, "owned_by": "llm-deeper",
                     "root": str(adapter.folder), "parent": self.engine.name, "max_model_len": self.engine.context_length}
                    for name, adapter in self.engine.adapters.items()]
        return {"object": "list", "data": [base, *adapters]}

    def adapter_for(self, model: str | None) -> str | None:
        """None for the base model, the adapter name for an adapter; 404 otherwise."""
        if model is None or model == self.engine.name:
            return None
        if model in self.engine.adapters:
            return model
        raise APIError(404, f"The model `{model}` does not exist. Available: {', '.join(self.model_names())}", param="model", code="model_not_found")

    # -- shared request handling ----------------------------------------------
    def _max_new_tokens(self, prompt_len: int, requested: int | None) -> int:
        context = self.engine.context_length
        if prompt_len >= context:
            raise APIError(400, f"This model's maximum context length is {context} tokens, but the prompt has {prompt_len} tokens. Shorten the prompt.",
                           param="messages", code="context_length_exceeded")
        room = context - prompt_len
        if requested is not None and requested > room:
            raise APIError(400, f"This model's maximum context length is {context} tokens, but you requested {prompt_len + requested} tokens "
                                f"({prompt_len} in the prompt, {requested} for the completion). Reduce the prompt or max_tokens.",
                           param="max_tokens", code="context_length_exceeded")
        return requested if requested is not None else min(self.default_max_tokens, room)

    def _sampling(self, body, max_new: int, choice: int) -> SamplingConfig:
        seed = None if body.seed is None else (body.seed + choice) % 2**63
        config = SamplingConfig(
            max_new_tokens=max_new,
            temperature=1.0 if body.temperature is None else body.temperature,  # OpenAI's default
            top_p=1.0 if body.top_p is None else body.top_p,
            top_k=max(0, body.top_k or 0),
            repetition_penalty=body.repetition_penalty,
            seed=seed,
            frequency_penalty=body.frequency_penalty,
            presence_penalty=body.presence_penalty,
            stop=tuple(body.stop_list()),
            ignore_eos=body.ignore_eos,
        )
        try:
            return config.validate()
        except UserError as exc:
            raise APIError(400, str(exc)) from None

    def _encode(self, prompt) -> list[int]:
        try:
            return self.engine.encode(prompt)
        except UserError as exc:
            raise APIError(400, str(exc), param="prompt") from None
        except Exception as exc:  # a chat template can reject a conversation (jinja raises)
            raise APIError(400, f"the chat template rejected these messages: {exc}", param="messages") from None

    def _constraint(self, grammar) -> object | None:
        if grammar is None:
            return None
        from ..inference.constrained import grammar_cache

        cache = grammar_cache(self.engine.tokenizer, self.engine.vocab_size)
        try:
            if isinstance(grammar, tuple) and grammar[0] == "json_object":
                compiled = cache.json_object()
            elif isinstance(grammar, tuple) and grammar[0] == "json_schema":
                compiled = cache.json_schema(grammar[1])
            else:
                compiled = cache.grammar(grammar)
        except UserError as exc:
            raise APIError(400, str(exc), param="response_format") from None
        return cache.constraint(compiled)

    def _submit(self, jobs: list[Job], grammar, loop, queue: asyncio.Queue) -> list:
        """Submit every choice; on any failure cancel the ones already queued."""
        requests = []
        try:
            for index, job in enumerate(jobs):
                sink = (lambda event, i=index: loop.call_soon_threadsafe(queue.put_nowait, (i, event)))
                requests.append(self.engine.submit(job.prompt_ids, job.config, adapter=job.adapter,
                                                   constraint=self._constraint(grammar), logprobs=job.logprobs, sink=sink))
        except BaseException as exc:
            for request in requests:
                request.cancel()
            if isinstance(exc, QueueFullError):
                raise APIError(429, str(exc), code="too_many_requests") from None
            if isinstance(exc, ContextLengthError):
                raise APIError(400, str(exc), param="messages", code="context_length_exceeded") from None
            if isinstance(exc, UserError):
                raise APIError(400, str(exc)) from None
            raise
        return requests

    async def _events(self, requests, queue: asyncio.Queue, http: Request, watch_disconnect: bool) -> AsyncIterator[tuple[int, StreamEvent]]:
        """(choice index, event) until every choice has finished; cancels them all on exit."""
        remaining = len(requests)
        try:
            while remaining:
                if watch_disconnect:
                    try:
                        index, event = await asyncio.wait_for(queue.get(), timeout=0.25)
                    except asyncio.TimeoutError:
                        if await http.is_disconnected():
                            return
                        continue
                else:
                    index, event = await queue.get()
                if event.finish_reason == "error":
                    raise APIError(500, f"generation failed: {event.error}", code="generation_error")
                yield index, event
                if event.finish_reason is not None:
                    remaining -= 1
        finally:
            for request in requests:
                request.cancel()

    @staticmethod
    def _usage(choices: list[Choice]) -> dict:
        prompt = choices[0].prompt_tokens if choices else 0
        completion = sum(len(c.token_ids) for c in choices)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _token_text(self, token_id: int) -> str:
        return self.engine.tokenizer.decode([token_id])

    # -- /v1/chat/completions -------------------------------------------------
    async def chat(self, body: ChatCompletionRequest, http: Request):
        adapter = self.adapter_for(body.model)
        plan = tool_calls.plan_tools(body)
        prompt_ids = self._encode(tool_calls.template_messages(body, plan))
        requested = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        max_new = self._max_new_tokens(len(prompt_ids), requested)
        grammar = plan.grammar
        if grammar is None and body.response_format is not None and body.response_format.type != "text":
            grammar = self._response_format(body)
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
        jobs = [Job(prompt_ids, self._sampling(body, max_new, i), adapter, logprobs=logprobs) for i in range(body.n)]
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        requests = self._submit(jobs, grammar, loop, queue)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body.model or self.engine.name}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(self._chat_stream(requests, queue, http, meta, plan, len(prompt_ids), include_usage, body.logprobs),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        choices = [Choice(prompt_tokens=len(prompt_ids)) for _ in jobs]
        async for index, event in self._events(requests, queue, http, watch_disconnect=True):
            self._collect(choices[index], event)
        out = []
        for index, choice in enumerate(choices):
            text = "".join(choice.text)
            message = tool_calls.parse_whole(plan, text) if plan.parses_calls else {"role": "assistant", "content": text}
            finish = "tool_calls" if message.get("tool_calls") and choice.finish_reason == "stop" else choice.finish_reason
            out.append({"index": index, "message": message, "logprobs": self._chat_logprobs(choice.logprobs) if body.logprobs else None,
                        "finish_reason": finish})
        return JSONResponse({**meta, "object": "chat.completion", "choices": out, "usage": self._usage(choices)})

    def _response_format(self, body: ChatCompletionRequest):
        fmt = body.response_format
        if fmt.type == "json_object":
            return ("json_object",)
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise APIError(400, "response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}", param="response_format")
        return ("json_schema", fmt.json_schema.schema_)

    @staticmethod
    def _collect(choice: Choice, event: StreamEvent) -> None:
        choice.text.append(event.text)
        choice.token_ids += event.token_ids
        choice.logprobs += event.logprobs
        if event.finish_reason:
            choice.finish_reason = event.finish_reason

    def _chat_logprobs(self, logprobs) -> dict:
        def entry(token_id: int, value: float) -> dict:
            text = self._token_text(token_id)
            return {"token": text, "logprob": value, "bytes": list(text.encode("utf-8"))}

        return {"content": [{**entry(lp.token_id, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top]} for lp in logprobs]}

    async def _chat_stream(self, requests, queue, http, meta, plan, prompt_len: int, include_usage: bool, want_logprobs: bool):
        base = {**meta, "object": "chat.completion.chunk"}
        choices = [Choice(prompt_tokens=prompt_len) for _ in requests]
        parsers = [tool_calls.new_parser(plan) if plan.parses_calls else None for _ in requests]
        called = [False] * len(requests)

        def chunk(index: int, delta: dict, finish=None, logprobs=None) -> str:
            body = {**base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}
            if include_usage:
                body["usage"] = None
            return sse(body)

        try:
            for index in range(len(requests)):
                yield chunk(index, {"role": "assistant", "content": ""})
            async for index, event in self._events(requests, queue, http, watch_disconnect=False):
                choice = choices[index]
                self._collect(choice, event)
                logprobs = self._chat_logprobs(event.logprobs) if want_logprobs and event.logprobs else None
                parser = parsers[index]
                if parser is None:
                    if event.text or logprobs:
                        yield chunk(index, {"content": event.text}, logprobs=logprobs)
                else:
                    pieces = tool_calls.deltas(parser.feed(event.text) + (parser.finish() if event.finish_reason else []))
                    called[index] = called[index] or any("tool_calls" in d for d in pieces)
                    for number, delta in enumerate(pieces):
                        yield chunk(index, delta, logprobs=logprobs if number == 0 else None)
                    if not pieces and logprobs:
                        yield chunk(index, {}, logprobs=logprobs)
                if event.finish_reason:
                    finish = "tool_calls" if called[index] and event.finish_reason == "stop" else event.finish_reason
                    yield chunk(index, {}, finish)
            if include_usage:
                yield sse({**base, "choices": [], "usage": self._usage(choices)})
        except APIError as exc:
            from .errors import error_body

            yield sse(error_body(exc.status, exc.message, exc.param, exc.code))
        yield DONE

    # -- /v1/completions ------------------------------------------------------
    async def completions(self, body: CompletionRequest, http: Request):
        adapter = self.adapter_for(body.model)
        prompts = self._prompts(body.prompt)
        if body.echo and body.stream:
            raise APIError(400, "echo is not supported together with stream", param="echo")
        jobs, prompt_ids_list = [], []
        for prompt in prompts:
            ids = self._encode(prompt)
            max_new = self._max_new_tokens(len(ids), body.max_tokens)
            prompt_ids_list.append(ids)
            jobs += [Job(ids, self._sampling(body, max_new, i), adapter, logprobs=body.logprobs) for i in range(body.n)]
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        requests = self._submit(jobs, None, loop, queue)
        meta = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": body.model or self.engine.name}
        prompt_tokens = sum(len(ids) for ids in prompt_ids_list)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(self._completion_stream(requests, queue, http, meta, prompt_tokens, include_usage, body.logprobs is not None),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        choices = [Choice() for _ in jobs]
        async for index, event in self._events(requests, queue, http, watch_disconnect=True):
            self._collect(choices[index], event)
        out = []
        for index, choice in enumerate(choices):
            text = "".join(choice.text)
            if body.echo:
                text = self.engine.tokenizer.decode(prompt_ids_list[index // body.n], skip_special_tokens=True) + text
            out.append({"index": index, "text": text, "logprobs": self._completion_logprobs(choice.logprobs) if body.logprobs is not None else None,
                        "finish_reason": choice.finish_reason})
        completion = sum(len(c.token_ids) for c in choices)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}
        return JSONResponse({**meta, "object": "text_completion", "choices": out, "usage": usage})

    @staticmethod
    def _prompts(prompt) -> list:
        """OpenAI allows a string, a list of strings, token ids, or a list of token-id lists."""
        if isinstance(prompt, str):
            prompts = [prompt]
        elif prompt and all(isinstance(p, int) for p in prompt):
            prompts = [prompt]
        else:
            prompts = list(prompt)
        if not prompts or any(len(p) == 0 for p in prompts):
            raise APIError(400, "prompt must not be empty", param="prompt")
        return prompts

    def _completion_logprobs(self, logprobs, offset: int = 0) -> dict:
        tokens, values, tops, offsets = [], [], [], []
        for lp in logprobs:
            text = self._token_text(lp.token_id)
            tokens.append(text)
            values.append(lp.logprob)
            tops.append({self._token_text(t): v for t, v in lp.top})
            offsets.append(offset)
            offset += len(text)
        return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}

    async def _completion_stream(self, requests, queue, http, meta, prompt_tokens: int, include_usage: bool, want_logprobs: bool):
        base = {**meta, "object": "text_completion"}
        choices = [Choice() for _ in requests]
        offsets = [0] * len(requests)
        try:
            async for index, event in self._events(requests, queue, http, watch_disconnect=False):
                self._collect(choices[index], event)
                logprobs = None
                if want_logprobs and event.logprobs:
                    logprobs = self._completion_logprobs(event.logprobs, offsets[index])
                offsets[index] += len(event.text)
                if event.text or logprobs or event.finish_reason:
                    body = {**base, "choices": [{"index": index, "text": event.text, "logprobs": logprobs, "finish_reason": event.finish_reason}]}
                    if include_usage:
                        body["usage"] = None
                    yield sse(body)
            if include_usage:
                completion = sum(len(c.token_ids) for c in choices)
                yield sse({**base, "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}})
        except APIError as exc:
            from .errors import error_body

            yield sse(error_body(exc.status, exc.message, exc.param, exc.code))
        yield DONE
