"""The model under test, behind one call: messages (+ tools) → reply.

Two backends give the same `Generation`:
- `LocalGenerator`: a model loaded in this process (transformers), optionally
  with a PEFT LoRA adapter on top; the prompt is rendered by the same code
  the trainer and the server use (tool schemas included), and tool calls are
  parsed out of the reply with the project's tool-call parser. By default
  decoding is unconstrained, so the scores show what the model learned; with
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


def prompt_ids(tokenizer, messages: list[dict], tools: list[dict] | None) -> list[int]:
    """Token ids of the prompt, ending with the assistant generation prompt (`chat_format`)."""
    from ..chat_format import prompt_ids as encode

    return encode(tokenizer, messages, tools)


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


def load_adapter(model, adapter: str | Path):
    """Wrap a transformers model with a PEFT LoRA adapter folder (not merged)."""
    folder = check_adapter(adapter)
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=False).eval()
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise UserError(f"could not apply the adapter {folder} to this model: {str(exc).splitlines()[0]}") from exc


class LocalGenerator:
    """Generate with a model in this process (greedy unless the config samples)."""

    backend = "in-process (transformers)"

    def __init__(self, model, tokenizer, sampling: SamplingConfig, constrain: bool = False):
        self.model = model  # transformers model, or a PeftModel around one
        self.tokenizer = tokenizer
        self.sampling = sampling.validate()
        self.constrain = constrain  # apply the server's "auto" tool grammar when tools are offered

    def _processors(self, tools: list[dict] | None) -> list:
        if not (self.constrain and tools):
            return []
        from ..tools.constrain import logits_processor, tool_call_grammar

        return [logits_processor(self.model, self.tokenizer, tool_call_grammar(tools, "auto"))]

    def stop_ids(self) -> set[int]:
        """Token ids that end a reply (the tokenizer's and the generation config's end tokens)."""
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
        return {i for i in ids if i is not None}

    def __call__(self, messages: list[dict], tools: list[dict] | None = None) -> Generation:
        return self.batch([(messages, tools)])[0]

    def batch(self, items: list[tuple[list[dict], list[dict] | None]]) -> list[Generation]:
        """Several prompts in one left-padded `generate` call (the seconds are shared out evenly).

        Batching changes the arithmetic slightly (padding, batched matmuls), so
        a greedy reply can differ from the unbatched one in rare near-ties;
        batch size 1 is the reference.
        """
        import torch

        if self.constrain and len(items) > 1 and any(tools for _, tools in items):
            return [g for item in items for g in self.batch([item])]  # one grammar per call
        rows = [prompt_ids(self.tokenizer, messages, tools) for messages, tools in items]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every row ends where generation starts
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
        if self.sampling.seed is not None:
            torch.manual_seed(self.sampling.seed)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad,
                                      logits_processor=self._processors(items[0][1]), **self.sampling.generate_kwargs())
        seconds = (time.perf_counter() - start) / len(rows)
        stops = self.stop_ids()
        results = []
        for i, (_, tools) in enumerate(items):
            new = out[i, width:].tolist()
            generated = next((k for k, token in enumerate(new) if token in stops), len(new))  # the stop token is not text
            raw = self.tokenizer.decode(new[:generated], skip_special_tokens=True)
            names = [t["function"]["name"] for t in tools] if (tools and self.constrain) else None
            text, calls = split_tool_calls(raw, names) if tools else (raw, [])
            results.append(Generation(text=text.strip(), tool_calls=calls, completion_tokens=generated, seconds=seconds))
        return results


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
