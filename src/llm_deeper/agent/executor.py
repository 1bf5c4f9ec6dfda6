"""Run a model's tool calls safely: registered tools only, checked arguments, bounded time and output.

Whatever goes wrong — an unknown tool, arguments that do not match the
schema, a tool that raises, hangs or eats memory, a huge result — becomes a
short error text that goes back to the model as the tool's result, so the
model can correct itself. Nothing raises into the agent loop.

Calls of one turn run concurrently, each in a worker process of a small warm
pool (`workers.py`) with its own wall-clock deadline: a call that outlives it
is killed, so the timeout holds even for a tool stuck in C code.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

from ..tools.calls import ToolCall, compact_json
from ..tools.registry import ToolRegistry
from .workers import Outcome, WorkerLimits, WorkerPool, cut

log = logging.getLogger("llm_deeper.tools")


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits for running tools."""

    timeout_s: float = 10.0  # wall-clock budget of one call; past it the call's worker is killed
    max_output_chars: int = 4000  # longer results and error messages are cut (they would flood a small context)
    memory_mb: int = 512  # memory a call may add to its worker (RLIMIT_AS); beyond it the tool gets a MemoryError
    cpu_s: float | None = None  # CPU seconds per call (RLIMIT_CPU); None: the wall-clock budget, rounded up
    workers: int = 2  # warm worker processes kept ready (a turn with more calls forks more)
    max_argument_chars: int = 80  # an argument echoed in an error message is cut to this


@dataclass
class ToolResult:
    """The outcome of one call, ready to go back to the model."""

    call: ToolCall  # the call that was run
    content: str  # the text the model reads (result or error message)
    ok: bool  # False for unknown tool, invalid arguments, error, timeout
    seconds: float  # time spent
    error_kind: str | None = None  # unknown_tool | invalid_arguments | tool_error | timeout | resource | crash

    def to_message(self) -> dict:
        """The OpenAI `tool` message answering the call."""
        return {"role": "tool", "tool_call_id": self.call.id, "name": self.call.name, "content": self.content}


def _validation_error(schema: dict, arguments: dict, max_argument_chars: int = 80) -> str | None:
    """A one-paragraph description of what is wrong with the arguments, or None.

    jsonschema's messages quote the offending value; a 100 KB argument would
    come back whole, so the quoted value is cut to `max_argument_chars`.
    """
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return None
    parts = []
    for error in errors[:3]:
        where = "/".join(str(p) for p in error.path)
        message = error.message
        quoted = repr(error.instance)
        if len(quoted) > max_argument_chars and quoted in message:
            message = message.replace(quoted, cut(quoted, max_argument_chars))
        parts.append((f"{where}: " if where else "") + cut(message, 4 * max_argument_chars))
    return "; ".join(parts)


class ToolExecutor:
    """Runs calls against one registry under one set of limits (close() stops its workers)."""

    def __init__(self, registry: ToolRegistry, config: ExecutorConfig = ExecutorConfig(),
                 on_result: Callable[[ToolResult], None] | None = None) -> None:
        self.registry = registry
        self.config = config
        self.on_result = on_result  # called after each call (logging, UIs)
        cpu_s = config.cpu_s if config.cpu_s is not None else config.timeout_s
        limits = WorkerLimits(cpu_s=max(1, math.ceil(cpu_s)), memory_mb=config.memory_mb, max_output_chars=config.max_output_chars)
        self.pool = WorkerPool(registry, limits, size=config.workers)
        self.pool.fill()  # warm now, so the first call pays no process start either

    def check(self, call: ToolCall) -> ToolResult | None:
        """An error result if the call must not run (unknown tool, invalid arguments)."""
        if call.name not in self.registry:
            name = cut(repr(call.name), self.config.max_argument_chars)
            return self._refusal(call, f"error: there is no tool named {name}; available tools: {', '.join(self.registry.names())}", "unknown_tool")
        schema = self.registry.get(call.name).parameters
        problem = _validation_error(schema, call.arguments, self.config.max_argument_chars)
        if problem:
            message = (f"error: invalid arguments for {call.name}: {problem}. "
                       f"Call it again with arguments matching this schema: {compact_json(schema)}")
            return self._refusal(call, message, "invalid_arguments")
        return None

    def _refusal(self, call: ToolCall, message: str, kind: str) -> ToolResult:
        # Not cut as a whole: the schema in it is what the model needs to correct itself, and the
        # parts that echo the model's input (a name, a quoted argument) are already cut.
        return ToolResult(call, message, False, 0.0, kind)

    def run(self, calls: list[ToolCall]) -> list[ToolResult]:
        """Run the calls concurrently, each in a worker process; results come back in call order."""
        results: list[ToolResult | None] = [None] * len(calls)
        started = []
        for position, call in enumerate(calls):
            refused = self.check(call)
            if refused is not None:
                results[position] = refused
                continue
            worker = self.pool.acquire()
            worker.send(call.name, call.arguments)
            started.append((position, worker, time.perf_counter()))
        killed = False
        for position, worker, start in started:
            outcome = worker.receive(self.config.timeout_s - (time.perf_counter() - start))
            if outcome is None:
                worker.kill()  # a thread could not be stopped; a process can
                killed = True
                outcome = Outcome("timeout", f"did not answer within {self.config.timeout_s:g} s (stopped)", time.perf_counter() - start)
            elif outcome.kind in ("crash", "resource") and not worker.process.is_alive():
                killed = True
            else:
                self.pool.release(worker)
            results[position] = self._result(calls[position], outcome)
        if killed:
            self.pool.fill()  # the next call finds a warm worker again
        for result in results:
            # INFO even for refused calls: they are normal traffic the model recovers from, not faults.
            log.info("tool %s(%s) -> %s in %.3f s", result.call.name, cut(result.call.arguments_json, 200), result.content[:200], result.seconds)
            if self.on_result:
                self.on_result(result)
        return results  # type: ignore[return-value]

    def run_one(self, call: ToolCall) -> ToolResult:
        return self.run([call])[0]

    def close(self) -> None:
        """Stop the warm workers (they are daemons: they also end with this process)."""
        self.pool.close()

    def __enter__(self) -> "ToolExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _result(self, call: ToolCall, outcome: Outcome) -> ToolResult:
        if outcome.kind == "ok":
            return ToolResult(call, outcome.text, True, outcome.seconds)  # already cut in the worker
        messages = {
            "tool_error": f"error: {outcome.text}",
            "timeout": f"error: {call.name} {outcome.text}",
            "resource": f"error: {call.name} was stopped: it {outcome.text}",
            "crash": f"error: {call.name} failed ({outcome.text})",
        }
        return ToolResult(call, cut(messages[outcome.kind], self.config.max_output_chars), False, outcome.seconds, outcome.kind)
