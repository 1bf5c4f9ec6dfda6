"""The model under test, behind one call: messages (+ tools) → reply, through the chat layer.

`ChatGenerator` wraps a `chat.ChatModel`: `EngineChatModel` (the engine in
this process, the base model or one of its LoRA adapters by name, all prompts
of a run decoded together) or `OpenAIChatModel` (any OpenAI-compatible
endpoint: `llm-deeper serve`, vLLM, ...). Either way the prompt, the tool
grammar and the parse are the server's (`chat/plan.py`), so an eval scores
what the server serves. In-process, decoding applies the server's
`tool_choice="auto"` grammar by default (`constrain=True`: what clients of
`llm-deeper serve` get; over HTTP the server always applies it); with
`constrain=False` the tools are in the prompt and the reply is free, so the
scores show what the model learned. With greedy decoding both backends give
the same replies for the same weights.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..inference.sampling import SamplingConfig


@dataclass
class Generation:
    """One reply."""

    text: str  # reply text, tool-call markup removed
    tool_calls: list[dict] = field(default_factory=list)  # OpenAI-shaped calls the reply made
    completion_tokens: int = 0  # tokens generated (the end-of-turn token included, as the server's usage counts)
    seconds: float = 0.0  # wall time of the request (prompt processing included)


def check_adapter(adapter: str | Path) -> Path:
    """The adapter folder, or a UserError when it is not a PEFT adapter folder."""
    folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise UserError(f"{folder} is not a PEFT adapter folder (no adapter_config.json); pass the folder `llm-deeper finetune` wrote")
    return folder


@contextmanager
def peft_scorer(model, tokenizer, adapter: str | Path | None):
    """(model, tokenizer) for perplexity, with a PEFT LoRA adapter applied for the block's duration.

    PEFT injects its layers into `model` itself, so they are removed again on
    the way out: the caller's model is the base model before and after.
    """
    if adapter is None:
        yield model, tokenizer
        return
    folder = check_adapter(adapter)
    from peft import PeftModel

    try:
        wrapped = PeftModel.from_pretrained(model, str(folder), is_trainable=False).eval()
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise UserError(f"could not apply the adapter {folder} to this model: {str(exc).splitlines()[0]}") from exc
    try:
        yield wrapped, tokenizer
    finally:
        wrapped.unload()


class ChatGenerator:
    """Replies from a chat model (in-process or over HTTP), greedy unless the sampling says otherwise."""

    def __init__(self, model, sampling: SamplingConfig, adapter: str | None = None, constrain: bool = True):
        self.model = model  # a chat.ChatModel
        self.backend = model.backend
        self.sampling = sampling.validate()
        self.adapter = adapter  # a LoRA adapter loaded in the engine (or the served model's name), None for the base model
        self.constrain = constrain  # apply the server's "auto" tool grammar when tools are offered (always so over HTTP)

    def __call__(self, messages: list[dict], tools: list[dict] | None = None) -> Generation:
        return self.batch([(messages, tools)])[0]

    def batch(self, items: list[tuple[list[dict], list[dict] | None]], on_done=None) -> list[Generation]:
        """Several prompts at once (in-process: decoded together by continuous batching; greedy
        replies equal one-at-a-time replies). `on_done(n)` is called as the first n replies are in.
        A prompt the model refuses (the server's 400) stops the run with its reason."""
        from ..chat import ChatRequest

        requests = [ChatRequest(messages, tools=tools or None, tool_choice="auto" if tools else None, sampling=self.sampling,
                                model=self.adapter, constrain=self.constrain) for messages, tools in items]
        out = []
        for reply in self.model.chat_many(requests, on_done=on_done):
            if reply.error:
                raise UserError(f"the model refused a prompt: {reply.error}")
            out.append(Generation(text=reply.content.strip(), tool_calls=reply.tool_calls, completion_tokens=reply.completion_tokens,
                                  seconds=reply.seconds))
        return out
