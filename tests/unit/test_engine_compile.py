"""The torch.compile'd decode step (Engine(compile_decode=True), `serve --compile`) gives the eager step's tokens."""

from __future__ import annotations

import os

import pytest

from llm_deeper.inference.engine import Engine
from llm_deeper.inference.runners import compile_cache_dir
from llm_deeper.inference.sampling import SamplingConfig

PROMPTS = [[{"role": "user", "content": "hello there"}], [{"role": "user", "content": "count to ten, slowly please"}],
           [{"role": "user", "content": "a"}]]


@pytest.mark.slow  # inductor compiles C++ for a minute or so on 2 cores
def test_compiled_decode_matches_eager_in_a_shared_batch(tiny_llama_dir, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    # what the variable holds once anything in the process touched inductor: the shared /tmp folder
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    eager = Engine.load(str(tiny_llama_dir), max_batch=4)
    compiled = Engine.load(str(tiny_llama_dir), max_batch=4, compile_decode=True)
    try:
        assert compiled.compile_seconds is not None and compiled.compile_seconds > 0 and eager.compile_seconds is None
        config = SamplingConfig(max_new_tokens=30, temperature=0.0, ignore_eos=True)
        requests = [compiled.submit(p, config) for p in PROMPTS]  # 1, 2 and 3 rows as they join
        for prompt, request in zip(PROMPTS, requests):
            assert request.result().token_ids == eager.generate(prompt, config).token_ids
        assert compiled.runner.compiled is not None
        # prompts keep the eager engine's weights (oneDNN-packed where that pays); only the compiled step has plain ones
        assert type(compiled.runner.weights.layers[0].qkv.weight) is type(eager.runner.weights.layers[0].qkv.weight)
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(compile_cache_dir())  # ours, keyed by torch, kernels and source
    finally:
        eager.close()
        compiled.close()


def test_the_compile_cache_is_keyed_by_the_cpu_kernel_set_and_old_folders_go(monkeypatch, tmp_path):
    """Steps compiled under the AVX2 kernel variables, loaded without them, gave wrong tokens and aborted (runners.py)."""
    monkeypatch.setenv("LLM_DEEPER_HOME", str(tmp_path))
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    native = compile_cache_dir()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert compile_cache_dir() != native and compile_cache_dir().parent == native.parent
    stale = native.parent / "torch-0.0-avx2-000000000000"
    stale.mkdir()
    os.utime(stale, (0, 0))  # last used in 1970
    compile_cache_dir()
    assert not stale.exists() and native.exists()
