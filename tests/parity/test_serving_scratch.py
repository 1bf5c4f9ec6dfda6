"""The serving ideas from scratch (scratch/flash_attention, paged_kv, speculative, batching) against
their references: PyTorch's attention, contiguous caches, plain greedy decoding, exact arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_deeper.scratch.attention import causal_mask
from llm_deeper.scratch.batching import continuous_batching, static_batching
from llm_deeper.scratch.flash_attention import flash_attention
from llm_deeper.scratch.paged_kv import PagedKVCache, paged_attention
from llm_deeper.scratch.speculative import (
    expected_tokens_per_pass, greedy_decode, prompt_lookup_draft, speculative_distribution, speculative_greedy,
)

RNG = np.random.default_rng(0)


def sdpa(q, k, v, mask=None, causal=False):
    t = [torch.from_numpy(x) for x in (q, k, v)]
    m = None if mask is None else torch.from_numpy(mask)
    return torch.nn.functional.scaled_dot_product_attention(*t, attn_mask=m, is_causal=causal).numpy()


@pytest.mark.parametrize("n_q, n_k, block_q, block_k", [(37, 37, 16, 16), (64, 64, 8, 32), (5, 50, 4, 16), (1, 23, 16, 7)])
@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_equals_sdpa(n_q, n_k, block_q, block_k, causal):
    q, k, v = RNG.normal(size=(n_q, 16)), RNG.normal(size=(n_k, 16)), RNG.normal(size=(n_k, 24))
    out, stats = flash_attention(q, k, v, causal=causal, block_q=block_q, block_k=block_k)
    ref = sdpa(q, k, v, mask=causal_mask(n_q, n_k)) if causal else sdpa(q, k, v)
    np.testing.assert_allclose(out, ref, atol=1e-12)  # fp64 throughout: only summation order differs
    assert stats.largest_scores <= block_q * block_k
    tiles = -(-n_q // block_q) * -(-n_k // block_k)
    assert stats.tiles_computed + stats.tiles_skipped == tiles
    assert (stats.tiles_skipped > 0) == (causal and n_q == n_k and n_q > max(block_q, block_k))


def test_flash_attention_survives_huge_scores():
    q = RNG.normal(size=(8, 4)) * 300  # naive exp would overflow; the running max keeps every exponent ≤ 0
    out, _ = flash_attention(q, q, np.eye(8, 4), block_q=4, block_k=2)
    np.testing.assert_allclose(out, sdpa(q, q, np.eye(8, 4)), atol=1e-12)


def fill(cache, seq, tokens, kv_heads=2, head_dim=8):
    k, v = RNG.normal(size=(len(tokens), kv_heads, head_dim)), RNG.normal(size=(len(tokens), kv_heads, head_dim))
    cache.append(seq, tokens, k, v)
    return k, v


def test_paged_cache_reads_back_what_was_written_and_attends_like_a_contiguous_cache():
    cache = PagedKVCache(num_blocks=16, block_size=4, kv_heads=2, head_dim=8)
    written = {}
    for seq, n in (("a", 10), ("b", 3), ("c", 17)):
        assert cache.add_sequence(seq, list(range(100 * len(seq) + n, 100 * len(seq) + 2 * n))) == 0  # nothing to reuse
        written[seq] = fill(cache, seq, [n + i for i in range(n)])
    assert cache.blocks_in_use() == 3 + 1 + 5  # ceil(n / 4) each: at most one partly filled block per sequence
    for seq, (k, v) in written.items():
        keys, values = cache.gather(seq)
        assert np.array_equal(keys, k) and np.array_equal(values, v)
        q = RNG.normal(size=(6, 8))  # 6 query heads over 2 KV heads (GQA)
        ref = sdpa(q[:, None, :], np.repeat(k, 3, axis=1).transpose(1, 0, 2), np.repeat(v, 3, axis=1).transpose(1, 0, 2))[:, 0]
        np.testing.assert_allclose(paged_attention(q, cache, seq), ref, atol=1e-12)


def test_prefix_caching_shares_full_blocks_and_frees_them_lazily():
    cache = PagedKVCache(num_blocks=6, block_size=4, kv_heads=1, head_dim=2)
    system = list(range(10))  # a shared 10-token prefix: two full blocks of 4
    first = system + [50, 51]
    assert cache.add_sequence("a", first) == 0
    k, v = fill(cache, "a", first, kv_heads=1, head_dim=2)
    second = system + [60, 61, 62]
    reused = cache.add_sequence("b", second)
    assert reused == 8  # the two full blocks of the shared prefix; the partial third is never shared
    assert cache.tables["b"] == cache.tables["a"][:2] and cache.refcount[cache.tables["a"][0]] == 2
    fill(cache, "b", second[reused:], kv_heads=1, head_dim=2)
    keys_b, _ = cache.gather("b")
    assert np.array_equal(keys_b[:8], k[:8])  # read through b's table: a's keys
    cache.release("a"), cache.release("b")
    assert cache.blocks_in_use() == 0
    assert cache.add_sequence("c", first) == 8  # released full blocks stay cached
    cache.release("c")
    cache.add_sequence("d", [99] * 24)  # 6 blocks: every cached block is evicted for new tokens
    fill(cache, "d", [99] * 24, kv_heads=1, head_dim=2)
    assert cache.add_sequence("e", first) == 0  # its cached blocks were evicted for d
    with pytest.raises(MemoryError):
        fill(cache, "e", first, kv_heads=1, head_dim=2)


def toy_models(vocab=50, agree=0.7, seed=0):
    """A target and a draft: fixed next-token tables on the last token; the draft agrees with the
    target's arg-max on about `agree` of the tokens."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, vocab))
    noisy = table.copy()
    wrong = rng.random(vocab) > agree
    noisy[wrong] = rng.normal(size=(wrong.sum(), vocab))
    target = lambda ids: table[np.asarray(ids)]  # noqa: E731 (logits for every position)
    draft = lambda ids: int(np.argmax(noisy[ids[-1]]))  # noqa: E731 (its next-token guess)
    return target, draft


@pytest.mark.parametrize("k", [1, 3, 5])
def test_speculative_greedy_equals_greedy_in_fewer_target_passes(k):
    target, draft = toy_models()
    reference = greedy_decode(target, [1, 2, 3], 40)
    tokens, stats = speculative_greedy(target, draft, [1, 2, 3], 40, k=k)
    assert tokens == reference
    assert stats.target_passes < 40 and stats.accepted <= stats.proposed
    perfect, perfect_stats = speculative_greedy(target, lambda ids: int(np.argmax(target(ids)[-1])), [1, 2, 3], 40, k=k)
    assert perfect == reference and perfect_stats.acceptance_rate == 1.0
    assert perfect_stats.target_passes == -(-40 // (k + 1))  # k guesses + the target's own token per pass


def test_prompt_lookup_guesses_what_followed_the_last_ngram():
    guess = prompt_lookup_draft(2)
    assert guess([5, 6, 7, 8, 5, 6]) == 7 and guess([1, 2, 3]) == -1
    copy = list(range(10, 30))
    target = lambda ids: np.eye(64)[[copy[(copy.index(i) + 1) % 20] if i in copy else 10 for i in ids]]  # noqa: E731 (repeats the list)
    tokens, stats = speculative_greedy(target, guess, copy, 20, k=4)
    assert tokens == greedy_decode(target, copy, 20)
    assert stats.accepted >= 15 and stats.target_passes <= 6, stats  # only the first guesses, before an n-gram repeats, miss


def test_speculative_sampling_gives_exactly_the_target_distribution():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(12)), rng.dirichlet(np.ones(12) * 0.3)
        np.testing.assert_allclose(speculative_distribution(p, q), p, atol=1e-15)
    assert expected_tokens_per_pass(0.0, 4) == 1.0 and expected_tokens_per_pass(1.0, 4) == 5.0
    assert abs(expected_tokens_per_pass(0.8, 4) - (1 + 0.8 + 0.64 + 0.512 + 0.4096)) < 1e-12


def test_continuous_batching_needs_fewer_steps_than_static_for_the_same_tokens():
    lengths = [30, 2, 2, 2, 25, 3, 3, 3]
    static, continuous = static_batching(lengths, 4), continuous_batching(lengths, 4)
    assert static.busy_rows == continuous.busy_rows == sum(lengths)
    assert static.steps == 30 + 25 and continuous.steps == 30
    assert continuous.utilization > static.utilization
    assert continuous_batching([5, 5], 4).steps == static_batching([5, 5], 4).steps == 5
