"""Run a model's tool calls safely: registered tools only, checked arguments, bounded time and output.

Whatever goes wrong — an unknown tool, arguments that do not match the
schema, a tool that raises or hangs, a huge result — becomes a short error
text that goes back to the model as the tool's result, so the model can
correct itself. Nothing raises into the agent loop.

Calls of one turn run concurrently, each in its own daemon thread with its
own deadline (a thread cannot be killed: a tool that never returns is left
behind, and its late answer is ignored).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .calls import ToolCall, compact_json
from .registry import ToolError, ToolRegistry

log = logging.getLogger("llm_deeper.tools")


@dataclass(frozen=True)
class ExecutorConfig:
    """Limits for running tools."""

    timeout_s: float = 10.0  # wall-clock budget of one call
    max_output_chars: int = 4000  # longer results are cut (they would flood a small context)


@dataclass
class ToolResult:
    """The outcome of one call, ready to go back to the model."""

    call: ToolCall  # the call that was run
    content: str  # the text the model reads (result or error message)
    ok: bool  # False for unknown tool, invalid arguments, error, timeout
    seconds: float  # time spent
    error_kind: str | None = None  # unknown_tool | invalid_arguments | tool_error | timeout | crash

    def to_message(self) -> dict:
        """The OpenAI `tool` message answering the call."""
        return {"role": "tool", "tool_call_id": self.call.id, "name": self.call.name, "content": self.content}


def _validation_error(schema: dict, arguments: dict) -> str | None:
    """A one-paragraph description of what is wrong with the arguments, or None."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.path))
    if not errors:
        return None
    parts = []
    for error in errors[:3]:
        where = "/".join(str(p) for p in error.path)
        parts.append((f"{where}: " if where else "") + error.message)
    return "; ".join(parts)


class ToolExecutor:
    """Runs calls against one registry under one set of limits."""

    def __init__(self, registry: ToolRegistry, config: ExecutorConfig = ExecutorConfig(),
                 on_result: Callable[[ToolResult], None] | None = None) -> None:
        self.registry = registry
        self.config = config
        self.on_result = on_result  # called after each call (logging, UIs)

    def check(self, call: ToolCall) -> ToolResult | None:
        """An error result if the call must not run (unknown tool, invalid arguments)."""
        if call.name not in self.registry:
            return ToolResult(call, f"error: there is no tool named {call.name!r}; available tools: {', '.join(self.registry.names())}",
                              False, 0.0, "unknown_tool")
        schema = self.registry.get(call.name).parameters
        problem = _validation_error(schema, call.arguments)
        if problem:
            message = (f"error: invalid arguments for {call.name}: {problem}. "
                       f"Call it again with arguments matching this schema: {compact_json(schema)}")
            return ToolResult(call, message, False, 0.0, "invalid_arguments")
        return None

    def run(self, calls: list[ToolCall]) -> list[ToolResult]:
        """Run the calls concurrently; results come back in call order."""
        results: list[ToolResult | None] = [None] * len(calls)
        threads: list[tuple[int, threading.Thread, dict, float]] = []
        for position, call in enumerate(calls):
            refused = self.check(call)
            if refused is not None:
                results[position] = refused
                continue
            box: dict = {}
            thread = threading.Thread(target=self._invoke, args=(call, box), daemon=True, name=f"tool-{call.name}")
            start = time.perf_counter()
            thread.start()
            threads.append((position, thread, box, start))
        for position, thread, box, start in threads:
            thread.join(max(0.0, self.config.timeout_s - (time.perf_counter() - start)))
            call = calls[position]
            if thread.is_alive():
                results[position] = ToolResult(call, f"error: {call.name} did not answer within {self.config.timeout_s:g} s",
                                               False, time.perf_counter() - start, "timeout")
            else:
                results[position] = self._result(call, box, box.get("seconds", 0.0))
        for result in results:
            # INFO even for refused calls: they are normal traffic the model recovers from, not faults.
            log.info("tool %s(%s) -> %s in %.3f s", result.call.name, result.call.arguments_json, result.content[:200], result.seconds)
            if self.on_result:
                self.on_result(result)
        return results  # type: ignore[return-value]

    def run_one(self, call: ToolCall) -> ToolResult:
        return self.run([call])[0]

    def _invoke(self, call: ToolCall, box: dict) -> None:
        start = time.perf_counter()
        try:
            box["value"] = self.registry.get(call.name)(**call.arguments)
        except ToolError as exc:
            box["tool_error"] = str(exc)
        except Exception as exc:  # a bug in a tool must not stop the agent; the model sees what happened
            box["crash"] = f"{type(exc).__name__}: {exc}"
        box["seconds"] = time.perf_counter() - start

    def _result(self, call: ToolCall, box: dict, seconds: float) -> ToolResult:
        if "tool_error" in box:
            return ToolResult(call, f"error: {box['tool_error']}", False, seconds, "tool_error")
        if "crash" in box:
            return ToolResult(call, f"error: {call.name} failed ({box['crash']})", False, seconds, "crash")
        value = box.get("value")
        text = value if isinstance(value, str) else compact_json(value) if _jsonable(value) else str(value)
        limit = self.config.max_output_chars
        if len(text) > limit:
            text = text[:limit] + f"… [truncated {len(text) - limit} characters]"
        return ToolResult(call, text, True, seconds)


def _jsonable(value) -> bool:
    try:
        compact_json(value)
    except (TypeError, ValueError):
        return False
    return True
