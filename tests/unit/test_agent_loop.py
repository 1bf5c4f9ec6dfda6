"""Executor (validation, timeout, output limit, concurrency) and the agent loop with a scripted model."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from llm_deeper.tools import ToolCall, ToolError, ToolRegistry
from llm_deeper.agent.loop import Agent, AgentConfig, ScriptedBackend
from llm_deeper.tools.builtin import default_registry
from llm_deeper.agent.executor import ExecutorConfig, ToolExecutor
from llm_deeper.tools.render import format_tool_calls


def slow_registry(barrier=None) -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def wait(seconds: float) -> str:
        """Sleep, then answer.

        Args:
            seconds: How long.
        """
        if barrier is not None:
            barrier.wait(timeout=5)  # passes only if both calls run at the same time (a process-shared barrier)
        time.sleep(seconds)
        return f"slept {seconds}"

    @registry.tool
    def big() -> str:
        """A huge answer."""
        return "x" * 10_000

    @registry.tool
    def broken() -> str:
        """A tool with a bug."""
        return 1 / 0

    @registry.tool
    def refuse(city: str) -> str:
        """Refuses politely.

        Args:
            city: Any city.
        """
        raise ToolError(f"no data for {city}")

    return registry


def test_executor_validates_before_running_and_reports_errors_as_text():
    executor = ToolExecutor(slow_registry(), ExecutorConfig(timeout_s=2, max_output_chars=100))
    results = executor.run([
        ToolCall("nope", {}),
        ToolCall("wait", {"seconds": "soon"}),
        ToolCall("wait", {}),
        ToolCall("wait", {"seconds": 0, "extra": 1}),
        ToolCall("big", {}),
        ToolCall("broken", {}),
        ToolCall("refuse", {"city": "Atlantis"}),
        ToolCall("wait", {"seconds": 0}),
    ])
    kinds = [r.error_kind for r in results]
    assert kinds == ["unknown_tool", "invalid_arguments", "invalid_arguments", "invalid_arguments", None, "crash", "tool_error", None]
    assert "available tools: wait, big, broken, refuse" in results[0].content
    assert "'soon' is not of type 'number'" in results[1].content and '"seconds"' in results[1].content  # the schema is shown
    assert "'seconds' is a required property" in results[2].content
    assert len(results[4].content) < 200 and "truncated 9900 characters" in results[4].content
    assert "ZeroDivisionError" in results[5].content
    assert results[6].content == "error: no data for Atlantis"
    assert results[7].ok and results[7].content == "slept 0"
    message = results[7].to_message()
    assert message["role"] == "tool" and message["tool_call_id"] == results[7].call.id


def test_executor_timeout_and_concurrency():
    executor = ToolExecutor(slow_registry(multiprocessing.get_context("fork").Barrier(2)), ExecutorConfig(timeout_s=3.0))
    results = executor.run([ToolCall("wait", {"seconds": 0.3}), ToolCall("wait", {"seconds": 0.3})])
    assert [r.ok for r in results] == [True, True]  # the barrier needs both threads at once
    slow = ToolExecutor(slow_registry(), ExecutorConfig(timeout_s=0.2)).run_one(ToolCall("wait", {"seconds": 3}))
    assert slow.error_kind == "timeout" and "within 0.2 s" in slow.content and slow.seconds < 1


def call_text(name, **arguments):
    return format_tool_calls([ToolCall(name, arguments)])


def test_agent_loop_calls_tools_recovers_from_errors_and_answers(tmp_path):
    backend = ScriptedBackend([
        call_text("get_weather", town="Paris"),  # wrong argument name → error back to the model
        call_text("get_weather", city="Paris") + "\n" + call_text("convert_currency", amount=10, from_currency="EUR", to_currency="USD"),
        "It is 11 °C with light rain in Paris, and 10 EUR is 10.87 USD.",
    ])
    steps_seen = []
    agent = Agent(backend, default_registry(), AgentConfig(max_steps=4), log_path=tmp_path / "steps.jsonl", on_step=steps_seen.append)
    result = agent.run("Weather in Paris? And 10 EUR in dollars?")
    assert result.stopped == "answer" and result.answer.startswith("It is 11 °C")
    assert [len(s.results) for s in result.steps] == [1, 2, 0] and len(steps_seen) == 3
    assert result.steps[0].results[0].error_kind == "invalid_arguments"
    # The second model turn saw the error message as a tool result.
    second_view = backend.seen[1]
    assert second_view[-1]["role"] == "tool" and "'city' is a required property" in second_view[-1]["content"]
    weather, money = result.steps[1].results
    assert json.loads(weather.content)["temperature"] == 11 and json.loads(money.content)["result"] == 10.87
    roles = [m["role"] for m in result.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "tool", "assistant"]
    ids = [c["id"] for c in result.messages[3]["tool_calls"]]
    assert [m["tool_call_id"] for m in result.messages[4:6]] == ids
    logged = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged] == [1, 2, 3] and logged[0]["results"][0]["ok"] is False


def test_agent_stops_at_the_step_limit():
    backend = ScriptedBackend([call_text("get_current_time")] * 3)
    result = Agent(backend, default_registry(), AgentConfig(max_steps=2)).run("time?")
    assert result.stopped == "max_steps" and result.answer == "" and len(result.steps) == 2
    with pytest.raises(RuntimeError, match="ran out"):
        Agent(ScriptedBackend([]), default_registry()).run("hi")


def test_one_turn_with_many_calls_is_capped_and_queued_on_the_warm_workers():
    """Issue 26: a turn of N calls forked N processes; now at most max_calls_per_turn run, `workers` at a time."""
    import os

    registry = ToolRegistry()

    @registry.tool
    def whoami(n: int) -> int:
        """The process id of the worker running this call (n: which call; identical calls run once, issue 23)."""
        return os.getpid()

    calls = "\n".join(call_text("whoami", n=n) for n in range(12))
    agent = Agent(ScriptedBackend([calls, "done"]), registry, AgentConfig(max_calls_per_turn=8), executor=ExecutorConfig(workers=2))
    results = agent.run("go").steps[0].results
    assert len(results) == 12 and [r.ok for r in results] == [True] * 8 + [False] * 4
    assert {r.error_kind for r in results[8:]} == {"too_many_calls"} and "at most 8 tool calls per turn" in results[8].content
    assert len({r.content for r in results[:8]}) <= 2  # every call ran on one of the 2 warm workers: none forked per call
