"""Quantized decode weights (int8 rows, int4 Q4_1 groups) and the OpenMP thread hygiene of the engine."""

from __future__ import annotations

import threading

import pytest
import torch

from llm_deeper.errors import UserError
from llm_deeper.inference.engine import Engine
from llm_deeper.inference.quant import Int4Weight, Int8Weight, PackedWeight, bf16_head_packing_pays, linear, packing_pays, q4_1_groups
from llm_deeper.inference.runners import LlamaRunner
from llm_deeper.inference.sampling import SamplingConfig
from llm_deeper.models.loaders import load_hf_folder

HI = [{"role": "user", "content": "hello"}]


def q4_1_weight(rows: int = 48, columns: int = 96, seed: int = 0):
    """A weight as a Q4_1 file stores it: per 32 inputs, fp16 scale and minimum, q in 0..15 spanning the range."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (rows, columns // 32, 32), generator=g)
    q[..., 0], q[..., 1] = 0, 15  # quantizing a group maps its minimum to 0 and its maximum to 15
    scale = (torch.rand(rows, columns // 32, generator=g) * 0.02 + 1e-3).half().float()
    low = (-torch.rand(rows, columns // 32, generator=g) * 0.1).half().float()
    return (q * scale[..., None] + low[..., None]).view(rows, columns), q, scale, low


def test_q4_1_groups_recover_a_q4_1_weight_exactly():
    weight, q, scale, low = q4_1_weight()
    got_q, got_scale, got_low = q4_1_groups(weight)
    assert torch.equal(got_q.long(), q) and torch.equal(got_scale, scale) and torch.equal(got_low, low)
    assert torch.equal(got_q * got_scale[..., None] + got_low[..., None], weight.view_as(got_q * 1.0))


@pytest.mark.parametrize("kind, tolerance", [(Int4Weight, 0.01), (Int8Weight, 0.03)])
def test_quantized_matmul_is_close_to_the_float_one(kind, tolerance):
    weight = q4_1_weight()[0] if kind is Int4Weight else torch.randn(96, 64)
    x = torch.randn(3, weight.shape[1])
    exact = x @ weight.T
    approx = linear(x.bfloat16(), kind(weight)).float()
    assert approx.shape == exact.shape
    assert float((approx - exact).abs().max() / exact.abs().max()) < tolerance


def test_int4_needs_inputs_in_groups_of_32():
    with pytest.raises(UserError, match="divisible by 32"):
        Int4Weight(torch.randn(8, 40))


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_quantized_runner_stays_close_to_fp32_and_serves(tiny_llama_dir, quant):
    fp32, _ = load_hf_folder(tiny_llama_dir)
    bf16, _ = load_hf_folder(tiny_llama_dir, dtype="bfloat16")
    ids = list(range(40, 70))
    with torch.inference_mode():
        reference = fp32(torch.tensor([ids])).logits[0, -1]
    logits = LlamaRunner(bf16, 1, 128, quant=quant).prefill(0, ids, None)
    # random tiny weights are not Q4_1 data: int4 rounds them to 16 levels per group
    assert float((logits - reference).abs().max()) < 0.1 * float(reference.abs().max())
    engine = Engine.load(str(tiny_llama_dir), dtype=quant)
    try:
        assert engine.generate(HI, SamplingConfig(max_new_tokens=5, ignore_eos=True)).usage.completion_tokens == 5
    finally:
        engine.close()


def test_unknown_dtype_lists_the_choices(tiny_llama_dir):
    with pytest.raises(UserError, match="int4"):
        Engine.load(str(tiny_llama_dir), dtype="int3")


def test_idle_openmp_helpers_can_be_released():
    """The engine relies on this to keep one OpenMP team per process (see inference/openmp.py)."""
    from llm_deeper.inference.openmp import release_idle_threads

    if torch.get_num_threads() < 2:
        pytest.skip("one torch thread: no OpenMP team to release")
    torch.randn(512, 512) @ torch.randn(512, 512)  # a parallel op: this thread now has a team
    assert release_idle_threads()


def test_engine_thread_uses_the_creators_thread_count(tiny_llama_dir):
    saved = torch.get_num_threads()
    seen = []
    torch.set_num_threads(1)
    try:
        engine = Engine.load(str(tiny_llama_dir))
        decode = engine.runner.decode

        def spy(*args):
            seen.append((threading.current_thread().name, torch.get_num_threads()))
            return decode(*args)

        engine.runner.decode = spy
        engine.generate(HI, SamplingConfig(max_new_tokens=3, ignore_eos=True))
        engine.close()
    finally:
        torch.set_num_threads(saved)
    assert seen and all(entry == ("llm-deeper-engine", 1) for entry in seen)


@pytest.mark.slow
def test_default_model_projections_are_q4_1_exactly_and_int4_answers(default_model):
    """The claim behind `--dtype int4`: the GGUF's Q4_1 projections come back exactly, and the engine still answers."""
    checked = 0
    for name, weight in default_model.model.named_parameters():
        if weight.dim() == 2 and "embed" not in name:
            q, scale, low = q4_1_groups(weight.detach())
            assert torch.equal(q * scale[..., None] + low[..., None], weight.detach().view(q.shape).float()), name
            checked += 1
    assert checked == 7 * 30  # q, k, v, o, gate, up, down in each of 30 layers
    engine = Engine.load("smollm2-135m-instruct", dtype="int4")
    try:
        # A completion with a clear answer (p(' Paris') ≈ 0.77 in fp32). The chat question is a near
        # tie at its first token ('The' 0.137 vs 'L' 0.137 in int4 on an Intel Xeon), which any bf16
        # kernel's rounding can flip: a test must not hang on a coin toss.
        reply = engine.generate("The capital of France is", SamplingConfig(max_new_tokens=3))
    finally:
        engine.close()
    assert "Paris" in reply.text


@pytest.mark.skipif(not packing_pays(torch.float32), reason="oneDNN packing is used on x86-64 builds with oneDNN only")
@pytest.mark.parametrize("threads", [1, 2])  # one row on one thread takes the transposed weight, else the packed one
@pytest.mark.parametrize("batch, rows", [(1, 1), (2, 1), (1, 8), (2, 300)])
def test_a_weight_packed_for_onednn_multiplies_as_f_linear(batch, rows, threads, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)  # the path taken, without changing the process's threads
    torch.manual_seed(0)
    weight, bias = torch.randn(96, 64), torch.randn(96)
    packed = PackedWeight(weight)
    x = torch.randn(batch, rows, 64)
    # fp32 rounding of 64-term sums of products of unit normals (size ~8): well under 1e-4
    assert torch.allclose(linear(x, packed, bias), torch.nn.functional.linear(x, weight, bias), atol=1e-4, rtol=1e-5)
    assert torch.allclose(linear(x, packed), x @ weight.T, atol=1e-4, rtol=1e-5)  # no bias


@pytest.mark.skipif(not bf16_head_packing_pays(), reason="oneDNN's bf16 kernels need AVX-512 BF16 or AMX")
@pytest.mark.parametrize("rows", [1, 8])
def test_a_bf16_head_packed_for_onednn_multiplies_as_f_linear(rows):
    torch.manual_seed(0)
    weight, x = torch.randn(96, 64).bfloat16(), torch.randn(rows, 64).bfloat16()
    packed = PackedWeight(weight)
    assert packed.transposed is None  # bf16 is only packed
    # bf16 products summed in fp32 and rounded once to bf16 (8 bits of mantissa): within 2 bf16 ulps of values ~8
    assert torch.allclose(linear(x, packed).float(), torch.nn.functional.linear(x, weight).float(), atol=0.125, rtol=1e-2)


@pytest.mark.skipif(not bf16_head_packing_pays(), reason="oneDNN's bf16 kernels need AVX-512 BF16 or AMX")
def test_int4_packs_its_head_only_when_asked(tiny_llama_dir):
    """The runner packs int4's head (so compile() hands its step the model's own head: inductor cannot lower
    oneDNN's packed bf16 weight, and `serve --dtype int4 --compile` failed with an AssertionError); unpacked by default."""
    from llm_deeper.inference.llama import LlamaWeights

    bf16, _ = load_hf_folder(tiny_llama_dir, dtype="bfloat16")
    runner = LlamaRunner(bf16, 1, 64, quant="int4")
    assert runner.packed and isinstance(runner.weights.lm_head, PackedWeight)
    assert isinstance(LlamaWeights.from_hf(bf16, "int4").lm_head, torch.Tensor)


def test_only_float32_is_packed():
    assert not packing_pays(torch.bfloat16) and not packing_pays(torch.float16)
