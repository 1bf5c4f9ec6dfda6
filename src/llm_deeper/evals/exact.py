"""Exact match and "contains" for short answers.

Both compare normalized text (SQuAD convention: lower case, no punctuation, no
articles a/an/the, single spaces), so "Paris." matches "paris". Exact match
is strict: a correct answer inside a sentence fails it. "Contains" forgives
the sentence, and therefore also forgives "It is not Paris".
"""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation and articles, squeeze whitespace."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def contains(prediction: str, reference: str) -> float:
    """1.0 when the normalized reference appears in the normalized prediction as whole words."""
    ref = normalize_answer(reference)
    if not ref:
        return float(not normalize_answer(prediction))
    return float(f" {ref} " in f" {normalize_answer(prediction)} ")


def exact_scores(prediction: str, reference: str) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py`."""
    return {"exact_match": (exact_match(prediction, reference), 1.0), "contains": (contains(prediction, reference), 1.0)}
