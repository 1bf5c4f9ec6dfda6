"""The agent loop: model → tool calls → executor → results → model, until an answer.

The model is a chat model (`llm_deeper.chat`): `EngineChatModel` (the engine in
this process, calls constrained by the server's tool grammar) or
`OpenAIChatModel` (any OpenAI-compatible server: ours, vLLM, llama.cpp), or
`ScriptedBackend` (replies written in advance: tests, lessons). Each turn is
one `ChatRequest`, so the agent sees exactly what a client of the server sees.

Every step is recorded (`AgentStep`) and logged; `log_path` also writes the
steps as JSON lines.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..chat import ChatModel, ChatReply, ChatRequest
from ..inference.sampling import SamplingConfig
from ..tools.calls import ToolCall, compact_json
from .executor import ExecutorConfig, ToolExecutor, ToolResult
from ..tools.registry import ToolRegistry

log = logging.getLogger("llm_deeper.tools")


class ScriptedBackend:
    """A chat model whose replies are written in advance, as raw model text (parsed like a real model's)."""

    backend = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)  # what is left to say
        self.seen: list[list[dict]] = []  # the conversation each reply answered (tests inspect it)

    def chat(self, request: ChatRequest) -> ChatReply:
        from ..chat.plan import ChatPlan, finish_reason, parse_reply

        self.seen.append([dict(m) for m in request.messages])
        if not self.replies:
            raise RuntimeError("the scripted backend ran out of replies")
        text = self.replies.pop(0)
        message = parse_reply(ChatPlan([], None, (), True), text)
        return ChatReply(message, finish_reason("stop", message), text=text)  # a written reply always ends

    def chat_many(self, requests: list[ChatRequest], on_done=None) -> list[ChatReply]:
        return [self.chat(r) for r in requests]


# ── the loop ──────────────────────────────────────────────────────────────────

@dataclass
class AgentStep:
    """One model turn and the tools it ran."""

    index: int  # 1-based step number
    message: dict  # the assistant message
    results: list[ToolResult] = field(default_factory=list)  # tool results of this step
    seconds: float = 0.0  # model time + tool time
    finish_reason: str = ""  # how the model's turn ended, if the backend says ("length": cut by the token limit)

    def to_json(self) -> dict:
        return {"step": self.index, "seconds": round(self.seconds, 3), "finish_reason": self.finish_reason, "assistant": self.message,
                "results": [{"name": r.call.name, "ok": r.ok, "error_kind": r.error_kind, "content": r.content} for r in self.results]}


@dataclass
class AgentResult:
    answer: str  # the final text answer ("" if the step limit was hit first)
    messages: list[dict]  # the whole conversation, OpenAI shape
    steps: list[AgentStep]  # what happened, in order
    stopped: str  # "answer" | "max_steps" | "no_tool_call" (a turn that had to call a tool did not) | "repeated_failure"
    reason: str = ""  # why the loop stopped without an answer (empty after an answer)


@dataclass
class AgentConfig:
    """How the loop runs."""

    max_steps: int = 5  # model turns before giving up
    tool_choice: object = "auto"  # for the first turn ("required" forces a call)
    followup_tool_choice: object = "auto"  # for later turns ("none" forces an answer after the tools ran)
    parallel_tool_calls: bool = True  # allow several calls in one turn
    system: str | None = None  # system prompt (the tool prompt is added by the renderer)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # per turn: max_new_tokens, temperature (0: greedy), seed
    model: str | None = None  # a LoRA adapter loaded in the engine (or the served model's name); None: the base model
    max_identical_failures: int = 3  # the same call failing this often stops the loop (a model stuck in a rut)
    max_calls_per_turn: int = 8  # calls run from one turn; the rest get an error result (one turn once forked a process per call)


def runnable(message: dict) -> dict:
    """The assistant message with the calls that can run: a call max_tokens cut (its arguments not a JSON
    object) is dropped, and so is a second identical call (same name and arguments) in the same turn."""
    kept, seen = [], set()
    for call in message.get("tool_calls") or []:
        try:
            arguments = json.loads(call["function"]["arguments"] or "{}")
        except (json.JSONDecodeError, TypeError):
            continue
        key = (call["function"]["name"], json.dumps(arguments, sort_keys=True) if isinstance(arguments, dict) else None)
        if key[1] is None or key in seen:
            continue
        seen.add(key)
        kept.append(call)
    out = {k: v for k, v in message.items() if k != "tool_calls"}
    if kept:
        out["tool_calls"] = kept
    elif message.get("tool_calls") and out.get("content") is None:
        out["content"] = ""
    return out


def _requires_call(choice) -> bool:
    return choice == "required" or isinstance(choice, dict)


class Agent:
    """Runs a conversation with tools until the model answers in text."""

    def __init__(self, backend: ChatModel, registry: ToolRegistry, config: AgentConfig = AgentConfig(),
                 executor: ExecutorConfig = ExecutorConfig(), log_path: str | Path | None = None,
                 on_step: Callable[[AgentStep], None] | None = None, tool_executor: ToolExecutor | None = None) -> None:
        self.backend, self.registry, self.config = backend, registry, config
        # A shared executor (one warm worker pool for many agents, as `eval agent` runs them) must know
        # every tool this registry offers; by default each agent forks its own workers.
        self.executor = tool_executor or ToolExecutor(registry, executor)
        self.log_path = Path(log_path) if log_path else None
        self.on_step = on_step  # called after each step (the CLI prints it)

    def run(self, request: str | list[dict]) -> AgentResult:
        messages = [{"role": "user", "content": request}] if isinstance(request, str) else [dict(m) for m in request]
        if self.config.system and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.config.system})
        tools = self.registry.schemas()
        steps: list[AgentStep] = []
        failures: dict[tuple[str, str], int] = {}  # (tool, arguments) -> times that exact call failed
        for index in range(1, self.config.max_steps + 1):
            start = time.perf_counter()
            choice = self.config.tool_choice if index == 1 else self.config.followup_tool_choice
            reply = self.backend.chat(ChatRequest(messages, tools=tools, tool_choice=choice, parallel_tool_calls=self.config.parallel_tool_calls,
                                                   sampling=self.config.sampling, model=self.config.model))
            if reply.error:
                raise UserError(f"the model refused the conversation: {reply.error}")
            message = runnable(reply.message)
            messages.append(message)
            step = AgentStep(index, message, finish_reason=reply.finish_reason)
            calls = [ToolCall.from_openai(c) for c in message.get("tool_calls") or []]
            if calls:
                step.results = self._run_calls(calls)
                messages.extend(r.to_message() for r in step.results)
            step.seconds = time.perf_counter() - start
            steps.append(step)
            self._record(step)
            if not calls:
                # A turn that had to call a tool but did not (a cut-off call) is not an answer.
                stopped = "no_tool_call" if _requires_call(choice) else "answer"
                return AgentResult((message.get("content") or "").strip(), messages, steps, stopped)
            stuck = self._repeated_failure(step.results, failures)
            if stuck:
                return AgentResult("", messages, steps, "repeated_failure", stuck)
        return AgentResult("", messages, steps, "max_steps", f"no answer within {self.config.max_steps} model turns")

    def _run_calls(self, calls: list[ToolCall]) -> list[ToolResult]:
        """Up to `max_calls_per_turn` calls, queued `workers` at a time (each batch uses the warm workers, none forked);
        the rest answered with an error the model can read."""
        cap, width = self.config.max_calls_per_turn, max(1, self.executor.config.workers)
        results: list[ToolResult] = []
        for start in range(0, min(len(calls), cap), width):
            results += self.executor.run(calls[start:min(start + width, cap)])
        results += [ToolResult(call, f"error: not run: at most {cap} tool calls per turn; call the rest in the next turn", False, 0.0, "too_many_calls")
                    for call in calls[cap:]]
        return results

    def _repeated_failure(self, results: list[ToolResult], failures: dict[tuple[str, str], int]) -> str:
        """Why to stop, if an identical call has now failed `max_identical_failures` times; else ""."""
        for result in results:
            if result.ok:
                continue
            key = (result.call.name, compact_json(result.call.arguments))
            failures[key] = failures.get(key, 0) + 1
            if failures[key] >= self.config.max_identical_failures:
                shown = f"{result.call.name}({key[1][:120]})"
                return f"the model made the same failing call {failures[key]} times: {shown} -> {result.content[:200]}"
        return ""

    def _record(self, step: AgentStep) -> None:
        calls = ", ".join(f"{c['function']['name']}({c['function']['arguments']})" for c in step.message.get("tool_calls") or [])
        log.info("step %d: %s", step.index, calls or (step.message.get("content") or "")[:200])
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(step.to_json(), ensure_ascii=False) + "\n")
        if self.on_step:
            self.on_step(step)
