"""Chunked prefill: a long prompt goes into the cache in chunks, with decode steps of running streams between them."""

from __future__ import annotations

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.inference.engine import Engine
from llm_deeper.inference.runners import causal_after_cached, make_runner
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.models.loaders import load_hf_folder

GREEDY = SamplingConfig(max_new_tokens=12, temperature=0.0, ignore_eos=True)


def test_runner_prefill_in_chunks_equals_prefill_whole(tiny_llama_dir):
    model, _ = load_hf_folder(tiny_llama_dir)
    ids = list(range(10, 110))
    whole = make_runner(model, 2, 256).prefill(0, ids, None)
    runner = make_runner(model, 2, 256)
    for start in range(0, 100, 33):
        chunked = runner.prefill(1, ids[: start + 33], None, start=start)
    assert torch.allclose(chunked, whole, atol=1e-5, rtol=1e-4)  # fp32, other matmul shapes: relative rounding ~4·eps·√(width·layers) ≪ 1e-4
    # the cache holds the same keys as a whole prefill would have written
    reference = make_runner(model, 2, 256)
    reference.prefill(1, ids, None)
    assert torch.allclose(runner.cache.keys[0][1, :, :100], reference.cache.keys[0][1, :, :100], atol=1e-5)  # layer 0: one projection of O(1) values


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.bfloat16, 2e-2)])
def test_chunk_after_cached_positions_attends_as_one_masked_attention(dtype, tolerance):
    """The chunk's two attentions (past, own causal), merged by log-sum-exp, equal one SDPA under the causal mask."""
    torch.manual_seed(0)
    past, length = 40, 70
    q = torch.randn(1, 6, length, 16, dtype=dtype)  # 6 query heads over 2 KV heads
    keys, values = torch.randn(1, 2, past + length, 16, dtype=dtype), torch.randn(1, 2, past + length, 16, dtype=dtype)
    mask = torch.arange(past + length).unsqueeze(0) <= torch.arange(past, past + length).unsqueeze(1)
    expected = torch.nn.functional.scaled_dot_product_attention(q.float(), keys.float(), values.float(), attn_mask=mask, scale=0.25, enable_gqa=True)
    got = causal_after_cached(q, keys[:, :, past:], values[:, :, past:], keys[:, :, :past], values[:, :, :past], 0.25, mask)
    assert got.dtype == dtype and got.shape == expected.shape
    # fp32: both sum the same products in another order (~eps · √length relative); bf16: the inputs' own rounding dominates
    assert torch.allclose(got.float(), expected, atol=tolerance, rtol=tolerance)


def test_long_prompt_is_prefilled_between_decode_steps_and_outputs_stay_greedy(tiny_llama_dir):
    loaded_engine = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=16)
    plain = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=10_000)
    calls: list[tuple] = []
    prefill, decode = loaded_engine.runner.prefill, loaded_engine.runner.decode

    def spy_prefill(slot, ids, adapter, start=0):
        calls.append(("prefill", slot, start, len(ids)))
        return prefill(slot, ids, adapter, start=start)

    def spy_decode(tokens, positions, adapters):
        calls.append(("decode", len(tokens)))
        return decode(tokens, positions, adapters)

    loaded_engine.runner.prefill, loaded_engine.runner.decode = spy_prefill, spy_decode
    short = [{"role": "user", "content": "hi"}]
    long = [{"role": "user", "content": "a long question " * 12}]
    try:
        running = loaded_engine.submit(short, SamplingConfig(max_new_tokens=300, temperature=0.0, ignore_eos=True))
        first_event = next(running.events())  # the short request is decoding
        long_request = loaded_engine.submit(long, GREEDY)
        long_result, short_result = long_request.result(), running.result()
        chunks = [c for c in calls if c[0] == "prefill" and c[1] == 1]  # the long prompt sits in slot 1
        assert len(chunks) >= 3 and [c[2] for c in chunks] == list(range(0, 16 * len(chunks), 16))
        first, last = calls.index(chunks[0]), calls.index(chunks[-1])
        assert any(c[0] == "decode" for c in calls[first:last])  # the running stream kept decoding meanwhile
        assert long_result.token_ids == plain.generate(long, GREEDY).token_ids
        assert first_event.token_ids + short_result.token_ids == plain.generate(short, SamplingConfig(max_new_tokens=300, temperature=0.0, ignore_eos=True)).token_ids
    finally:
        loaded_engine.close()
        plain.close()


def test_finishing_and_cancelled_requests_keep_prefilling_slots_right(tiny_llama_dir):
    """Requests leave while others are mid-prompt: every result still equals its own solo greedy run."""
    engine = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=8)
    solo = Engine.load(str(tiny_llama_dir), max_batch=1)
    prompts = [[{"role": "user", "content": f"question {i} " + "x y " * (3 + 5 * i)}] for i in range(4)]
    lengths = [3, 20, 12, 16]
    try:
        doomed = engine.submit(prompts[0], SamplingConfig(max_new_tokens=200, temperature=0.0, ignore_eos=True))
        requests = [engine.submit(p, SamplingConfig(max_new_tokens=n, temperature=0.0, ignore_eos=True)) for p, n in zip(prompts[1:], lengths[1:])]
        doomed.cancel()
        assert doomed.result().finish_reason == "cancelled"
        for prompt, n, request in zip(prompts[1:], lengths[1:], requests):
            expected = solo.generate(prompt, SamplingConfig(max_new_tokens=n, temperature=0.0, ignore_eos=True)).token_ids
            assert request.result().token_ids == expected
    finally:
        engine.close()
        solo.close()


def test_prefill_chunk_must_be_positive(tiny_llama_dir):
    with pytest.raises(UserError, match="prefill chunk"):
        Engine.load(str(tiny_llama_dir), prefill_chunk=0)


def test_a_long_prompt_alone_is_prefilled_whole(tiny_llama_dir):
    """Chunks only keep running streams moving: with none running, one forward takes the whole prompt."""
    engine = Engine.load(str(tiny_llama_dir), max_batch=4, prefill_chunk=16)
    calls: list[tuple[int, int]] = []
    prefill = engine.runner.prefill

    def spy_prefill(slot, ids, adapter, start=0):
        calls.append((start, len(ids)))
        return prefill(slot, ids, adapter, start=start)

    engine.runner.prefill = spy_prefill
    prompt = [{"role": "user", "content": "a long question " * 12}]
    try:
        result = engine.generate(prompt, GREEDY)
        prompt_length = len(engine.encode(prompt))
        assert calls == [(0, prompt_length)] and prompt_length > 16
        assert len(result.token_ids) == GREEDY.max_new_tokens
    finally:
        engine.close()
