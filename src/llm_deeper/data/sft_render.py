"""Conversations → token ids + labels that train only on the assistant's turns.

The ids come from `llm_deeper.chat_format`, the module the server, the chat
command and the evals prompt with, so the model learns exactly the format it
will be prompted with (tool schemas and calls through `tools.render`, and
special-token text inside a message kept as plain text).

Labels copy the ids on assistant tokens and are -100 (ignored by the loss)
everywhere else. The assistant span ends *after* the end-of-turn token
(`<|im_end|>` for ChatML): a model that never sees that token as a target never
learns to stop talking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..chat_format import IGNORE  # the label value cross-entropy skips (re-exported for callers)
from ..errors import UserError
from .sft import ChatExample


@dataclass
class Tokenized:
    """One training sequence."""

    input_ids: list[int]  # token ids of the rendered conversation(s)
    labels: list[int]  # = input_ids on assistant tokens, IGNORE elsewhere
    truncated: bool = False  # True when the conversation was cut at max_length
    sources: list[str] = field(default_factory=list)  # "file:line" of each conversation inside (several when packed)
    group: str | None = None  # the data's `batch_group` column: rows sharing one train in the same step (None when packed)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass
class RenderStats:
    """What happened while rendering a data set."""

    examples: int = 0  # conversations read
    truncated: int = 0  # conversations cut at max_length
    dropped: int = 0  # conversations with no assistant token left after the cut
    tokens: int = 0  # tokens kept in all sequences
    trained_tokens: int = 0  # tokens that carry a label


def uses_tools(example: ChatExample) -> bool:
    """True when a conversation needs the tool renderer (tool specs, calls or results)."""
    return bool(example.tools) or any(m.get("tool_calls") or m["role"] == "tool" for m in example.messages)


def tokenize_example(tokenizer, example: ChatExample, max_length: int | None = None) -> Tokenized:
    """Render, tokenize and mask one conversation (`chat_format.training_ids`); cut it to max_length tokens if longer."""
    from ..chat_format import training_ids

    encoded = training_ids(tokenizer, example.messages, example.tools, where=example.source)
    ids, labels = encoded.input_ids, encoded.labels
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, labels = ids[:max_length], labels[:max_length]
    group = example.meta.get("batch_group")
    return Tokenized(ids, labels, truncated, [example.source], None if group is None else str(group))


def tokenize_dataset(tokenizer, examples: list[ChatExample], max_length: int | None = None, pack: bool = False) -> tuple[list[Tokenized], RenderStats]:
    """Tokenize a data set; drop conversations left with nothing to learn; optionally pack."""
    stats = RenderStats(examples=len(examples))
    kept = []
    for example in examples:
        item = tokenize_example(tokenizer, example, max_length)
        stats.truncated += item.truncated
        if item.trained_tokens == 0:
            stats.dropped += 1
            continue
        kept.append(item)
    if pack:
        if max_length is None:
            raise UserError("packing needs a maximum length (--max-length)")
        kept = pack_sequences(kept, max_length)
    stats.tokens = sum(len(t.input_ids) for t in kept)
    stats.trained_tokens = sum(t.trained_tokens for t in kept)
    return kept, stats


def pack_sequences(items: list[Tokenized], max_length: int) -> list[Tokenized]:
    """First-fit-decreasing bin packing of whole conversations into rows of ≤ max_length tokens.

    Conversations are never split. Packed conversations share one attention
    row (later ones can attend to earlier ones), as in the common "concatenate"
    packing; this wastes no compute on padding, at a small cost in purity.
    """
    bins: list[Tokenized] = []
    for item in sorted(items, key=lambda t: len(t.input_ids), reverse=True):
        for row in bins:
            if len(row.input_ids) + len(item.input_ids) <= max_length:
                row.input_ids += item.input_ids
                row.labels += item.labels
                row.sources += item.sources
                row.truncated = row.truncated or item.truncated
                break
        else:
            bins.append(Tokenized(list(item.input_ids), list(item.labels), item.truncated, list(item.sources)))
    return bins


def collate(batch: list[Tokenized], pad_id: int) -> dict:
    """Right-pad a batch to its longest row: input_ids, attention_mask, labels tensors."""
    import torch

    width = max(len(t.input_ids) for t in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
