"""Streamed generation through transformers' own `generate` (the reference path).

The chat command and the speedrun use it; the project's own engine
(continuous batching, static KV cache) is checked token for token against it.
"""

from __future__ import annotations

import threading
from typing import Iterator

from .sampling import SamplingConfig


def chat_input_ids(tokenizer, messages: list[dict]):
    """Render messages through the model's chat template into a [1, T] tensor."""
    if not getattr(tokenizer, "chat_template", None):
        # Base models have no template; fall back to the plain concatenation.
        text = "\n".join(m["content"] for m in messages) + "\n"
        return tokenizer(text, return_tensors="pt")["input_ids"]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    return encoded["input_ids"]


def stream_generate(model, tokenizer, input_ids, config: SamplingConfig) -> Iterator[str]:
    """Yield decoded text pieces as `generate` produces tokens."""
    import torch
    from transformers import TextIteratorStreamer

    config.validate()
    if config.seed is not None:
        torch.manual_seed(config.seed)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    yield from stream_from_generate(model, streamer, input_ids, pad_token_id=pad, **config.generate_kwargs())


def stream_from_generate(model, streamer, input_ids, **generate_kwargs) -> Iterator[str]:
    """Run `model.generate` in a thread; yield what `streamer` receives; re-raise its errors here."""
    import torch

    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                model.generate(input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer, **generate_kwargs)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if errors:
        raise errors[0]


def chat_reply(model, tokenizer, messages: list[dict], config: SamplingConfig) -> str:
    """The whole reply to a conversation, as one string."""
    return "".join(stream_generate(model, tokenizer, chat_input_ids(tokenizer, messages), config))
