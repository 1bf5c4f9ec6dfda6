"""Cross-engine parity over HTTP: the same greedy request to two OpenAI-compatible servers, compared token by token.

Eyes are a poor judge here: vLLM in bfloat16 on CPU answered the default
model's chat prompts with fluent nonsense while transformers was right. So the
comparison is by tokens, and where two engines part, it reports the first
position and how close the race was there (top-1 minus top-2 log-probability
in each engine): a near-tie flipped by rounding is not a bug, a wide gap is.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "Explain in one sentence what a CPU does.",
]


@dataclass
class GreedyReply:
    """One greedy answer with its per-token log-probabilities."""

    text: str  # the reply
    tokens: list[str]  # the chosen tokens, as the server spells them
    top: list[list[tuple[str, float]]]  # per position: the two most likely tokens and their log-probabilities
    finish_reason: str | None  # stop or length


@dataclass
class Divergence:
    """Where two greedy replies part."""

    position: int  # index of the first differing token
    a_token: str  # engine A's choice there
    b_token: str  # engine B's choice there
    a_gap: float  # top-1 minus top-2 log-probability in engine A at that position
    b_gap: float  # the same in engine B

    def describe(self, a_name: str = "A", b_name: str = "B") -> str:
        return (f"first divergence at token {self.position}: {a_name} {self.a_token!r} (top-2 gap {self.a_gap:.4f}) vs "
                f"{b_name} {self.b_token!r} (gap {self.b_gap:.4f})")


def greedy_reply(client, model: str, prompt: str, max_tokens: int = 32) -> GreedyReply:
    """Ask once, greedily, with log-probabilities of the top two tokens at each step."""
    response = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                              temperature=0, logprobs=True, top_logprobs=2, seed=0)
    choice = response.choices[0]
    content = choice.logprobs.content if choice.logprobs else []
    tokens = [item.token for item in content]
    top = [[(t.token, t.logprob) for t in item.top_logprobs] for item in content]
    return GreedyReply(choice.message.content or "", tokens, top, choice.finish_reason)


def _gap(top: list[tuple[str, float]]) -> float:
    return top[0][1] - top[1][1] if len(top) >= 2 else float("inf")


def first_divergence(a: GreedyReply, b: GreedyReply) -> Divergence | None:
    """None when the token sequences are equal (up to the shorter one's end, if one stopped at the limit)."""
    for position, (x, y) in enumerate(zip(a.tokens, b.tokens)):
        if x != y:
            gap_a = _gap(a.top[position]) if position < len(a.top) else float("inf")
            gap_b = _gap(b.top[position]) if position < len(b.top) else float("inf")
            return Divergence(position, x, y, gap_a, gap_b)
    if len(a.tokens) != len(b.tokens):
        position = min(len(a.tokens), len(b.tokens))
        longer = a if len(a.tokens) > len(b.tokens) else b
        end = "<end>"
        return Divergence(position, a.tokens[position] if longer is a else end, b.tokens[position] if longer is b else end,
                          float("nan"), float("nan"))
    return None
