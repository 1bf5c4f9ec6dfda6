"""Does the model call the right tool? A quick held-out probe used before and after fine-tuning.

For each held-out conversation that expects a tool, the prompt is everything
before the first assistant turn (tool prompt + user question); the chat layer
renders and parses it as the server does, the engine answers greedily and
unconstrained (what the model learned); the answer counts when it holds
complete tool calls that name the expected tools (`evals.tool_use`'s tool
selection).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..data.sft import ChatExample


@dataclass
class ProbeResult:
    """Tool-call figures over held-out prompts."""

    prompts: int  # prompts that expect a tool call
    parseable: int  # answers with at least one complete, parseable tool call
    right_tool: int  # ... whose first call names the expected tool
    samples: list[dict] = field(default_factory=list)  # prompt, expected, answer, called (for reports)

    @property
    def accuracy(self) -> float:
        """Share of prompts answered with a parseable call of the right tool."""
        return self.right_tool / max(self.prompts, 1)

    @property
    def parse_rate(self) -> float:
        return self.parseable / max(self.prompts, 1)


def expected_tool(example: ChatExample) -> str | None:
    """The tool the first assistant turn calls (from the data), or None."""
    for message in example.messages:
        if message["role"] == "assistant":
            calls = message.get("tool_calls") or []
            return calls[0]["function"]["name"] if calls else None
    return None


def expected_calls(example: ChatExample) -> list[dict]:
    """The calls of the first assistant turn (from the data)."""
    first = next(m for m in example.messages if m["role"] == "assistant")
    return first.get("tool_calls") or []


def prompt_messages(example: ChatExample) -> list[dict]:
    """Messages before the first assistant turn."""
    first = next(i for i, m in enumerate(example.messages) if m["role"] == "assistant")
    return example.messages[:first]


def tool_call_probe(engine, examples: list[ChatExample], limit: int | None = None, adapter: str | None = None,
                    max_new_tokens: int = 72) -> ProbeResult:
    """Greedy answers to held-out tool prompts through the engine (all decoded together), scored by the hermes parser.

    `adapter`: the name of a LoRA adapter loaded in the engine, or None for the base model.
    "Right tool" is `evals.tool_use`'s tool selection (the same tool names as the data's
    first assistant turn), the one definition the evals use too.
    """
    from ..chat import ChatRequest
    from ..chat.engine_model import EngineChatModel
    from ..evals.tool_use import tool_scores
    from ..inference.sampling import SamplingConfig
    from ..tools.render import CALL_END

    cases = [e for e in examples if expected_tool(e)][:limit]
    result = ProbeResult(prompts=len(cases), parseable=0, right_tool=0)
    # A call is complete at its end marker; nothing after it matters here (the stop string cuts the marker off,
    # so the call comes back as cut, with its whole arguments object when it was complete).
    config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, stop=(CALL_END,))
    requests = [ChatRequest(prompt_messages(e), tools=e.tools, tool_choice="auto", sampling=config, model=adapter, constrain=False) for e in cases]
    for example, reply in zip(cases, EngineChatModel(engine).chat_many(requests)):
        calls = [c for c in reply.tool_calls if _is_object(c["function"]["arguments"])]
        called = calls[0]["function"]["name"] if calls else None
        result.parseable += bool(calls)
        result.right_tool += tool_scores(calls, expected_calls(example))["tool_selection"][0] == 1.0
        result.samples.append({"prompt": prompt_messages(example)[-1]["content"], "expected": expected_tool(example), "called": called, "answer": reply.text})
    return result


def _is_object(text: str) -> bool:
    """The arguments text is a whole JSON object (a call the length limit cut is not)."""
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False
