"""`llm-deeper eval agent`: held-out tasks through the project's own agent loop, scored end to end.

Each task runs through `agent.loop.Agent` exactly as `llm-deeper agent`
runs a question: the chat model (the in-process engine with the server's tool
grammar, or an OpenAI-compatible server), the executor's worker processes running the
real built-in tools, and a step limit. Success means the loop ended with a
text answer that states the task's value (`agent_tasks.contains_value`) and
writes no tool markup.
Beside it, per task: did the model call the right tools, with exactly the
expected arguments, did it hit the step limit, did a turn hit the token
limit. Runs are written like `llm-deeper eval` runs, so `eval compare` and
its bootstrap intervals apply unchanged.
"""

from __future__ import annotations

import time
from typing import Callable

from .agent_tasks import FROZEN_NOW, AgentTask, contains_value, same_call


def score_task(task: AgentTask, result, seconds: float) -> dict:
    """The eval record of one task (the shape `evals.report` writes) from the agent's result."""
    made = [{"name": c["function"]["name"], "arguments": _arguments(c["function"]["arguments"])}
            for step in result.steps for c in step.message.get("tool_calls") or []]
    markup = has_tool_markup(result.answer)
    success = result.stopped == "answer" and contains_value(result.answer, task) and not markup
    needed = {c["name"] for c in task.expected_calls}
    right_tools = {c["name"] for c in made} == needed
    exact = sum(any(same_call(m, e) for m in made) for e in task.expected_calls) / len(task.expected_calls)
    hit_length = any(step.finish_reason == "length" for step in result.steps)
    one = float(task.steps == 1)
    return {
        "id": task.id, "prompt": task.request, "reference": task.value, "expected_calls": task.expected_calls,
        "prediction": result.answer, "predicted_calls": made, "stopped": result.stopped, "reason": result.reason,
        "turns": len(result.steps), "seconds": round(seconds, 2), "tools_offered": task.tools,
        "verdict": "pass" if success else _why(result, task, made, hit_length, markup),
        "scores": {
            "agent:success": (float(success), 1.0),
            "agent:success 1-step": (float(success), one),
            "agent:success 2-step": (float(success), 1.0 - one),
            "agent:right tools": (float(right_tools), 1.0),
            "agent:exact arguments": (exact, float(len(task.expected_calls))),  # a rate over expected calls
            "agent:no tool called": (float(not made), 1.0),
            "agent:hit step limit": (float(result.stopped == "max_steps"), 1.0),
            "agent:hit max_tokens": (float(hit_length), 1.0),
            "agent:seconds per task": (seconds, 1.0),
        },
    }


def _arguments(raw):
    import json

    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return {"_unparsed": raw}
    return raw or {}


def has_tool_markup(answer: str) -> bool:
    """An answer that writes call or result markers is the model imitating the protocol, not answering (issue 23)."""
    from ..tools.render import CALL_END, CALL_START, RESPONSE_END, RESPONSE_START

    return any(marker in answer for marker in (CALL_START, CALL_END, RESPONSE_START, RESPONSE_END))


def _why(result, task: AgentTask, made: list[dict], hit_length: bool, markup: bool = False) -> str:
    """One line saying why a task failed, for the report."""
    if result.stopped != "answer":
        return f"no answer: {result.stopped}" + (" (a turn hit max_tokens)" if hit_length else "")
    if markup:
        return "the answer contains tool-call or tool-result markup"
    if not made:
        return f"answered without calling a tool; wanted {task.value}"
    return f"answer lacks {task.value}"


def run_agent_tasks(tasks: list[AgentTask], backend, label: str, max_steps: int = 4, tool_choice="auto", then="auto",
                    timeout_s: float = 10.0, info: dict | None = None, resamples: int = 1000, seed: int = 0, concurrency: int = 1,
                    on_done: Callable[[int, dict], None] = lambda done, record: None, max_new_tokens: int = 256,
                    model: str | None = None):
    """One run (a chat model, or its adapter / served model `model`) as an `EvalRun`.

    `concurrency` > 1 runs that many tasks at once (the engine batches their
    turns); records keep the task order. Greedy, `max_new_tokens` per turn.
    """
    import platform
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime, timezone

    from ..agent.loop import Agent, AgentConfig
    from ..tools.builtin import default_registry
    from ..agent.executor import ExecutorConfig, ToolExecutor
    from .runner import EvalRun
    from .scores import aggregate_all

    registry = default_registry(now=FROZEN_NOW)
    from ..inference.sampling import SamplingConfig

    config = AgentConfig(max_steps=max_steps, tool_choice=tool_choice, followup_tool_choice=then,
                         sampling=SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0), model=model)
    lock = threading.Lock()
    done: list[dict] = []
    start = time.perf_counter()
    # One warm worker pool for every task (each task offers a subset of these tools).
    with ToolExecutor(registry, ExecutorConfig(timeout_s=timeout_s, workers=max(2, concurrency))) as executor:

        def one(task: AgentTask) -> dict:
            agent = Agent(backend, registry.subset(task.tools), config, tool_executor=executor)
            began = time.perf_counter()
            record = score_task(task, agent.run(task.request), time.perf_counter() - began)
            with lock:
                done.append(record)
                on_done(len(done), record)
            return record

        if concurrency == 1:
            records = [one(task) for task in tasks]
        else:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="agent-task") as pool:
                records = list(pool.map(one, tasks))
    full_info = {
        "label": label, "backend": getattr(backend, "base_url", None) or backend.backend,
        "data": f"held-out agent tasks (data/toolcalls.py test pools): {sum(t.steps == 1 for t in tasks)} one-step, "
                f"{sum(t.steps == 2 for t in tasks)} two-step",
        "examples": len(tasks), "seconds": round(time.perf_counter() - start, 1), "concurrency": concurrency,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "config": {"metrics": ["agent"], "max_new_tokens": max_new_tokens,
                   "temperature": 0.0, "max_steps": max_steps, "tool_choice": tool_choice, "then": then,
                   "resamples": resamples, "seed": seed},
        **(info or {}),
    }
    return EvalRun(info=full_info, records=records, aggregates=aggregate_all(records, resamples, seed))
