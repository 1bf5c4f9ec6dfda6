"""Prefix caching: KV blocks keyed by token prefix and adapter, reused by later requests, evicted least recently used.

The contract: with the cache, greedy output equals output without it token for token
(through LoRA rows, chunked prefill, n choices of one prompt and constrained decoding),
and a prefix computed under one adapter is never served to another.
"""

from __future__ import annotations

import time

import pytest
import torch

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.kv_cache import SlotKVCache
from llm_deeper.inference.prefix_cache import BLOCK_TOKENS, PrefixCache
from llm_deeper.inference.sampling import SamplingConfig

GREEDY = SamplingConfig(max_new_tokens=12, temperature=0.0, ignore_eos=True)
SYSTEM = {"role": "system", "content": "You answer with tools. " * 6}  # ~140 byte-level tokens: 8 full blocks


def _chat(question: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": question}]


# -- the store on its own -----------------------------------------------------------
def _filled_cache(length: int) -> SlotKVCache:
    cache = SlotKVCache(layers=2, slots=3, kv_heads=2, head_dim=4, max_len=256, dtype=torch.float32)
    cache.grow(length)
    for tensor in cache.keys + cache.values:
        tensor.normal_()
    return cache


def _store(blocks: int) -> PrefixCache:
    return PrefixCache(layers=2, kv_heads=2, head_dim=4, dtype=torch.float32, budget_bytes=blocks * BLOCK_TOKENS * 2 * 2 * 2 * 4 * 4)


def test_a_match_is_whole_blocks_of_the_same_tokens_under_the_same_adapter():
    store, cache = _store(64), _filled_cache(100)
    ids = list(range(50))
    store.save(None, ids, 50, cache, slot=0)
    assert store.cached_tokens == 48  # full blocks only
    match = store.match(None, ids)
    assert match.tokens == 48
    store.load(match, cache, slot=1)
    for tensor in cache.keys + cache.values:
        assert torch.equal(tensor[1, :, :48], tensor[0, :, :48]) and not torch.equal(tensor[1, :, 48:50], tensor[0, :, 48:50])
    assert store.match(None, ids[:48]).tokens == 32, "the prompt's last token is always computed (its logits start the reply)"
    changed = ids[:20] + [999] + ids[21:]
    assert store.match(None, changed).tokens == 16, "a block matches only after identical blocks"
    assert store.match("sql", ids).tokens == 0, "a prefix cached for the base model is not an adapter's"
    assert store.stats()["lookups"] == 4 and store.stats()["hits"] == 3


def test_eviction_keeps_the_budget_and_drops_the_least_recently_used_leaves_first():
    store, cache = _store(4), _filled_cache(100)
    first, second = list(range(49)), [7] + list(range(1, 49))
    store.save(None, first, 49, cache, slot=0)  # 3 blocks
    store.save(None, second, 49, cache, slot=1)  # 3 more in a budget of 4: two of the first prompt's go
    assert store.cached_tokens == 4 * BLOCK_TOKENS and store.evictions == 2
    assert store.match(None, second).tokens == 48
    assert store.match(None, first).tokens == 16, "the first prompt lost its last blocks, not its first"
    store.load(store.match(None, second), cache, slot=2)
    for tensor in cache.keys + cache.values:
        assert torch.equal(tensor[2, :, :48], tensor[1, :, :48]), "evicted rows were reused without mixing prompts"
    too_long = list(range(100, 200))
    store.save(None, too_long, 100, cache, slot=0)  # 6 blocks never fit: it keeps what fits, evicting the others
    assert store.match(None, too_long).tokens == 4 * BLOCK_TOKENS and store.cached_tokens == 4 * BLOCK_TOKENS


def test_a_zero_budget_caches_nothing():
    store, cache = _store(0), _filled_cache(40)
    store.save(None, list(range(40)), 40, cache, slot=0)
    assert store.match(None, list(range(40))).tokens == 0 and store.cached_tokens == 0


# -- through the engine ---------------------------------------------------------------
@pytest.fixture(scope="module")
def engines(tiny_llama_dir, one_torch_thread):
    cached = Engine.load(str(tiny_llama_dir), max_batch=4)
    plain = Engine.load(str(tiny_llama_dir), max_batch=4, prefix_cache=False)
    yield cached, plain
    cached.close()
    plain.close()


def test_turns_sharing_a_system_prompt_reuse_it_and_answer_as_without_the_cache(engines):
    cached, plain = engines
    assert plain.prefix is None and plain.stats()["prefix_cache"] == {"enabled": False}
    results = []
    for question in ("What is 2+2?", "What is 3+3?", "Spell cat."):
        result = cached.generate(_chat(question), GREEDY)
        assert result.token_ids == plain.generate(_chat(question), GREEDY).token_ids
        results.append(result)
    assert results[1].usage.cached_tokens >= 8 * BLOCK_TOKENS and results[1].usage.cached_tokens % BLOCK_TOKENS == 0
    # The next turn of a conversation starts with the last one, reply included.
    follow_up = _chat("What is 2+2?") + [{"role": "assistant", "content": results[0].text}, {"role": "user", "content": "And 5+5?"}]
    turn = cached.generate(follow_up, GREEDY)
    assert turn.token_ids == plain.generate(follow_up, GREEDY).token_ids
    assert turn.usage.cached_tokens > results[1].usage.cached_tokens
    stats = cached.stats()["prefix_cache"]
    assert stats["hit_tokens"] > 0 and 0 < stats["hit_rate"] < 1


def test_the_first_token_goes_out_before_the_prompts_blocks_are_saved(engines, monkeypatch):
    # Saving copies the prompt's KV (46 MB for 1,000 tokens of the default model): not on the time to first token.
    cached, _ = engines
    events, saves = [], []
    save = cached.prefix.save
    monkeypatch.setattr(cached.prefix, "save", lambda *args: saves.append((args[2], len(events))) or save(*args))
    prompt = _chat("Which comes first?")
    request = cached.submit(prompt, GREEDY, sink=events.append)
    while not request.finished:
        time.sleep(0.01)
    prompt_length = len(cached.encode(prompt))
    assert saves and saves[0] == (prompt_length, 1)  # the whole prompt saved once its first token was delivered


def test_n_choices_of_one_prompt_reuse_the_first_ones_prefill(engines):
    cached, plain = engines
    prompt = _chat("Tell me about n choices.")
    requests = [cached.submit(prompt, GREEDY) for _ in range(3)]  # admitted together, before any prefill ran
    results = [r.result() for r in requests]
    expected = plain.generate(prompt, GREEDY).token_ids
    assert all(r.token_ids == expected for r in results)
    assert [r.usage.cached_tokens > 0 for r in results] == [True, True, True]  # the system prompt was cached before
    assert results[1].usage.cached_tokens == (len(cached.encode(prompt)) - 1) // BLOCK_TOKENS * BLOCK_TOKENS


def test_chunked_prefill_saves_and_reuses_blocks_between_decode_steps(tiny_llama_dir, one_torch_thread):
    engine = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=16)
    plain = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=16, prefix_cache=False)
    try:
        long_run = SamplingConfig(max_new_tokens=200, temperature=0.0, ignore_eos=True)
        for current in (engine, plain):
            running = current.submit([{"role": "user", "content": "hi"}], long_run)
            next(running.events())  # a stream is decoding: the long prompts below go in 16-token chunks
            first = current.submit(_chat("chunk one"), GREEDY).result()
            second = current.submit(_chat("chunk two"), GREEDY).result()
            running.cancel()
            if current is engine:
                got = (first.token_ids, second.token_ids)
                assert second.usage.cached_tokens >= 8 * BLOCK_TOKENS
        assert got == (first.token_ids, second.token_ids)
    finally:
        engine.close()
        plain.close()


def test_constrained_rows_on_a_cached_prefix_answer_as_without_it(engines):
    import json

    from llm_deeper.inference.constrained import Constraint

    cached, plain = engines
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    config = SamplingConfig(max_new_tokens=30, temperature=0.0, constraint=Constraint.json_schema(schema))
    prompt = _chat("Answer as JSON.")
    cached.generate(prompt, GREEDY)  # warm the cache with this very prompt
    result = cached.generate(prompt, config)
    assert result.usage.cached_tokens > 0
    assert result.token_ids == plain.generate(prompt, config).token_ids
    assert isinstance(json.loads(result.text)["ok"], bool)


def test_adapters_never_share_a_prefix_and_answer_as_without_the_cache(tiny_llama_dir, tmp_path, one_torch_thread):
    from test_engine_core import _make_adapter

    adapters = {"a": _make_adapter(tmp_path / "a", 1, ["q_proj", "k_proj", "v_proj"]), "b": _make_adapter(tmp_path / "b", 2, ["k_proj", "down_proj"])}
    engine = Engine.load(str(tiny_llama_dir), loras=adapters, max_batch=4)
    plain = Engine.load(str(tiny_llama_dir), loras=adapters, max_batch=4, prefix_cache=False)
    try:
        prompt = _chat("adapters")
        assert engine.generate(prompt, GREEDY).usage.cached_tokens == 0
        for name in ("a", "b"):
            first = engine.generate(prompt, GREEDY, adapter=name)
            assert first.usage.cached_tokens == 0, f"adapter {name} got KV cached under another model"
            again = engine.generate(prompt, GREEDY, adapter=name)
            assert again.usage.cached_tokens > 0
            expected = plain.generate(prompt, GREEDY, adapter=name).token_ids
            assert first.token_ids == again.token_ids == expected
        # base and adapter rows in one batch, each on its own cached prefix
        requests = [engine.submit(_chat("mixed"), GREEDY, adapter=name) for name in (None, "a", "b", "a")]
        expected = [plain.generate(_chat("mixed"), GREEDY, adapter=name).token_ids for name in (None, "a", "b", "a")]
        assert [r.result().token_ids for r in requests] == expected
    finally:
        engine.close()
        plain.close()


def test_a_small_budget_evicts_and_output_stays_the_same(tiny_llama_dir, one_torch_thread):
    per_block = SlotKVCache.bytes_per_token(2, 2, 16, 4) * BLOCK_TOKENS  # tiny llama: 2 layers, 2 KV heads of 16, fp32
    engine = Engine.load(str(tiny_llama_dir), max_batch=2, prefix_cache_mib=12 * per_block / 2**20)
    plain = Engine.load(str(tiny_llama_dir), max_batch=2, prefix_cache=False)
    try:
        assert engine.stats()["prefix_cache"]["budget_tokens"] == 12 * BLOCK_TOKENS
        systems = [{"role": "system", "content": f"Persona {i}. " * 12} for i in range(3)]
        for system in systems + systems:  # each prompt needs ~9 blocks: the budget holds one at a time
            prompt = [system, {"role": "user", "content": "hi"}]
            assert engine.generate(prompt, GREEDY).token_ids == plain.generate(prompt, GREEDY).token_ids
        stats = engine.stats()["prefix_cache"]
        assert stats["evictions"] > 0 and stats["cached_tokens"] <= 12 * BLOCK_TOKENS
        assert "MiB" in engine.prefix.describe() and "192 tokens" in engine.prefix.describe()
    finally:
        engine.close()
        plain.close()
