"""From a corpus to batches: train a tokenizer, encode once, sample windows.

The whole corpus is encoded into one int64 tensor per split. A batch is B
random windows of `context + 1` tokens, gathered in one indexing operation;
x is the window without its last token, y the window shifted by one (each
position predicts the next token).

Batches come from a dedicated `torch.Generator`: its state goes into the
checkpoint (resume replays the same batches), and under DDP every process
draws the same global batch and keeps its own slice, so 2 processes × B rows
see exactly the rows 1 process × 2B would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...data.corpus import EOS, Corpus
from ...errors import UserError
from ...scratch.bpe import BPETokenizer
from ...scratch.char_tokenizer import CharTokenizer

TOKENIZERS = {"char": CharTokenizer, "bpe": BPETokenizer}


def build_tokenizer(kind: str, corpus: Corpus, vocab_size: int = 512, byte_fallback: bool = True):
    """Train a tokenizer on the training split ("char" or "bpe")."""
    if kind == "char":
        return CharTokenizer.train(corpus.train, byte_fallback=byte_fallback, special_tokens=[EOS])
    if kind == "bpe":
        if vocab_size < 258:
            raise UserError(f"a byte-level BPE needs vocab size ≥ 258 (256 bytes + end-of-text + 1 merge), got {vocab_size}")
        return BPETokenizer.train(corpus.train, vocab_size, special_tokens=[EOS])
    raise UserError(f"unknown tokenizer {kind!r}: use 'char' or 'bpe'")


def tokenizer_from_dict(data: dict):
    """Rebuild a tokenizer saved with `to_dict()` (in checkpoints)."""
    cls = TOKENIZERS.get(data.get("kind", ""))
    if cls is None:
        raise UserError(f"unknown tokenizer kind {data.get('kind')!r} in checkpoint")
    return cls.from_dict(data)


@dataclass
class TokenData:
    """A corpus encoded once: one 1-D tensor of ids per split."""

    train: torch.Tensor  # int64 ids of the training split
    val: torch.Tensor  # int64 ids of the validation split

    @classmethod
    def encode(cls, corpus: Corpus, tokenizer, context: int) -> "TokenData":
        data = cls(torch.tensor(tokenizer.encode(corpus.train), dtype=torch.long), torch.tensor(tokenizer.encode(corpus.val), dtype=torch.long))
        for name, ids in (("training", data.train), ("validation", data.val)):
            if ids.numel() <= context + 1:
                raise UserError(f"the {name} split has only {ids.numel()} tokens, fewer than the context ({context}) + 2: use more text or a smaller --context")
        return data


def get_batch(ids: torch.Tensor, batch: int, context: int, generator: torch.Generator, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of shape (batch, context): this process's slice of a global batch of batch × world windows."""
    starts = torch.randint(ids.numel() - context, (batch * world,), generator=generator)[rank * batch : (rank + 1) * batch]
    windows = ids[starts[:, None] + torch.arange(context + 1)]
    return windows[:, :-1], windows[:, 1:]


def prepare(text_file=None, tokenizer: str = "bpe", vocab_size: int = 512, context: int = 128, max_chars: int | None = None,
            byte_fallback: bool = True):
    """Corpus → trained tokenizer → encoded splits: (corpus, tokenizer, TokenData)."""
    from ...data.corpus import load_corpus

    corpus = load_corpus(text_file, max_chars)
    tok = build_tokenizer(tokenizer, corpus, vocab_size, byte_fallback)
    return corpus, tok, TokenData.encode(corpus, tok, context)
