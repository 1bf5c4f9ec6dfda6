"""Perplexity and bits per byte, with a sliding window over long texts.

Perplexity = exp(mean negative log-likelihood per token). The mean is over
tokens, pooled across texts (a long text counts more than a short one).
A text longer than the model's window is scored in windows that move by
`stride` tokens: each token is scored once, with up to `window - stride`
tokens of earlier context it would otherwise lose at a window boundary.

Perplexity is per *token*, so two models with different tokenizers cannot be
compared by it (a byte-level model predicts many easy tokens per word).
Bits per byte divides the same total NLL (in bits) by the UTF-8 bytes
predicted, a unit every tokenizer shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class PerplexityConfig:
    """How long texts are cut into windows."""

    window: int | None = None  # tokens per forward pass; None = the model's context, at most 1024
    stride: int | None = None  # tokens the window moves each step (< window); None = window // 2


@dataclass
class TextNLL:
    """The scored part of one text."""

    nll: float  # summed negative log-likelihood, nats
    tokens: int  # tokens scored (every token but the first, which has no context)
    bytes: int  # UTF-8 bytes of the scored tokens

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else math.nan

    @property
    def bits_per_byte(self) -> float:
        return self.nll / math.log(2) / self.bytes if self.bytes else math.nan


def resolve_window(model, config: PerplexityConfig) -> tuple[int, int]:
    """(window, stride) with defaults filled in and checked."""
    context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None) or 1024
    window = config.window or min(int(context), 1024)
    stride = config.stride or max(1, window // 2)
    if window < 2:
        raise UserError(f"perplexity window must be at least 2 tokens, got {window}")
    if not 1 <= stride < window:
        # stride < window keeps at least one token of context for the first
        # token scored in each window, so every token but the first is scored.
        raise UserError(f"perplexity stride must be at least 1 and below the window ({window}), got {stride}")
    return window, stride


def token_nll(model, ids) -> "torch.Tensor":  # noqa: F821
    """NLL (nats) of ids[1:] given the ids before each, in one forward pass: shape [len-1]."""
    import torch

    with torch.inference_mode():
        logits = model(ids.unsqueeze(0)).logits[0, :-1].float()
    return -torch.log_softmax(logits, dim=-1).gather(1, ids[1:].unsqueeze(1)).squeeze(1)


def sliding_nll(model, ids, window: int, stride: int) -> "torch.Tensor":  # noqa: F821
    """Per-token NLL of ids[1:], each token scored once, windows moving by `stride`."""
    import torch

    n = ids.shape[0]
    parts = []
    scored_until = 1  # ids[0] is never scored
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        if end > scored_until:
            nll = token_nll(model, ids[begin:end])  # NLL of ids[begin+1 : end]
            parts.append(nll[scored_until - (begin + 1):])
            scored_until = end
        if end == n:
            break
    return torch.cat(parts) if parts else torch.zeros(0)


def text_nll(model, tokenizer, text: str, config: PerplexityConfig = PerplexityConfig()) -> TextNLL:
    """Score one text; tokens are the tokenizer's own, without added special tokens."""
    import torch

    window, stride = resolve_window(model, config)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=getattr(tokenizer, "is_fast", False))
    ids = torch.tensor(encoded["input_ids"], dtype=torch.long)
    if ids.shape[0] < 2:
        return TextNLL(nll=0.0, tokens=0, bytes=0)
    nll = sliding_nll(model, ids, window, stride)
    if "offset_mapping" in encoded:
        first_end = encoded["offset_mapping"][0][1]
        scored_bytes = len(text[first_end:].encode("utf-8"))
    else:
        scored_bytes = len(tokenizer.decode(ids[1:]).encode("utf-8"))
    return TextNLL(nll=float(nll.double().sum()), tokens=int(nll.shape[0]), bytes=scored_bytes)


def masked_nll(model, tokenizer, ids: list[int], scored: list[bool], config: PerplexityConfig = PerplexityConfig()) -> TextNLL:
    """Score only the tokens marked in `scored` (a reference answer inside its rendered conversation).

    One forward pass; a conversation longer than the window is cut from the
    left (the context before the answer is what gets lost).
    """
    import torch

    window, _ = resolve_window(model, config)
    if len(ids) != len(scored):
        raise ValueError("ids and scored differ in length")
    if len(ids) > window:
        ids, scored = ids[-window:], scored[-window:]
    scored = [False] + list(scored[1:])  # the first token has no context
    positions = [i for i, keep in enumerate(scored) if keep]
    if not positions:
        return TextNLL(nll=0.0, tokens=0, bytes=0)
    nll = token_nll(model, torch.tensor(ids, dtype=torch.long))[[p - 1 for p in positions]]
    scored_bytes = len(tokenizer.decode([ids[p] for p in positions], skip_special_tokens=False).encode("utf-8"))
    return TextNLL(nll=float(nll.double().sum()), tokens=len(positions), bytes=scored_bytes)


def pooled(results: list[TextNLL]) -> TextNLL:
    """Sum of several scored texts: token-weighted mean NLL, bytes pooled alike."""
    return TextNLL(nll=sum(r.nll for r in results), tokens=sum(r.tokens for r in results), bytes=sum(r.bytes for r in results))


def perplexity(model, tokenizer, texts: list[str], config: PerplexityConfig = PerplexityConfig()) -> TextNLL:
    """Pooled perplexity / bits per byte of several texts (read `.perplexity`, `.bits_per_byte`)."""
    total = pooled([text_nll(model, tokenizer, text, config) for text in texts])
    if total.tokens == 0:
        raise UserError("nothing to score: every text is shorter than two tokens")
    return total


def ppl_scores(result: TextNLL) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py` (ppl = exp of the NLL mean)."""
    if result.tokens == 0:
        return {}
    return {"ppl": (result.nll / result.tokens, float(result.tokens)), "bits_per_byte": (result.bits_per_byte, float(result.bytes))}
