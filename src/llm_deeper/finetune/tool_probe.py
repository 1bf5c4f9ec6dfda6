"""Does the model call the right tool? A quick held-out probe used before and after fine-tuning.

For each held-out conversation that expects a tool, the prompt is everything
before the first assistant turn (tool prompt + user question), rendered by the
server's tool renderer; the model answers greedily; the answer counts when the
hermes parser finds a complete tool call whose name is the expected tool.
"""

from __future__ import annotations

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


def prompt_messages(example: ChatExample) -> list[dict]:
    """Messages before the first assistant turn."""
    first = next(i for i, m in enumerate(example.messages) if m["role"] == "assistant")
    return example.messages[:first]


def tool_call_probe(model, tokenizer, examples: list[ChatExample], limit: int | None = None, batch_size: int = 4, max_new_tokens: int = 72) -> ProbeResult:
    """Greedy answers to held-out tool prompts, scored by the hermes parser."""
    import torch

    from ..tools.formats import HERMES
    from ..tools.render import chat_prompt

    cases = [e for e in examples if expected_tool(e)][:limit]
    result = ProbeResult(prompts=len(cases), parseable=0, right_tool=0)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(cases), batch_size):
            chunk = cases[start:start + batch_size]
            texts = [chat_prompt(tokenizer, prompt_messages(e), e.tools) for e in chunk]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                # stop_strings: a call is complete at its end marker, nothing after it matters here
                out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, stop_strings=["</tool_call>"], tokenizer=tokenizer)
            for example, row in zip(chunk, out[:, batch["input_ids"].shape[1]:]):
                answer = tokenizer.decode(row, skip_special_tokens=True)
                calls = HERMES.parse(answer).calls
                called = calls[0].name if calls else None
                result.parseable += bool(calls)
                result.right_tool += called == expected_tool(example)
                result.samples.append({"prompt": prompt_messages(example)[-1]["content"], "expected": expected_tool(example), "called": called, "answer": answer})
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return result
