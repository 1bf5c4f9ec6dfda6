"""The generation engine: continuous batching over a slot KV cache.

One background thread owns the model. Between two decode steps it admits
waiting requests and prefills them, several prompts in one forward (which also
yields their first tokens), and drops the finished or cancelled ones; every decode step then advances all
running requests with one batched forward pass. Each request keeps its own
sampling settings, seed, stop strings, LoRA adapter and grammar.

This is the only way the library generates text: the chat command, the
evals, the agent, constrained tool calls, the fine-tune probe, the lessons,
the speedrun and the server all come here. Callers use

    with Engine.load("smollm2-135m-instruct") as engine:
        engine.generate("What is 2+2?", max_new_tokens=20).text      # blocking, whole result
        for event in engine.stream(messages, max_new_tokens=20): ... # events as tokens come
        engine.generate_many(prompts, config, adapter="sql")         # many at once, batched

or `Engine.submit` with their own sink (the server pushes events into an
asyncio queue this way). A prompt is text, token ids, or chat messages
(+ `tools`), encoded by `llm_deeper.chat_format`.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UserError
from .openmp import ThreadBudget, release_idle_threads
from .sampler import apply_penalties, pick_token, top_logprobs
from .sampling import SamplingConfig
from .stops import TextTracker


class QueueFullError(UserError):
    """Too many requests are running or waiting; the client should retry later."""


class ContextLengthError(UserError):
    """The prompt (plus the requested tokens) does not fit in the context."""


@dataclass
class Usage:
    """Token counts of one request, as the OpenAI API reports them."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose KV came from the prefix cache (OpenAI's prompt_tokens_details.cached_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class TokenLogprob:
    """The chosen token's log-probability and the most likely alternatives."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]]  # (token id, log-probability), best first


@dataclass
class StreamEvent:
    """What one engine step produced for one request."""

    text: str  # newly safe text (may be empty while a stop string or UTF-8 character is pending)
    token_ids: list[int]  # the token(s) sampled in this step
    logprobs: list[TokenLogprob] = field(default_factory=list)  # filled when logprobs were requested
    finish_reason: str | None = None  # "stop", "length", "cancelled" or "error" on the last event
    usage: Usage | None = None  # on the last event
    error: str = ""  # set with finish_reason "error"


@dataclass
class GenerationResult:
    """A finished generation."""

    text: str
    token_ids: list[int]  # every sampled token, the stop token included
    finish_reason: str
    usage: Usage
    logprobs: list[TokenLogprob] = field(default_factory=list)
    seconds: float = 0.0  # from submission to the last token (queueing and prompt processing included)
    stop_string: str | None = None  # the stop string that ended it (cut from `text`), if one did


class Request:
    """One generation in flight; `cancel()` frees its slot before the next step."""

    _ids = itertools.count()

    def __init__(self, prompt_ids: list[int], config: SamplingConfig, adapter: str | None, constraint, logprobs: int | None,
                 sink: Callable[[StreamEvent], None] | None, tracker: TextTracker):
        import torch

        self.id = next(self._ids)
        self.prompt_ids = prompt_ids
        self.config = config
        self.adapter = adapter
        self.constraint = constraint
        self.logprobs = logprobs  # None = off, k = also the k best alternatives
        self._queue: queue.Queue | None = None
        if sink is None:
            self._queue = queue.Queue()
            sink = self._queue.put
        self.sink = sink
        self.tracker = tracker
        self.output: list[int] = []
        self.counts: dict[int, int] = {}
        self.generator = torch.Generator()
        self.generator.manual_seed(config.seed if config.seed is not None else torch.seed())
        self.cancelled = threading.Event()
        self.finished = False
        self.submitted = time.perf_counter()
        self.first_token_at: float | None = None
        self.slot = -1  # its KV cache slot once admitted
        self.prefilled = 0  # prompt tokens already in the cache (a long prompt goes in chunks)
        self.cached_tokens = 0  # of those, tokens copied from the prefix cache instead of computed
        self.finish_reason: str | None = None
        self.finished_at: float | None = None

    def cancel(self) -> None:
        """Stop generating (the client went away); the engine drops it within one step."""
        self.cancelled.set()

    @property
    def position(self) -> int:
        """Where the last sampled token goes in the cache (prompt + reply so far − 1)."""
        return len(self.prompt_ids) + len(self.output) - 1

    def events(self) -> Iterator[StreamEvent]:
        """Events until the last one (only for requests submitted without a sink)."""
        assert self._queue is not None, "this request delivers its events to a sink"
        while True:
            event = self._queue.get()
            yield event
            if event.finish_reason is not None:
                return

    def result(self) -> GenerationResult:
        """Wait for the end and gather the whole result."""
        text, ids, lps = [], [], []
        for event in self.events():
            text.append(event.text)
            ids += event.token_ids
            lps += event.logprobs
        if event.finish_reason == "error":
            raise RuntimeError(f"generation failed: {event.error}")
        assert event.usage is not None
        seconds = (self.finished_at or time.perf_counter()) - self.submitted
        return GenerationResult("".join(text), ids, event.finish_reason, event.usage, lps, seconds, self.tracker.matched)


class Engine:
    """A loaded model plus the scheduler thread that serves requests."""

    def __init__(self, loaded, adapters: dict[str, str | Path] | None = None, max_batch: int = 8, max_queue: int = 64,
                 max_len: int | None = None, name: str | None = None, quant: str | None = None, prefill_chunk: int = 256,
                 compile_decode: bool = False, prefix_cache: bool = True, prefix_cache_mib: float = 512):
        import torch

        from .lora import load_lora
        from .runners import make_runner

        if max_batch < 1:
            raise UserError(f"max batch (concurrency) must be at least 1, got {max_batch}")
        if max_queue < 0:
            raise UserError(f"max queue must be 0 or more, got {max_queue}")
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.name = name or loaded.ref.display_name
        config = self.model.config
        model_context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048
        self.context_length = min(model_context, max_len) if max_len else model_context
        self.vocab_size = config.vocab_size
        self.dtype = next(self.model.parameters()).dtype
        self.adapters = {n: load_lora(n, folder, self.dtype) for n, folder in (adapters or {}).items()}
        for adapter_name in self.adapters:
            if adapter_name == self.name:
                raise UserError(f"adapter name {adapter_name!r} is the base model's name; pick another")
        self.runner = make_runner(self.model, max_batch, self.context_length, self.adapters, quant=quant)
        self.max_batch, self.max_queue = max_batch, max_queue
        if prefill_chunk < 1:
            raise UserError(f"prefill chunk must be at least 1 token, got {prefill_chunk}")
        # Prompt tokens prefilled between two decode steps: a 1,000-token prompt then delays
        # running streams by a few chunks of ~0.3 s each (fp32, 2 cores) instead of one 1.5 s stall.
        self.prefill_chunk = prefill_chunk if self.runner.batched else None
        # torch.compile of the decode step, paid here (before any request) and reported.
        self.compile_seconds = self.runner.compile() if compile_decode and self.runner.batched else None
        # KV of prompt prefixes reused across requests (prefix_cache.py). 512 MiB holds ~11,600 tokens of the
        # default model in fp32 (45 KiB each): a dozen 1,000-token tool prompts with room for their turns.
        self.prefix = None
        if prefix_cache and self.runner.batched:
            from .prefix_cache import PrefixCache

            self.prefix = PrefixCache.for_cache(self.runner.cache, int(prefix_cache_mib * 2**20))
        self.stop_ids = self._eos_ids()
        self._waiting: collections.deque[Request] = collections.deque()
        self._running: list[Request] = []  # decoding; request i lives in cache slot i
        self._prefilling: list[Request] = []  # admitted, prompt partly cached; slots right after the running ones
        self._cv = threading.Condition()
        self._closed = False
        self._in_flight = 0  # submitted and not finished (waiting, being admitted or running)
        self.steps = 0  # decode steps run (for metrics)
        self.last_batch_size = 0
        self.observers: list[Callable[[Request, StreamEvent], None]] = []  # called on each request's last event
        self.threads = torch.get_num_threads()  # a thread count is per thread: the engine's thread adopts the creator's
        self._thread = threading.Thread(target=self._loop, name="llm-deeper-engine", daemon=True)
        self._thread.start()
        # Loading and packing the weights ran parallel ops on this thread: its idle OpenMP helpers would
        # otherwise stay counted until this thread submits, and a server submits from worker threads, so it
        # never would. With them counted, the engine's team sleeps at every op's barrier instead of
        # spinning (openmp.py): a thread doing 5,000 small ops made 4 futex calls an op against 2 once freed.
        release_idle_threads()
        # Stop decoding before the interpreter tears torch down (a weak reference,
        # so the exit hook does not keep a closed engine and its weights alive).
        ref = weakref.ref(self)
        atexit.register(lambda: ref() is not None and ref().close())

    @classmethod
    def load(cls, model: str = "smollm2-135m-instruct", dtype: str = "float32", loras: dict[str, str | Path] | None = None, **kwargs) -> "Engine":
        """Load a registry model / HF folder / GGUF (optionally with LoRA adapters) and start the engine.

        `dtype`: "float32" (exact), "bfloat16", or quantized weights with bf16 activations:
        "int4" (Q4_1-style groups; fastest decode) or "int8" (see quant.py).
        """
        from ..models.loaders import load_model
        from .quant import QUANTIZATIONS

        choices = ("float32", "bfloat16", "float16", *QUANTIZATIONS)
        if dtype not in choices:
            raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(choices)}")
        if dtype in QUANTIZATIONS:
            return cls(load_model(model, dtype="bfloat16"), adapters=loras, quant=dtype, **kwargs)
        return cls(load_model(model, dtype=dtype), adapters=loras, **kwargs)

    @classmethod
    def from_model(cls, model, tokenizer, name: str = "model", **kwargs) -> "Engine":
        """An engine over a transformers model already in memory (e.g. one just built or trained)."""
        from ..models.loaders import LoadedModel
        from ..models.registry import ModelRef

        loaded = LoadedModel(model=model.eval(), tokenizer=tokenizer, ref=ModelRef(kind="hf", value=name, path=Path(name)), folder=None, seconds=0.0)
        return cls(loaded, name=name, **kwargs)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for value in (getattr(self.model.generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(value)
        return ids

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add_adapter(self, name: str, folder: str | Path) -> None:
        """Load one more PEFT LoRA adapter; requests then pick it with `adapter=name`."""
        from .lora import load_lora
        from .runners import raise_unsupported_lora

        if name == self.name or name in self.adapters:
            raise UserError(f"adapter name {name!r} is already taken (the base model or a loaded adapter); pick another")
        adapter = load_lora(name, folder, self.dtype)
        if not hasattr(self.runner, "adapters"):
            raise_unsupported_lora(self.model)
        self.adapters[name] = adapter
        self.runner.adapters[name] = adapter  # the runner may hold its own dict (it was built with none)

    # -- prompts --------------------------------------------------------------
    def encode(self, prompt, tools=None) -> list[int]:
        """Chat messages (+ tools) → chat_format's prompt ids; text → tokens; token ids pass through."""
        if isinstance(prompt, str):
            return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if prompt and all(isinstance(t, int) for t in prompt):
            return list(prompt)
        if prompt and all(isinstance(m, dict) for m in prompt):
            from ..chat_format import prompt_ids

            return prompt_ids(self.tokenizer, prompt, tools)
        raise UserError("the prompt must be a non-empty string, list of token ids or list of chat messages")

    @property
    def grammars(self):
        """The grammar cache for this engine's tokenizer (`inference.constrained.GrammarCache`)."""
        from .constrained import grammar_cache

        return grammar_cache(self.tokenizer, self.vocab_size)

    # -- submitting -----------------------------------------------------------
    def submit(self, prompt, config: SamplingConfig, adapter: str | None = None, logprobs: int | None = None,
               sink: Callable[[StreamEvent], None] | None = None, tools=None) -> Request:
        """Queue a request; raises ContextLengthError, QueueFullError or UserError for bad input.

        `tools` (OpenAI tool dicts or a ToolRegistry) go into a chat prompt;
        `config.constraint` holds the reply to a grammar (compiled here, or taken
        from the cache: the server compiles it first, off its event loop).
        """
        config.validate()
        if adapter is not None and adapter not in self.adapters:
            raise UserError(f"unknown adapter {adapter!r}; loaded: {', '.join(self.adapters) or 'none'}")
        ids = self.encode(prompt, tools)
        if not ids:
            raise UserError("the prompt is empty")
        if len(ids) >= self.context_length:
            raise ContextLengthError(
                f"the prompt has {len(ids)} tokens but the model's context is {self.context_length} tokens; shorten the prompt"
            )
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise UserError(f"token id {bad[0]} is outside the vocabulary (0..{self.vocab_size - 1})")
        constraint = self.grammars.state(config.constraint, config.max_new_tokens) if config.constraint is not None else None
        request = Request(ids, config, adapter, constraint, logprobs, sink, TextTracker(self.tokenizer, config.stop))
        release_idle_threads()  # the caller's idle OpenMP helpers would slow the engine's (see openmp.py)
        with self._cv:
            if self._closed:
                raise UserError("the engine is shut down")
            running = self._in_flight - len(self._waiting)
            if self._in_flight >= self.max_batch + self.max_queue:
                raise QueueFullError(
                    f"too many requests: {running} running and {len(self._waiting)} waiting (limit {self.max_batch} + {self.max_queue}); retry later"
                )
            self._waiting.append(request)
            self._in_flight += 1
            self._cv.notify()
        return request

    def generate(self, prompt, config: SamplingConfig | None = None, **kwargs) -> GenerationResult:
        """The whole reply at once (blocks). Sampling settings come as a config or as keywords:
        `engine.generate("Hi", max_new_tokens=20, temperature=0.7, seed=1)`."""
        config, kwargs = _split_sampling(config, kwargs)
        return self.submit(prompt, config, **kwargs).result()

    def stream(self, prompt, config: SamplingConfig | None = None, **kwargs) -> Iterator[StreamEvent]:
        """Events as tokens are produced; leaving the loop early cancels the request."""
        config, kwargs = _split_sampling(config, kwargs)
        request = self.submit(prompt, config, **kwargs)
        try:
            yield from request.events()
        finally:
            request.cancel()

    def generate_many(self, prompts: list, config: SamplingConfig | None = None, **kwargs) -> list[GenerationResult]:
        """Many replies decoded together by continuous batching, in prompt order.

        Keeps at most `max_batch` + `max_queue` of them in flight (the rest wait
        here, not in the queue); `kwargs` as for `submit` apply to every prompt;
        `each` (one dict per prompt, e.g. {"tools": ..., "constraint": ...}: submit's
        keywords or sampling settings) adds a prompt's own; `on_result(index, result)`
        is called as each one is in.
        """
        config, kwargs = _split_sampling(config, kwargs)
        per_prompt = kwargs.pop("each", None)
        on_result = kwargs.pop("on_result", None) or (lambda index, result: None)
        if per_prompt is not None and len(per_prompt) != len(prompts):
            raise UserError(f"`each` has {len(per_prompt)} entries for {len(prompts)} prompts")
        window = max(1, self.max_batch + self.max_queue)
        pending: collections.deque[Request] = collections.deque()
        results: list[GenerationResult] = []
        try:
            for index, prompt in enumerate(prompts):
                if len(pending) >= window:
                    results.append(pending.popleft().result())
                    on_result(len(results) - 1, results[-1])
                own_config, own = _split_sampling(config, {**kwargs, **per_prompt[index]}) if per_prompt is not None else (config, kwargs)
                pending.append(self.submit(prompt, own_config, **own))
            while pending:
                results.append(pending.popleft().result())
                on_result(len(results) - 1, results[-1])
        finally:
            for request in pending:
                request.cancel()
        return results

    def stats(self) -> dict:
        """Running and waiting counts (for /metrics and /health)."""
        waiting = len(self._waiting)
        prefix = self.prefix.stats() if self.prefix is not None else {"enabled": False}
        budget = getattr(self, "thread_budget", None)
        return {"running": self._in_flight - waiting, "waiting": waiting, "steps": self.steps, "batch_size": self.last_batch_size,
                "threads": budget.current if budget is not None else self.threads,
                "threads_lowered": budget.lowered if budget is not None else 0, "prefix_cache": prefix}

    def close(self) -> None:
        """Stop the scheduler; waiting and running requests end as cancelled."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=10)

    # -- the scheduler thread -------------------------------------------------
    def _loop(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        self.thread_budget = ThreadBudget(self.threads)  # fewer threads while other processes hold the cores (openmp.py)
        # The whole scheduler in inference mode: logits, caches and masks never need autograd, and an
        # in-place update outside it of a tensor made inside it fails (seen in the eval benchmark).
        with torch.inference_mode():
            self._schedule()

    def _schedule(self) -> None:
        while True:
            with self._cv:
                if not self._closed and not self._waiting and not self._running and not self._prefilling:
                    release_idle_threads()  # idle: leave the cores' OpenMP threads to others
                while not self._closed and not self._waiting and not self._running and not self._prefilling:
                    # Idle, the budget keeps reading the machine, so the first step after a pause starts from now.
                    if not self._cv.wait(timeout=self.thread_budget.every_s):
                        self.thread_budget.update()
                if self._closed:
                    for request in list(self._waiting) + self._prefilling + self._running:
                        self._finish(request, "cancelled")
                    return
                while self._waiting and len(self._running) + len(self._prefilling) < self.max_batch:
                    request = self._waiting.popleft()
                    request.slot = len(self._running) + len(self._prefilling)
                    self._prefilling.append(request)
            try:
                self.thread_budget.update()
                self._prefill_some()
                self._drop_done()
                if self._running:
                    self._step()
                    self._drop_done()
            except Exception as exc:  # never let one bad step kill the server: fail the batch, keep going
                message = f"{type(exc).__name__}: {exc}"
                for request in self._prefilling + self._running:
                    if not request.finished:
                        self._finish(request, "error", error=message)
                self._drop_done()

    def _prefill_some(self) -> None:
        """Put up to `prefill_chunk` prompt tokens in the cache, oldest request first (chunked prefill).

        A request whose whole prompt is in joins the running batch with its first token.
        Decode steps run between chunks, so a long prompt never stalls running streams for long.
        With no stream running there is nobody to keep waiting: the prompts go in whole (bigger
        matmuls, no chunk mask: a 1,000-token prompt's first token comes sooner).
        Several admitted prompts go in one forward (`_next_wave`, `Runner.prefill_many`).
        A prompt first takes what the prefix cache holds of it, and leaves its full blocks there; the
        lookup happens when its prefill begins, not at admission, so the n choices of one prompt
        (admitted together) reuse the first one's prefill.
        """
        from .runners import PromptChunk

        budget = self.prefill_chunk if self.prefill_chunk and self._running else None  # None: every admitted prompt, whole
        while self._prefilling and (budget is None or budget > 0):
            wave = self._next_wave(budget)
            if not wave:
                return  # the first one was cancelled: _drop_done frees it
            logits = self.runner.prefill_many([PromptChunk(r.slot, r.prompt_ids[:stop], r.adapter, start) for r, start, stop in wave])
            for (request, start, stop), row in zip(wave, logits):
                if budget is not None:
                    budget -= stop - start
                request.prefilled = stop
                if stop == len(request.prompt_ids):  # only the wave's last one can stop short, so these leave from the front
                    self._prefilling.pop(0)
                    self._running.append(request)  # its slot stays: the first prefilling slot follows the running ones
                    self._advance(request, row)
            if self.prefix is not None:
                # After the first tokens went out: keeping a 1,000-token prompt's blocks copies 46 MB (fp32),
                # which the time to first token need not wait for.
                for request, _, stop in wave:
                    self.prefix.save(request.adapter, request.prompt_ids, stop, self.runner.cache, request.slot)

    def _next_wave(self, budget: int | None) -> list[tuple[Request, int, int]]:
        """Admitted prompts to prefill together, from the front: [(request, start, stop)].

        One forward reads every weight once for all its tokens, so the short prompts of several
        arriving requests cost about one decode step together instead of one each. A wave holds
        at most `budget` tokens while streams run (the last prompt may stop short: a chunk), and
        otherwise whole prompts up to `prefill_chunk` tokens (or the first prompt, if longer).
        A prompt that would compute blocks another prompt of the wave computes (same adapter,
        same tokens, not yet cached: the n choices of one prompt, or turns under one new system
        prompt) waits for the next wave, which finds them in the prefix cache.
        """
        limit = budget
        if limit is None:
            head = self._prefilling[0]
            limit = max(self.prefill_chunk or 0, len(head.prompt_ids) - head.prefilled)
        wave: list[tuple[Request, int, int]] = []
        for request in self._prefilling:
            if request.cancelled.is_set() or limit <= 0 or (wave and not self.runner.batched):
                break
            remaining = len(request.prompt_ids) - request.prefilled
            lookup = self.prefix is not None and request.prefilled == 0
            if lookup:
                cached = self.prefix.cached_length(request.adapter, request.prompt_ids)
                if self._shares_uncached_blocks(request, cached, wave):
                    break
                remaining -= cached
            if wave and budget is None and remaining > limit:
                break  # with nothing running, prompts go in whole
            if lookup:
                match = self.prefix.match(request.adapter, request.prompt_ids)
                self.prefix.load(match, self.runner.cache, request.slot)
                request.prefilled = request.cached_tokens = match.tokens
            stop = request.prefilled + min(remaining, limit)
            wave.append((request, request.prefilled, stop))
            limit -= stop - request.prefilled
        return wave

    def _shares_uncached_blocks(self, request: Request, cached: int, wave: list[tuple[Request, int, int]]) -> bool:
        """Whether a prompt of the wave will save a block of `request`'s prompt past the `cached` tokens the cache holds now."""
        block = self.prefix.block_tokens
        needed = cached + block  # one block past what a match gives it now
        if needed > (len(request.prompt_ids) - 1) // block * block:  # a match always leaves the last token to compute
            return False
        return any(other.adapter == request.adapter and stop >= needed and other.prompt_ids[:needed] == request.prompt_ids[:needed]
                   for other, _, stop in wave)

    def _step(self) -> None:
        running = [r for r in self._running]
        logits = self.runner.decode(
            [r.output[-1] for r in running], [r.position for r in running], [r.adapter for r in running],
        )
        self.steps += 1
        self.last_batch_size = len(running)
        for row, request in enumerate(running):
            if not request.finished:
                self._advance(request, logits[row])

    def _drop_done(self) -> None:
        """Remove finished or cancelled requests; keep running slots contiguous."""
        for slot in range(len(self._running) - 1, -1, -1):
            request = self._running[slot]
            if request.cancelled.is_set() and not request.finished:
                self._finish(request, "cancelled")
            if not request.finished:
                continue
            if self.prefix is not None and request.finish_reason != "error":
                # The reply's keys and values too: the next turn of a chat starts with this one.
                self.prefix.save(request.adapter, request.prompt_ids + request.output, request.position, self.runner.cache, slot)
            last = len(self._running) - 1
            if slot != last:
                mover = self._running[last]
                self.runner.move(last, slot, mover.position)
                self._running[slot] = mover
            self.runner.release(last)
            self._running.pop()
        # Admitted prompts keep the slots right after the running ones.
        kept: list[Request] = []
        for request in self._prefilling:
            if request.cancelled.is_set() and not request.finished:
                self._finish(request, "cancelled")
            if request.finished:
                self.runner.release(request.slot)
                continue
            target = len(self._running) + len(kept)
            if request.slot != target:
                self.runner.move(request.slot, target, request.prefilled)
                request.slot = target
            kept.append(request)
        self._prefilling = kept

    def _advance(self, request: Request, logits) -> None:
        """Sample one token for a request and deliver what it adds."""
        config = request.config
        raw = logits
        scores = apply_penalties(logits, config, request.prompt_ids, request.counts)
        if request.constraint is not None:
            scores = scores.clone() if scores is raw else scores
            request.constraint.mask(scores)
        token = pick_token(scores, config, request.generator)
        if request.constraint is not None:
            request.constraint.accept(token)
        lps = []
        if request.logprobs is not None:
            lp, alternatives = top_logprobs(raw, token, request.logprobs)
            lps.append(TokenLogprob(token, lp, alternatives))
        if request.first_token_at is None:
            request.first_token_at = time.perf_counter()
        request.output.append(token)
        request.counts[token] = request.counts.get(token, 0) + 1
        stop_token = (token in self.stop_ids and not config.ignore_eos) or token in config.stop_token_ids
        reason = None
        if stop_token:
            text, reason = request.tracker.finish(), "stop"
        else:
            text = request.tracker.add(token)
            if request.tracker.stopped or (request.constraint is not None and request.constraint.done):
                reason = "stop"
            elif len(request.output) >= config.max_new_tokens or len(request.prompt_ids) + len(request.output) >= self.context_length:
                reason = "length"
            if reason:
                text += request.tracker.finish()
        if reason is None and request.cancelled.is_set():
            reason = "cancelled"
        event = StreamEvent(text, [token], lps, reason)
        if reason:
            self._finish(request, reason, event)
        else:
            self._deliver(request, event)

    @staticmethod
    def _deliver(request: Request, event: StreamEvent) -> None:
        """Hand an event to the request's consumer; a consumer that fails is treated as gone."""
        try:
            request.sink(event)
        except Exception:  # e.g. the server's event loop has closed: stop this request, not the batch
            request.cancel()

    def _finish(self, request: Request, reason: str, event: StreamEvent | None = None, error: str = "") -> None:
        if request.finished:
            return
        request.finished = True
        request.finish_reason = reason
        request.finished_at = time.perf_counter()
        with self._cv:
            self._in_flight -= 1
        event = event or StreamEvent("", [], [], reason)
        event.finish_reason = reason
        event.error = error
        event.usage = Usage(len(request.prompt_ids), len(request.output), request.cached_tokens)
        self._deliver(request, event)
        for observer in self.observers:
            try:
                observer(request, event)
            except Exception:  # metrics must never break generation
                pass


def _split_sampling(config: SamplingConfig | None, kwargs: dict) -> tuple[SamplingConfig, dict]:
    """(a SamplingConfig, the other keywords): sampling settings may be passed as keywords."""
    from dataclasses import fields, replace

    names = {f.name for f in fields(SamplingConfig)}
    settings = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    if "stop" in settings and isinstance(settings["stop"], (list, str)):
        settings["stop"] = (settings["stop"],) if isinstance(settings["stop"], str) else tuple(settings["stop"])
    return replace(config or SamplingConfig(), **settings), kwargs
