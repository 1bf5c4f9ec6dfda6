"""Perplexity and bits per byte against by-hand computations on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.evals.perplexity import PerplexityConfig, masked_nll, perplexity, sliding_nll, text_nll
from llm_deeper.models.tiny import tiny_llama, tiny_tokenizer

TEXT = "Attention is all you need, said the paper; perplexity is what we measure."


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(seed=3), tiny_tokenizer()


def by_hand_nll(model, ids: list[int], begin: int, t: int) -> float:
    """-log p(ids[t] | ids[begin:t]) from raw logits, log-softmax in float64 numpy."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[begin:t]])).logits[0, -1].double().numpy()
    top = logits.max()
    return float(top + np.log(np.exp(logits - top).sum()) - logits[ids[t]])


def test_single_window_matches_by_hand(tiny):
    model, tok = tiny
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    result = text_nll(model, tok, TEXT, PerplexityConfig(window=512))
    expected = sum(by_hand_nll(model, ids, 0, t) for t in range(1, len(ids)))
    assert result.tokens == len(ids) - 1
    assert result.nll == pytest.approx(expected, rel=1e-5)  # fp32 log-softmax over a ~260-token vocabulary: 4·eps·√V ≈ 8e-6 per token
    assert result.perplexity == pytest.approx(math.exp(expected / (len(ids) - 1)), rel=1e-5)
    assert result.bytes == len(TEXT.encode()) - 1  # byte-level tokenizer: the first byte is context only
    assert result.bits_per_byte == pytest.approx(expected / math.log(2) / result.bytes, rel=1e-6)


def test_sliding_window_scores_each_token_once_with_its_window_context(tiny):
    model, tok = tiny
    ids = tok(TEXT, add_special_tokens=False)["input_ids"][:30]
    window, stride = 8, 3
    got = sliding_nll(model, torch.tensor(ids), window, stride).double().numpy()

    # By hand: token t is scored by the first window [b, min(b+window, n)) (b = 0, 3, 6, ...) that reaches past it.
    def first_begin(t: int) -> int:
        return next(b for b in range(0, len(ids), stride) if min(b + window, len(ids)) > t)

    expected = np.array([by_hand_nll(model, ids, first_begin(t), t) for t in range(1, len(ids))])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # the same windows through the same kernels: a few eps
    full = np.array([by_hand_nll(model, ids, 0, t) for t in range(1, len(ids))])
    assert np.abs(full - expected).max() > 1e-3  # the windows really cut context


def test_uniform_model_has_perplexity_equal_to_vocab_size():
    model, tok = tiny_llama(tie_embeddings=False), tiny_tokenizer()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # all-zero logits: every token has probability 1/V
    result = perplexity(model, tok, [TEXT, "a second, shorter text"], PerplexityConfig(window=16, stride=5))
    assert result.perplexity == pytest.approx(model.config.vocab_size, rel=1e-5)
    assert result.bits_per_byte == pytest.approx(math.log2(model.config.vocab_size), rel=1e-5)  # one byte per token


def test_masked_nll_scores_only_marked_tokens(tiny):
    model, tok = tiny
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    scored = [10 <= i < 20 for i in range(len(ids))]
    result = masked_nll(model, tok, ids, scored, PerplexityConfig(window=512))
    assert result.tokens == 10
    assert result.nll == pytest.approx(sum(by_hand_nll(model, ids, 0, t) for t in range(10, 20)), rel=1e-5)
    assert result.bytes == 10


def test_bad_window_settings_are_user_errors(tiny):
    model, tok = tiny
    with pytest.raises(UserError, match="stride"):
        text_nll(model, tok, TEXT, PerplexityConfig(window=8, stride=8))
    with pytest.raises(UserError, match="shorter than two tokens"):
        perplexity(model, tok, ["a"])
