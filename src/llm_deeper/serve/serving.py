"""What chat and text completions share: from a validated body to engine requests and events.

`Serving` resolves the model (base or LoRA adapter), renders and tokenizes
prompts and compiles grammars off the event loop (a megabyte of text takes a
second to tokenize; on the loop it would freeze /health and every stream),
checks the context and the server's capacity, submits one engine request per
choice and yields their events until each choice finishes, the client goes
away, or the server's shutdown deadline passes. The preparation threads run
no torch op, so they hold no OpenMP thread team of their own (see
inference/openmp.py for why that matters to decode speed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, TypeVar

from fastapi import Request

from ..errors import UserError
from ..inference.engine import ContextLengthError, Engine, QueueFullError, StreamEvent
from ..inference.sampling import SamplingConfig
from .errors import APIError
from .schemas import SamplingFields
from .shutdown import ShutdownGate

log = logging.getLogger("llm_deeper.serve")
T = TypeVar("T")
POLL_S = 0.25  # how often a waiting request looks at its client and the shutdown deadline


@dataclass
class Job:
    """One choice to generate."""

    prompt_ids: list[int]
    config: SamplingConfig
    adapter: str | None
    logprobs: int | None = None  # None = off, k = the k best alternatives too


@dataclass
class Choice:
    """What one choice has produced so far."""

    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish_reason: str | None = None
    cached_tokens: int = 0  # prompt tokens the prefix cache supplied (known at the last event)

    def add(self, event: StreamEvent) -> None:
        self.text.append(event.text)
        self.token_ids += event.token_ids
        self.logprobs += event.logprobs
        if event.finish_reason:
            self.finish_reason = event.finish_reason
        if event.usage is not None:
            self.cached_tokens = event.usage.cached_tokens


def completion_tokens(choices: list[Choice]) -> int:
    return sum(len(choice.token_ids) for choice in choices)


def cached_tokens(choices: list[Choice], per_prompt: int) -> int:
    """Cached prompt tokens, each prompt counted once as in `prompt_tokens`: its n choices share it, and the
    first one usually computed what the others reuse, so a prompt counts its least-cached choice."""
    return sum(min(choice.cached_tokens for choice in choices[start:start + per_prompt]) for start in range(0, len(choices), per_prompt))


class Serving:
    """The generation side of one endpoint; subclasses add the endpoint's request and response shapes."""

    def __init__(self, engine: Engine, default_max_tokens: int, gate: ShutdownGate, workers: ThreadPoolExecutor):
        self.engine = engine
        self.default_max_tokens = default_max_tokens
        self.gate = gate
        self.workers = workers  # tokenizing, template rendering, grammar compiling

    async def off_loop(self, function: Callable[..., T], *args) -> T:
        """Run CPU-heavy request preparation in the worker threads, so the event loop keeps serving."""
        return await asyncio.get_running_loop().run_in_executor(self.workers, functools.partial(function, *args))

    # -- the model ------------------------------------------------------------
    def adapter_for(self, model: str | None) -> str | None:
        """None for the base model, the adapter name for an adapter; 404 otherwise."""
        if model is None or model == self.engine.name:
            return None
        if model in self.engine.adapters:
            return model
        names = ", ".join([self.engine.name, *self.engine.adapters])
        raise APIError(404, f"The model `{model}` does not exist. Available: {names}", param="model", code="model_not_found")

    def model_name(self, body: SamplingFields) -> str:
        return body.model or self.engine.name

    def token_text(self, token_id: int) -> str:
        return self.engine.tokenizer.decode([token_id])

    # -- prompts and limits ---------------------------------------------------
    def encode(self, prompt, param: str) -> list[int]:
        """Text, token ids or chat messages → token ids (call through `off_loop`)."""
        try:
            return self.engine.encode(prompt)
        except UserError as exc:
            raise APIError(400, str(exc), param=param) from None
        except Exception as exc:  # a chat template can reject a conversation (jinja raises)
            raise APIError(400, f"the chat template rejected these messages: {exc}", param=param) from None

    def max_new_tokens(self, prompt_len: int, requested: int | None, param: str) -> int:
        context = self.engine.context_length
        if prompt_len >= context:
            raise APIError(400, f"This model's maximum context length is {context} tokens, but the prompt has {prompt_len} tokens. Shorten the prompt.",
                           param=param, code="context_length_exceeded")
        room = context - prompt_len
        if requested is not None and requested > room:
            raise APIError(400, f"This model's maximum context length is {context} tokens, but you requested {prompt_len + requested} tokens "
                                f"({prompt_len} in the prompt, {requested} for the completion). Reduce the prompt or max_tokens.",
                           param="max_tokens", code="context_length_exceeded")
        return requested if requested is not None else min(self.default_max_tokens, room)

    def check_reply_limit(self, requested: int | None, param: str) -> None:
        """A reply length no prompt leaves room for is a 400 even where another field overrides it (/openapi.json's maximum)."""
        context = self.engine.context_length
        if requested is not None and requested >= context:
            raise APIError(400, f"{param} must be below the model's context of {context} tokens (the prompt needs at least one)",
                           param=param, code="context_length_exceeded")

    def check_capacity(self, generations: int, param: str = "n") -> None:
        """A request needing more generations than the server can ever hold is a 400, not a 429 'retry later'."""
        capacity = self.engine.max_batch + self.engine.max_queue
        if generations > capacity:
            raise APIError(400, f"this request needs {generations} generations at once, but the server holds at most {capacity} "
                                f"({self.engine.max_batch} running + {self.engine.max_queue} waiting); lower n (or send fewer prompts), "
                                f"or start the server with a larger --max-concurrency / --max-queue",
                           param=param, code="exceeds_capacity")

    @staticmethod
    def sampling(body: SamplingFields, max_new: int, choice: int, constraint=None) -> SamplingConfig:
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
            constraint=constraint,
        )
        try:
            return config.validate()
        except UserError as exc:
            raise APIError(400, str(exc)) from None

    # -- running --------------------------------------------------------------
    async def start(self, jobs: list[Job], constraint_param: str = "response_format") -> "Generations":
        """Submit every choice; on any failure cancel those already queued.

        Submitting runs in a worker thread: it compiles the jobs' constraint (a
        large schema takes a while; cached after the first choice).
        """
        if self.gate.draining:
            raise APIError(503, "the server is shutting down; send the request to another instance", code="server_shutdown")
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        requests: list = []

        def submit_all() -> None:
            constraint = jobs[0].config.constraint if jobs else None
            if constraint is not None:
                try:
                    self.engine.grammars.compile(constraint)
                except UserError as exc:
                    raise APIError(400, str(exc), param=constraint_param) from None
            for index, job in enumerate(jobs):
                sink = (lambda event, i=index: loop.call_soon_threadsafe(queue.put_nowait, (i, event)))
                requests.append(self.engine.submit(job.prompt_ids, job.config, adapter=job.adapter, logprobs=job.logprobs, sink=sink))

        try:
            await self.off_loop(submit_all)
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
        return Generations(requests, queue, self.gate)


class Generations:
    """The engine requests of one HTTP request and the queue their events arrive on."""

    def __init__(self, requests: list, queue: asyncio.Queue, gate: ShutdownGate):
        self.requests, self.queue, self.gate = requests, queue, gate

    def __len__(self) -> int:
        return len(self.requests)

    async def events(self, http: Request | None = None) -> AsyncIterator[tuple[int, StreamEvent]]:
        """(choice index, event) until every choice has finished; cancels them all on exit.

        With `http`, a client that disconnects ends the loop (a streamed response
        is cancelled by the server framework instead). When the shutdown deadline
        passes, the choices are cancelled and a 503 is raised.
        """
        remaining = len(self.requests)
        loop = asyncio.get_running_loop()
        next_look = loop.time() + POLL_S
        try:
            while remaining:
                if self.gate.expired:
                    raise APIError(503, "the server shut down before this request finished; retry on another instance", code="server_shutdown")
                # On a timer, not only when no token came for POLL_S: while tokens flow that never happens,
                # and a client that left would keep its choices decoding to max_tokens.
                if http is not None and loop.time() >= next_look:
                    next_look = loop.time() + POLL_S
                    if await http.is_disconnected():
                        return
                try:
                    index, event = await asyncio.wait_for(self.queue.get(), timeout=POLL_S)
                except asyncio.TimeoutError:
                    continue
                if event.finish_reason == "error":
                    log.error("generation failed: %s", event.error)
                    raise APIError(500, "generation failed (the detail is in the server's log)", code="generation_error")
                yield index, event
                if event.finish_reason is not None:
                    remaining -= 1
        finally:
            for request in self.requests:
                request.cancel()
