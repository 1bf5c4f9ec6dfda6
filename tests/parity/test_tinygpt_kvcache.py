"""TinyGPT decoding: KV cache vs no cache, and our logit processors vs transformers'."""

from __future__ import annotations

import pytest
import torch

from llm_deeper.scratch.tinygpt import KVCache, TinyGPT, TinyGPTConfig
from llm_deeper.scratch.tinygpt_sampling import apply_repetition_penalty, apply_top_k, apply_top_p, generate, process_logits


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(flavor: str, context: int = 24) -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(TinyGPTConfig(vocab_size=97, context=context, n_layer=2, n_head=2, n_embd=32, flavor=flavor)).eval()


@pytest.mark.parametrize("flavor", ["llama", "gpt2"])
def test_cached_and_uncached_greedy_give_same_tokens_and_logits(flavor):
    model = tiny(flavor)
    prompt = [5, 17, 42, 8]
    cached = generate(model, prompt, 30, temperature=0, use_cache=True, return_logits=True)  # 34 > context 24: window slides
    plain = generate(model, prompt, 30, temperature=0, use_cache=False, return_logits=True)
    assert cached.tokens == plain.tokens
    diff = max((a - b).abs().max().item() for a, b in zip(cached.logits, plain.logits))
    assert diff < 1e-5


def test_cache_prefill_in_two_chunks_equals_one_pass():
    """Feeding 5 then 3 tokens through the cache (the masked, offset path) equals one 8-token pass."""
    model = tiny("llama")
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    full, _ = model(ids)
    cache = KVCache(model.config, batch=1)
    first, _ = model(ids[:, :5], cache=cache)
    second, _ = model(ids[:, 5:], cache=cache)
    assert cache.length == 8
    assert torch.allclose(torch.cat([first, second], dim=1), full, atol=1e-5)  # tiny fp32 model, logits O(1): 4·eps·√(width·layers) ≈ 5e-6


def test_sampling_is_reproducible_and_stops_at_eos():
    model = tiny("llama")
    a = generate(model, [1, 2], 20, temperature=1.0, top_k=10, top_p=0.9, seed=3)
    b = generate(model, [1, 2], 20, temperature=1.0, top_k=10, top_p=0.9, seed=3)
    assert a.tokens == b.tokens
    eos = a.tokens[4]
    c = generate(model, [1, 2], 20, temperature=1.0, top_k=10, top_p=0.9, seed=3, eos_id=eos)
    assert c.stopped_on_eos and c.tokens[-1] == eos and len(c.tokens) <= 5


def test_logit_processors_equal_transformers():
    from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    torch.manual_seed(1)
    logits = torch.randn(3, 50) * 3
    context = torch.randint(0, 50, (3, 12))
    assert torch.equal(apply_repetition_penalty(logits, context, 1.3), RepetitionPenaltyLogitsProcessor(1.3)(context, logits.clone()))
    assert torch.equal(apply_top_k(logits, 7), TopKLogitsWarper(7)(context, logits.clone()))
    assert torch.equal(apply_top_p(logits, 0.8), TopPLogitsWarper(0.8)(context, logits.clone()))
    ours = process_logits(logits, context, temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.2)
    theirs = logits.clone()
    for proc in (RepetitionPenaltyLogitsProcessor(1.2), TemperatureLogitsWarper(0.7), TopKLogitsWarper(20), TopPLogitsWarper(0.9)):
        theirs = proc(context, theirs)
    assert torch.allclose(ours, theirs, atol=1e-6, equal_nan=False)  # elementwise ops on the same values: a few eps of O(1) logits
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))


def test_kv_cache_refuses_overflow():
    model = tiny("gpt2", context=8)
    cache = KVCache(model.config, batch=1)
    model(torch.zeros(1, 8, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)
