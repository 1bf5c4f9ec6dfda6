"""The engine's small generate API: keyword settings, many prompts at once, adapters by name, stop strings."""

from __future__ import annotations

import pytest

from llm_deeper.errors import UserError
from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def engine(tiny_llama_dir, one_torch_thread):
    with Engine.load(str(tiny_llama_dir), max_batch=2, max_queue=1) as engine:
        yield engine


def test_keyword_settings_equal_a_config(engine):
    by_config = engine.generate(HI, SamplingConfig(max_new_tokens=5, temperature=0.8, seed=3, ignore_eos=True))
    by_keywords = engine.generate(HI, max_new_tokens=5, temperature=0.8, seed=3, ignore_eos=True)
    assert by_keywords.token_ids == by_config.token_ids and by_keywords.seconds > 0


def test_generate_many_keeps_order_beyond_the_queue_and_equals_one_by_one(engine):
    """Five prompts through 2 slots + 1 queue place: the rest wait in generate_many, and each reply is its own."""
    prompts = [[{"role": "user", "content": "x" * n}] for n in (1, 9, 3, 30, 5)]
    configs = SamplingConfig(max_new_tokens=7, ignore_eos=True)
    seen = []
    many = engine.generate_many(prompts, configs, on_result=lambda index, result: seen.append(index))
    assert [r.token_ids for r in many] == [engine.generate(p, configs).token_ids for p in prompts]
    assert seen == list(range(5))


def test_slots_compact_after_the_cache_grew_during_decoding(engine):
    """A request ends while a longer one runs in a later slot, after the cache grew inside a decode step."""
    short, long = SamplingConfig(max_new_tokens=2, ignore_eos=True), SamplingConfig(max_new_tokens=60, ignore_eos=True)
    first, second = engine.submit(HI, short), engine.submit(HI, long)
    assert first.result().usage.completion_tokens == 2
    assert second.result().usage.completion_tokens == 60


def test_stop_string_is_reported(engine):
    base = engine.generate(HI, max_new_tokens=12, ignore_eos=True)
    stop = base.text[3:5]
    cut = engine.generate(HI, max_new_tokens=12, ignore_eos=True, stop=stop)
    assert cut.stop_string == stop and cut.text == base.text[: base.text.index(stop)]
    assert engine.generate(HI, max_new_tokens=3, ignore_eos=True).stop_string is None


def test_adapters_by_name(tiny_llama_dir, tmp_path, one_torch_thread):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.models.tiny import tiny_llama

    get_peft_model(tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(tmp_path / "a")
    with Engine.load(str(tiny_llama_dir), max_batch=2) as engine:
        first_logprob = lambda **kw: engine.generate(HI, max_new_tokens=1, logprobs=0, **kw).logprobs[0].logprob  # noqa: E731
        base = first_logprob()
        engine.add_adapter("a", tmp_path / "a")
        assert first_logprob(adapter="a") != pytest.approx(base)
        assert first_logprob() == base
        with pytest.raises(UserError, match="already taken"):
            engine.add_adapter("a", tmp_path / "a")
