"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum through Google's `rouge-score`.

ROUGE counts overlapping words (n-grams, longest common subsequence) between
a prediction and a reference. It rewards copying the reference's words and
misses a paraphrase that uses other words for the same meaning.

Notes on `rouge-score`: its default tokenizer lower-cases, keeps only ASCII
letters and digits (other characters are dropped), and needs no nltk data;
ROUGE-Lsum splits summaries into sentences on newlines.
"""

from __future__ import annotations

from functools import lru_cache

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@lru_cache(maxsize=2)
def _scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)


def rouge(prediction: str, reference: str, use_stemmer: bool = False) -> dict[str, float]:
    """F-measure of each ROUGE type for one pair (the usual headline number)."""
    result = _scorer(use_stemmer).score(reference, prediction)  # rouge-score takes (target, prediction)
    return {name: float(result[name].fmeasure) for name in ROUGE_TYPES}


def rouge_detail(prediction: str, reference: str, use_stemmer: bool = False) -> dict[str, dict[str, float]]:
    """Precision, recall and F-measure of each ROUGE type for one pair."""
    result = _scorer(use_stemmer).score(reference, prediction)
    return {name: {"precision": s.precision, "recall": s.recall, "f": s.fmeasure} for name, s in result.items()}


def rouge_scores(prediction: str, reference: str, use_stemmer: bool = False) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py`."""
    return {name: (value, 1.0) for name, value in rouge(prediction, reference, use_stemmer).items()}
