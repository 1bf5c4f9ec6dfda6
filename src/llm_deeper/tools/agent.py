"""The agent loop: model → tool calls → executor → results → model, until an answer.

A backend turns a conversation into the next assistant message (OpenAI shape,
with `tool_calls` when the model calls tools):

- `LocalBackend`: a model in this process through the engine, prompts through
  `chat_format`, calls constrained by the tool grammar (`constrain.py`);
- `OpenAIBackend`: any OpenAI-compatible server (`--base-url`): ours, vLLM,
  llama.cpp;
- `ScriptedBackend`: replies written in advance (tests, lessons).

Every step is recorded (`AgentStep`) and logged; `log_path` also writes the
steps as JSON lines.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from .calls import ToolCall
from .executor import ExecutorConfig, ToolExecutor, ToolResult
from .registry import ToolRegistry

log = logging.getLogger("llm_deeper.tools")


class Backend(Protocol):
    def chat(self, messages: list[dict], tools: list[dict], tool_choice, parallel_tool_calls: bool) -> dict:
        """The next assistant message: {"role": "assistant", "content": ..., "tool_calls": [...]?}."""


# ── backends ──────────────────────────────────────────────────────────────────

class LocalBackend:
    """A model in this process, through the engine; tool calls constrained by grammar."""

    def __init__(self, engine, max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None,
                 on_text: Callable[[str], None] | None = None, adapter: str | None = None) -> None:
        self.engine = engine  # an inference.engine.Engine
        self.max_new_tokens = max_new_tokens  # per assistant turn
        self.temperature = temperature  # 0 = greedy
        self.seed = seed
        self.on_text = on_text  # receives the raw text of each turn (lessons show it)
        self.adapter = adapter  # a LoRA adapter loaded in the engine, or None for the base model
        self.last_finish_reason = ""  # of the latest turn: "stop" or "length" (max_new_tokens cut it)

    @classmethod
    def load(cls, name: str, **kwargs) -> "LocalBackend":
        from ..inference.engine import Engine

        return cls(Engine.load(name, max_batch=1), **kwargs)

    def chat(self, messages, tools, tool_choice="auto", parallel_tool_calls=True) -> dict:
        from ..inference.sampling import SamplingConfig
        from .constrain import tool_call_grammar
        from .formats import HERMES

        grammar = tool_call_grammar(tools, tool_choice, parallel_tool_calls) if tools else None
        config = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)
        result = self.engine.generate(messages, config, tools=tools, grammar=grammar, adapter=self.adapter)
        text, self.last_finish_reason = result.text, result.finish_reason
        if self.on_text:
            self.on_text(text)
        if grammar is None:  # tool_choice "none": whatever the model wrote is text
            return {"role": "assistant", "content": text.strip()}
        parsed = HERMES.parse(text, tool_names=[t["function"]["name"] for t in tools])
        for error in parsed.errors:
            log.info("model output: %s", error)
        return parsed.to_openai_message()


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str = "not-needed", max_tokens: int = 256,
                 temperature: float = 0.0, timeout_s: float = 120.0) -> None:
        from openai import OpenAI

        self.base_url = base_url
        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        self.model = model or self._call(lambda: self.client.models.list().data[0].id)  # the server's first model by default
        self.max_tokens, self.temperature = max_tokens, temperature
        self.last_finish_reason = ""  # of the latest turn, as the server said it ("length": max_tokens cut it)

    def _call(self, request):
        """Run a request; server and connection errors become one-line UserErrors."""
        import openai

        from ..errors import UserError

        try:
            return request()
        except openai.APIStatusError as exc:
            raise UserError(f"{self.base_url} answered HTTP {exc.status_code}: {exc.message}") from None
        except openai.APIConnectionError as exc:
            raise UserError(f"cannot reach {self.base_url} ({exc.__cause__ or exc}); is the server running?") from None

    def chat(self, messages, tools, tool_choice="auto", parallel_tool_calls=True) -> dict:
        kwargs = {"tools": tools, "tool_choice": tool_choice, "parallel_tool_calls": parallel_tool_calls} if tools else {}
        response = self._call(lambda: self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=self.temperature, **kwargs))
        message = response.choices[0].message
        self.last_finish_reason = response.choices[0].finish_reason or ""
        out: dict = {"role": "assistant", "content": message.content}
        # A call cut by max_tokens arrives with partial arguments (finish_reason "length"): it cannot run.
        calls = message.tool_calls if response.choices[0].finish_reason != "length" else []
        if calls:
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                 for c in calls]
        return out


class ScriptedBackend:
    """Replies written in advance, as raw model text (parsed like a real model's)."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.seen: list[list[dict]] = []  # the conversation each reply answered (tests inspect it)
        self.last_finish_reason = "stop"  # a written reply always ends

    def chat(self, messages, tools, tool_choice="auto", parallel_tool_calls=True) -> dict:
        from .formats import HERMES

        self.seen.append([dict(m) for m in messages])
        if not self.replies:
            raise RuntimeError("the scripted backend ran out of replies")
        parsed = HERMES.parse(self.replies.pop(0))
        return parsed.to_openai_message()


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
    max_identical_failures: int = 3  # the same call failing this often stops the loop (a model stuck in a rut)
    max_calls_per_turn: int = 8  # calls run from one turn; the rest get an error result (one turn once forked a process per call)


def _requires_call(choice) -> bool:
    return choice == "required" or isinstance(choice, dict)


class Agent:
    """Runs a conversation with tools until the model answers in text."""

    def __init__(self, backend: Backend, registry: ToolRegistry, config: AgentConfig = AgentConfig(),
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
            message = self.backend.chat(messages, tools, choice, self.config.parallel_tool_calls)
            messages.append(message)
            step = AgentStep(index, message, finish_reason=getattr(self.backend, "last_finish_reason", ""))
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
        from .calls import compact_json

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
