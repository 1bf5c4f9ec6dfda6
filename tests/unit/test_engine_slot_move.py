"""A request that finishes before the others frees its slot: the last one moves into it and keeps decoding,
also after the KV cache grew (its new tensors are made inside inference mode)."""

from __future__ import annotations

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig


def test_first_request_finishing_early_moves_the_last_one(tiny_llama_dir, one_torch_thread):
    engine = Engine.load(str(tiny_llama_dir), max_batch=3)
    try:
        alone = engine.generate("the third one", SamplingConfig(max_new_tokens=12)).token_ids
        long_prompt = "a prompt longer than the cache's first 256 positions " * 6  # byte-level tokens: ~320
        requests = [engine.submit(long_prompt, SamplingConfig(max_new_tokens=2)), engine.submit("middle", SamplingConfig(max_new_tokens=6)),
                    engine.submit("the third one", SamplingConfig(max_new_tokens=12))]
        results = [r.result() for r in requests]  # before the fix: "Inplace update to inference tensor outside InferenceMode"
    finally:
        engine.close()
    assert [r.finish_reason for r in results] == ["length"] * 3
    assert results[2].token_ids == alone  # moved twice, same greedy tokens as decoded alone
