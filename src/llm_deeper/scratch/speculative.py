"""Speculative decoding from scratch: a cheap draft proposes, the target model verifies.

Decoding is one target forward pass per token, and each pass reads every weight for very
little arithmetic. Speculative decoding (Leviathan et al. 2023; Chen et al. 2023) lets a cheap
*draft* guess k tokens, then runs the target once over all k: one pass scores every guess. The
longest run of guesses the target agrees with is kept, plus the target's own next token, so each
target pass yields between 1 and k + 1 tokens.

Greedy: a guess is accepted when it is the target's arg-max, so the output is exactly the
target's greedy output, only in fewer passes. Sampling: guess x (drawn from the draft's q) is
accepted with probability min(1, p(x)/q(x)); on rejection a token is drawn from the residual
max(0, p − q), renormalized. `speculative_distribution` shows that this gives exactly p.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NextLogits = Callable[[list[int]], np.ndarray]  # token ids → logits [len(ids), vocab] for every position
DraftNext = Callable[[list[int]], int]  # token ids → the draft's guess for the next token


@dataclass
class SpeculativeStats:
    """What one speculative run cost, in passes, and what the draft got right."""

    target_passes: int = 0  # forward passes of the target model
    draft_passes: int = 0  # forward passes of the draft
    proposed: int = 0  # draft tokens put to the target
    accepted: int = 0  # draft tokens the target agreed with

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


def greedy_decode(target: NextLogits, prompt: list[int], new_tokens: int) -> list[int]:
    """Plain greedy decoding: one target pass per token (the reference)."""
    ids = list(prompt)
    for _ in range(new_tokens):
        ids.append(int(np.argmax(target(ids)[-1])))
    return ids[len(prompt):]


def speculative_greedy(target: NextLogits, draft: DraftNext, prompt: list[int], new_tokens: int,
                       k: int = 4) -> tuple[list[int], SpeculativeStats]:
    """Greedy speculative decoding; returns (the new tokens, stats). Equal to `greedy_decode(target, …)`."""
    ids, stats = list(prompt), SpeculativeStats()
    while len(ids) - len(prompt) < new_tokens:
        guesses = []
        for _ in range(min(k, new_tokens - (len(ids) - len(prompt)))):
            guess = int(draft(ids + guesses))
            stats.draft_passes += 1
            if guess < 0:  # the draft has no guess: verify what there is
                break
            guesses.append(guess)
        logits = target(ids + guesses)  # one pass scores every guess and the token after them
        stats.target_passes += 1
        stats.proposed += len(guesses)
        wanted = [int(t) for t in np.argmax(logits[len(ids) - 1:], axis=-1)]  # the target's pick at each guess
        agree = 0
        while agree < len(guesses) and guesses[agree] == wanted[agree]:
            agree += 1
        stats.accepted += agree
        ids += guesses[:agree] + [wanted[agree]]  # the target's own token after the last accepted guess
    return ids[len(prompt):len(prompt) + new_tokens], stats


def prompt_lookup_draft(n: int = 2) -> DraftNext:
    """A draft with no model (prompt lookup, vLLM's "ngram" method): find the last `n` tokens
    earlier in the sequence and guess the token that followed them there; -1 (never right) if absent.
    It pays off when the reply copies the prompt: quoting, editing, filling a schema."""

    def guess(ids: list[int]) -> int:
        tail = ids[-n:]
        for start in range(len(ids) - n - 1, -1, -1):  # the most recent earlier occurrence
            if ids[start:start + n] == tail:
                return ids[start + n]
        return -1

    return guess


def speculative_distribution(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The exact distribution of one speculative sampling step (draft q, target p), summed over every draft token.

    P(out = x) = q(x)·min(1, p(x)/q(x)) + P(reject)·residual(x), with residual ∝ max(0, p − q).
    """
    accepted = np.minimum(q, p)  # q(x)·min(1, p(x)/q(x))
    reject = 1.0 - accepted.sum()
    residual = np.maximum(p - q, 0.0)
    return accepted + (reject * residual / residual.sum() if residual.sum() > 0 else 0.0)


def expected_tokens_per_pass(alpha: float, k: int) -> float:
    """Expected tokens per target pass when each guess is accepted independently with rate alpha:
    (1 − α^(k+1)) / (1 − α) (Leviathan et al. 2023, eq. 1)."""
    return k + 1.0 if alpha >= 1.0 else (1 - alpha ** (k + 1)) / (1 - alpha)
