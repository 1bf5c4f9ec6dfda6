"""Turn one row of logits into the next token: penalties, then greedy or sampling.

The engine calls `pick_token` once per running request per decode step, so each
request keeps its own settings (temperature, top-p, penalties, seed) inside a
shared batch.
"""

from __future__ import annotations

from .sampling import SamplingConfig


def apply_penalties(logits, config: SamplingConfig, prompt_ids: list[int], output_counts: dict[int, int]):
    """Penalise tokens already seen; returns new logits (the input is not changed).

    - repetition (transformers' rule, over prompt and reply): positive logits
      are divided by the penalty, negative ones multiplied, so the token always
      becomes less likely;
    - frequency and presence (OpenAI's rule, over the reply only): subtract
      `frequency × count + presence × (count > 0)`.
    """
    import torch

    needs_repetition = config.repetition_penalty != 1.0
    needs_openai = (config.frequency_penalty != 0.0 or config.presence_penalty != 0.0) and output_counts
    if not needs_repetition and not needs_openai:
        return logits
    logits = logits.clone()
    if needs_repetition:
        seen = torch.tensor(sorted(set(prompt_ids) | set(output_counts)), dtype=torch.long)
        if len(seen):
            values = logits[seen]
            logits[seen] = torch.where(values > 0, values / config.repetition_penalty, values * config.repetition_penalty)
    if needs_openai:
        ids = torch.tensor(list(output_counts), dtype=torch.long)
        counts = torch.tensor(list(output_counts.values()), dtype=logits.dtype)
        logits[ids] -= config.frequency_penalty * counts + config.presence_penalty
    return logits


def pick_token(logits, config: SamplingConfig, generator=None) -> int:
    """Greedy arg-max at temperature 0; otherwise temperature, top-k, top-p, then a draw."""
    import torch

    if config.greedy or config.temperature < 1e-4:  # a vanishing temperature is greedy (and avoids inf/inf)
        return int(torch.argmax(logits))
    scores = logits.float() / config.temperature
    if config.top_k and config.top_k < scores.numel():
        kth = torch.topk(scores, config.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(-1)
        # Drop a token when the mass before it already reaches top_p (the first always stays).
        drop = (cumulative - torch.softmax(sorted_scores, dim=-1)) >= config.top_p
        scores = scores.scatter(0, order, sorted_scores.masked_fill(drop, float("-inf")))
    probs = torch.softmax(scores, dim=-1)
    if not bool(torch.isfinite(probs).all()):  # extreme penalties can overflow: fall back to the best token
        return int(torch.argmax(logits))
    return int(torch.multinomial(probs, 1, generator=generator))


def top_logprobs(logits, chosen: int, k: int) -> tuple[float, list[tuple[int, float]]]:
    """Log-probability of the chosen token and the k most likely alternatives (raw model distribution)."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    best = torch.topk(logp, k) if k else None
    alternatives = [(int(i), float(v)) for v, i in zip(best.values, best.indices)] if best is not None else []
    return float(logp[chosen]), alternatives
