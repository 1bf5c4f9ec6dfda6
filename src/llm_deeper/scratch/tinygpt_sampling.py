"""Sampling from TinyGPT: logit processing, then a decode loop with a KV cache.

Each step turns the last position's logits into a choice:
1. repetition penalty: tokens already in the context become less likely
   (a positive logit is divided by the penalty, a negative one multiplied);
2. temperature: divide by T (T → 0 is greedy; T > 1 flattens);
3. top-k: keep the k largest logits;
4. top-p (nucleus): keep the smallest set of tokens whose probability mass
   reaches p;
then draw from the softmax (or take the arg-max when greedy). The order and
the tie rules are the ones transformers' logits processors use; the parity
test checks that, number for number.

Decoding with a KV cache runs the prompt once (prefill), then one token per
step. Without the cache every step re-runs the whole sequence; both give the
same tokens and logits (tested). Past the model's context, the loop keeps the
last `context` tokens and runs without the cache, as nanoGPT does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .tinygpt import KVCache, TinyGPT


def apply_repetition_penalty(logits: torch.Tensor, context: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits (B, V), context ids (B, L): penalise every token id seen in the context once."""
    if penalty == 1.0 or context.numel() == 0:
        return logits
    seen = logits.gather(1, context)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, context, seen)


def apply_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep logits ≥ the k-th largest (ties at the boundary survive); the rest → -inf."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def apply_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Drop the least likely tokens whose total probability is at most 1 - p; keep at least one."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - p)
    drop_sorted[..., -1] = False  # the most likely token always stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def process_logits(logits: torch.Tensor, context: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                   top_p: float = 1.0, repetition_penalty: float = 1.0) -> torch.Tensor:
    """All four steps, in transformers' order. Temperature 0 leaves scale alone (greedy)."""
    logits = apply_repetition_penalty(logits, context, repetition_penalty)
    if temperature > 0:
        logits = logits / temperature
    logits = apply_top_k(logits, top_k)
    return apply_top_p(logits, top_p)


@dataclass
class Generation:
    """What `generate` returns."""

    tokens: list[int]  # new token ids only (the prompt excluded), EOS included when hit
    stopped_on_eos: bool  # True when the EOS token ended generation early
    logits: list[torch.Tensor] = field(default_factory=list)  # raw next-token logits per step (with return_logits)


@torch.inference_mode()
def generate(model: TinyGPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, repetition_penalty: float = 1.0, eos_id: int | None = None, seed: int | None = None,
             use_cache: bool = True, return_logits: bool = False, threads: int = 1) -> Generation:
    """Continue `prompt` (a non-empty list of ids) by up to `max_new_tokens` tokens.

    `threads`: torch CPU threads while decoding. One token through a small model
    is too little work to split, and extra threads only add contention (0 keeps
    torch's setting).
    """
    if not prompt:
        raise ValueError("prompt must hold at least one token")
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _generate(model, prompt, max_new_tokens, temperature, top_k, top_p, repetition_penalty, eos_id, seed, use_cache, return_logits)
    finally:
        torch.set_num_threads(saved_threads)


def _generate(model, prompt, max_new_tokens, temperature, top_k, top_p, repetition_penalty, eos_id, seed, use_cache, return_logits) -> Generation:
    was_training = model.training
    model.eval()
    context = model.config.context
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    cache = KVCache(model.config, batch=1, device=device) if use_cache and ids.shape[1] <= context else None
    feed = ids  # what the next forward pass reads: the prompt, then one token at a time
    out = Generation(tokens=[], stopped_on_eos=False)
    for _ in range(max_new_tokens):
        if cache is not None and cache.length + feed.shape[1] <= context:
            logits, _ = model(feed, cache=cache)
        else:
            cache = None  # past the context: slide the window and recompute, no cache
            logits, _ = model(ids[:, -context:])
        last = logits[:, -1, :].float()
        if return_logits:
            out.logits.append(last[0].clone())
        scores = process_logits(last, ids, temperature, top_k, top_p, repetition_penalty)
        if temperature == 0:
            next_id = scores.argmax(dim=-1, keepdim=True)
        else:
            next_id = torch.multinomial(scores.softmax(dim=-1), 1, generator=generator)
        ids = torch.cat([ids, next_id], dim=1)
        feed = next_id
        token = int(next_id)
        out.tokens.append(token)
        if eos_id is not None and token == eos_id:
            out.stopped_on_eos = True
            break
    model.train(was_training)
    return out
