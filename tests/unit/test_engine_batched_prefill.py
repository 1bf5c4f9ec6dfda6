"""Several admitted prompts are prefilled in one forward (Runner.prefill_many), and answer as if prefilled alone."""

from __future__ import annotations

import torch

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.runners import PromptChunk, make_runner
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.models.loaders import load_hf_folder

GREEDY = SamplingConfig(max_new_tokens=12, temperature=0.0, ignore_eos=True)


def test_prompts_stacked_in_one_forward_equal_each_prefilled_alone(tiny_llama_dir, tmp_path, one_torch_thread):
    from test_engine_core import _make_adapter

    from llm_deeper.inference.lora import load_lora

    model, _ = load_hf_folder(tiny_llama_dir)
    adapters = {"a": load_lora("a", _make_adapter(tmp_path / "a", 1, ["q_proj", "v_proj", "down_proj"]), torch.float32)}
    first, second, third = list(range(10, 47)), list(range(60, 65)), list(range(3, 30))
    alone = make_runner(model, 4, 256, adapters)
    expected = [alone.prefill(0, first, None), alone.prefill(1, second, "a")]
    alone.prefill(2, third[:20], None)
    expected.append(alone.prefill(2, third, None, start=20))  # a later chunk after cached positions
    together = make_runner(model, 4, 256, adapters)
    together.prefill(2, third[:20], None)
    logits = together.prefill_many([PromptChunk(0, first, None), PromptChunk(1, second, "a"), PromptChunk(2, third, None, 20)])
    assert logits.shape == (3, model.config.vocab_size)
    # fp32, other matmul shapes (37 + 5 + 7 rows instead of each alone): rounding ~4·eps·√(width·layers) ≪ 1e-4
    for row, want in zip(logits, expected):
        assert torch.allclose(row, want, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(logits[1], alone.prefill(3, second, None), atol=1e-3), "the adapter's rows got its update"
    for slot, length in ((0, len(first)), (1, len(second)), (2, len(third))):
        for layer in (0, -1):
            assert torch.allclose(together.cache.keys[layer][slot, :, :length], alone.cache.keys[layer][slot, :, :length], atol=1e-5)
            assert torch.allclose(together.cache.values[layer][slot, :, :length], alone.cache.values[layer][slot, :, :length], atol=1e-5)


def _spy_on_prefills(engine: Engine) -> list[list[tuple[int, int]]]:
    """Record each prefill forward as [(start, stop) of each prompt in it]."""
    calls: list[list[tuple[int, int]]] = []
    prefill_many = engine.runner.prefill_many

    def spy(chunks):
        calls.append([(chunk.start, len(chunk.ids)) for chunk in chunks])
        return prefill_many(chunks)

    engine.runner.prefill_many = spy
    return calls


def _submit_together(engine: Engine, prompts: list, config: SamplingConfig) -> list:
    """Submit while the scheduler cannot admit, so it finds every prompt waiting at once."""
    with engine._cv:  # the scheduler admits under this (reentrant) lock
        return [engine.submit(prompt, config) for prompt in prompts]


def test_prompts_arriving_together_share_one_forward_and_answer_as_alone(tiny_llama_dir, one_torch_thread):
    engine = Engine.load(str(tiny_llama_dir), max_batch=4, prefix_cache=False)
    solo = Engine.load(str(tiny_llama_dir), max_batch=1, prefix_cache=False)
    prompts = [[{"role": "user", "content": f"question number {i}: " + "why " * i}] for i in range(4)]
    try:
        calls = _spy_on_prefills(engine)
        requests = _submit_together(engine, prompts, GREEDY)
        results = [r.result() for r in requests]
        assert calls == [[(0, len(engine.encode(p))) for p in prompts]]  # one forward for all four prompts
        for prompt, result in zip(prompts, results):
            assert result.token_ids == solo.generate(prompt, GREEDY).token_ids
    finally:
        engine.close()
        solo.close()


def test_a_prompt_sharing_uncached_blocks_waits_for_the_next_wave_and_a_wave_stops_at_prefill_chunk(tiny_llama_dir, one_torch_thread):
    engine = Engine.load(str(tiny_llama_dir), max_batch=5, prefill_chunk=256)
    plain = Engine.load(str(tiny_llama_dir), max_batch=1, prefix_cache=False)
    system = {"role": "system", "content": "Shared rules. " * 5}  # ~80 tokens: 5 full blocks the cache lacks at first
    prompts = ([[system, {"role": "user", "content": q}] for q in ("one", "two")]
               + [[{"role": "user", "content": c * n}] for c, n in (("x", 30), ("y", 40), ("z", 190))])
    try:
        calls = _spy_on_prefills(engine)
        requests = _submit_together(engine, prompts, GREEDY)
        results = [r.result() for r in requests]
        lengths = [len(engine.encode(p)) for p in prompts]
        # The second prompt waits for the first one's blocks (together they would fit in 256 tokens),
        # then goes with the next two; the last no longer fits in what is left of 256 tokens.
        assert lengths[0] + lengths[1] + lengths[2] <= 256 and lengths[1] - 80 + lengths[2] + lengths[3] + lengths[4] > 256
        assert calls == [[(0, lengths[0])], [(80, lengths[1]), (0, lengths[2]), (0, lengths[3])], [(0, lengths[4])]]
        assert results[1].usage.cached_tokens == 80
        for prompt, result in zip(prompts, results):
            assert result.token_ids == plain.generate(prompt, GREEDY).token_ids
    finally:
        engine.close()
        plain.close()
