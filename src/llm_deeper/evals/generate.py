"""The model under test, behind one call: messages (+ tools) → reply.

Two backends give the same `Generation`:
- `LocalGenerator`: the engine in this process, the base model or one of its
  LoRA adapters by name; all prompts of a run decode together (continuous
  batching); the prompt comes from `chat_format`, the code the trainer and
  the server use (tool schemas included), and tool calls are parsed out of
  the reply with the project's tool-call parser. By default decoding is
  unconstrained, so the scores show what the model learned; with
  `constrain=True` it applies the server's `tool_choice="auto"` grammar (free
  text, but a started call is held to the tool schemas), i.e. what clients of
  `llm-deeper serve` get;
- `OpenAIGenerator`: any OpenAI-compatible endpoint (`llm-deeper serve`,
  vLLM, ...) through the official `openai` client; the server renders and
  parses, and its `tool_calls` are taken as they come.
With greedy decoding both give the same replies for the same weights.
"""

from __future__ import annotations

import time
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
    completion_tokens: int = 0  # tokens generated
    seconds: float = 0.0  # wall time of the request (prompt processing included)


def split_tool_calls(text: str, tool_names: list[str] | None = None) -> tuple[str, list[dict]]:
    """(text without tool-call markup, OpenAI tool_calls) from a raw model reply.

    The project's hermes parser (the format `tools.render` teaches) reads the
    calls; a call whose JSON cannot be read is dropped, as the server drops
    it, so it counts as a missing call. With `tool_names` (what the server
    passes), a call to another name is dropped too; without, it is kept, so
    schema validity can count it as a call to an unknown tool.
    """
    from ..tools.formats import HERMES

    parsed = HERMES.parse(text, tool_names=tool_names)
    return parsed.content, [call.to_openai() for call in parsed.calls]


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


class LocalGenerator:
    """Generate with the engine in this process (greedy unless the config samples)."""

    backend = "in-process (engine)"

    def __init__(self, engine, sampling: SamplingConfig, adapter: str | None = None, constrain: bool = False):
        self.engine = engine  # an inference.engine.Engine
        self.sampling = sampling.validate()
        self.adapter = adapter  # the name of a LoRA adapter loaded in the engine, or None for the base model
        self.constrain = constrain  # apply the server's "auto" tool grammar when tools are offered

    def __call__(self, messages: list[dict], tools: list[dict] | None = None) -> Generation:
        return self.batch([(messages, tools)])[0]

    def batch(self, items: list[tuple[list[dict], list[dict] | None]], on_done=None) -> list[Generation]:
        """Several prompts decoded together by continuous batching (the seconds are shared out evenly).

        Greedy replies equal the one-at-a-time replies: the engine's batched
        decode is tested token for token against transformers' `generate`.
        `on_done(n)` is called as the first n replies are in.
        """
        from ..tools.constrain import tool_call_grammar

        each = [{"tools": tools, "grammar": tool_call_grammar(tools, "auto") if (self.constrain and tools) else None} for _, tools in items]
        start = time.perf_counter()
        results = self.engine.generate_many([messages for messages, _ in items], self.sampling, adapter=self.adapter, each=each,
                                            on_result=(lambda index, _result: on_done(index + 1)) if on_done else None)
        seconds = (time.perf_counter() - start) / len(items)
        out = []
        for (_, tools), result in zip(items, results):
            names = [t["function"]["name"] for t in tools] if (tools and self.constrain) else None
            text, calls = split_tool_calls(result.text, names) if tools else (result.text, [])
            # The stop token (end of turn) is not counted: it is not text.
            tokens = result.usage.completion_tokens - (result.finish_reason == "stop" and result.token_ids[-1:] and result.token_ids[-1] in self.engine.stop_ids)
            out.append(Generation(text=text.strip(), tool_calls=calls, completion_tokens=int(tokens), seconds=seconds))
        return out


class OpenAIGenerator:
    """Generate through an OpenAI-compatible endpoint with the official client."""

    backend = "OpenAI-compatible endpoint"

    def __init__(self, base_url: str, model: str, sampling: SamplingConfig, api_key: str | None = None, timeout: float = 300.0):
        from openai import OpenAI

        self.base_url = base_url
        self.model = model  # the name the server knows the model (or adapter) by
        self.sampling = sampling.validate()
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)

    def __call__(self, messages: list[dict], tools: list[dict] | None = None) -> Generation:
        import openai

        kwargs = {"model": self.model, "messages": messages, "max_tokens": self.sampling.max_new_tokens, "temperature": self.sampling.temperature}
        if not self.sampling.greedy:
            kwargs["top_p"] = self.sampling.top_p
        if self.sampling.seed is not None:
            kwargs["seed"] = self.sampling.seed
        if tools:
            kwargs["tools"] = tools
        start = time.perf_counter()
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.APIConnectionError as exc:
            raise UserError(f"could not reach {self.base_url}: {exc}; is the server running (llm-deeper serve)?") from exc
        except openai.APIStatusError as exc:
            raise UserError(f"{self.base_url} answered {exc.status_code}: {exc.message}") from exc
        seconds = time.perf_counter() - start
        message = response.choices[0].message
        calls = [call.model_dump(exclude_none=True) for call in message.tool_calls or []]
        tokens = response.usage.completion_tokens if response.usage else 0
        return Generation(text=(message.content or "").strip(), tool_calls=calls, completion_tokens=tokens, seconds=seconds)
