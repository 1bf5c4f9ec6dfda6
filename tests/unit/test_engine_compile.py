"""The torch.compile'd decode step (Engine(compile_decode=True), `serve --compile`) gives the eager step's tokens."""

from __future__ import annotations

import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.sampling import SamplingConfig

PROMPTS = [[{"role": "user", "content": "hello there"}], [{"role": "user", "content": "count to ten, slowly please"}],
           [{"role": "user", "content": "a"}]]


@pytest.mark.slow  # inductor compiles C++ for a minute or so on 2 cores
def test_compiled_decode_matches_eager_in_a_shared_batch(tiny_llama_dir):
    eager = Engine.load(str(tiny_llama_dir), max_batch=4)
    compiled = Engine.load(str(tiny_llama_dir), max_batch=4, compile_decode=True)
    try:
        assert compiled.compile_seconds is not None and compiled.compile_seconds > 0 and eager.compile_seconds is None
        config = SamplingConfig(max_new_tokens=30, temperature=0.0, ignore_eos=True)
        requests = [compiled.submit(p, config) for p in PROMPTS]  # 1, 2 and 3 rows as they join
        for prompt, request in zip(PROMPTS, requests):
            assert request.result().token_ids == eager.generate(prompt, config).token_ids
        assert compiled.runner.compiled is not None
    finally:
        eager.close()
        compiled.close()
