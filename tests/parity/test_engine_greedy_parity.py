"""The engine's greedy output equals transformers' `generate`, token for token, in fp32."""

from __future__ import annotations

import pytest
import torch

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count to five."}],
    [{"role": "user", "content": "Écris un haïku sur la mer 🌊"}],
]


def hf_greedy(model, ids: list[int], new_tokens: int, eos) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=new_tokens,
                             do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=eos[0], eos_token_id=eos)
    return out[0, len(ids):].tolist()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_tiny_models_match_generate_in_a_shared_batch(tmp_path, arch):
    """All prompts decode together (continuous batching) and each still equals its own `generate`."""
    from llm_deeper.models.tiny import save_tiny_model

    folder = save_tiny_model(tmp_path / arch, arch=arch, seed=3)
    engine = Engine.load(str(folder), max_batch=4)
    try:
        config = SamplingConfig(max_new_tokens=40, temperature=0.0)
        requests = [engine.submit(p, config) for p in PROMPTS]
        results = [r.result() for r in requests]
        for prompt, result in zip(PROMPTS, results):
            expected = hf_greedy(engine.model, engine.encode(prompt), 40, sorted(engine.stop_ids))
            assert result.token_ids == expected
            assert result.usage.completion_tokens == len(expected)
    finally:
        engine.close()


@pytest.mark.slow
def test_default_model_matches_generate(default_model):
    engine = Engine(default_model, max_batch=2)
    try:
        prompts = PROMPTS[:2]
        requests = [engine.submit(p, SamplingConfig(max_new_tokens=32, temperature=0.0)) for p in prompts]
        for prompt, request in zip(prompts, requests):
            result = request.result()
            expected = hf_greedy(default_model.model, engine.encode(prompt), 32, sorted(engine.stop_ids))
            assert result.token_ids == expected
        assert "Paris" in engine.generate(PROMPTS[0], SamplingConfig(max_new_tokens=24)).text
    finally:
        engine.close()
