"""The engine's own Llama forward (inference/llama.py) equals transformers: RMSNorm, RoPE, whole-model logits."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig as HFLlamaConfig
from transformers.models.llama.modeling_llama import LlamaForCausalLM, LlamaRMSNorm, LlamaRotaryEmbedding

from llm_deeper.inference import llama
from llm_deeper.inference.runners import HFRunner, LlamaRunner, make_runner


def hf_config(**overrides) -> HFLlamaConfig:
    settings = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=512, rope_theta=100000.0)
    settings.update(overrides)
    return HFLlamaConfig(**settings)


def test_rms_norm_equals_transformers():
    norm = LlamaRMSNorm(64, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(64))
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(3, 7, 64, dtype=dtype) * 4
        with torch.no_grad():
            assert torch.equal(llama.rms_norm(x, norm.weight.to(dtype), 1e-5), norm.to(dtype)(x))


LLAMA3 = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}


@pytest.mark.parametrize("overrides", [{"rope_theta": 100000.0}, {"rope_theta": 10000.0}, {"rope_parameters": LLAMA3}],
                         ids=["theta-100000", "theta-10000", "llama3"])
def test_rope_tables_equal_transformers(overrides):
    config = hf_config(**overrides)
    ours = llama.LlamaConfig.from_hf(config)
    assert ours.rope_theta == (LLAMA3["rope_theta"] if "rope_parameters" in overrides else overrides["rope_theta"])
    positions = torch.arange(300)
    x = torch.zeros(1, 1, 64)
    cos_hf, sin_hf = LlamaRotaryEmbedding(config)(x, positions.unsqueeze(0))
    cos, sin = llama.rope_tables(ours, 300, torch.float32)
    assert torch.equal(cos, cos_hf[0]) and torch.equal(sin, sin_hf[0])


def test_rotation_equals_transformers():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    ours = llama.LlamaConfig.from_hf(hf_config())
    cos, sin = llama.rope_tables(ours, 20, torch.float32)
    q, k = torch.randn(2, 4, 20, 16), torch.randn(2, 2, 20, 16)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos.unsqueeze(0), sin.unsqueeze(0))
    signed = llama.signed_sin(sin)
    assert torch.equal(llama.rotate(q, cos, signed), q_hf) and torch.equal(llama.rotate(k, cos, signed), k_hf)
    for dtype in (torch.bfloat16,):  # bit for bit in bf16 too (the int4/bf16 engines rotate in bf16)
        q_hf, k_hf = apply_rotary_pos_emb(q.to(dtype), k.to(dtype), cos.to(dtype).unsqueeze(0), sin.to(dtype).unsqueeze(0))
        assert torch.equal(llama.rotate(q.to(dtype), cos.to(dtype), signed.to(dtype)), q_hf)


@pytest.mark.parametrize("overrides", [{}, {"attention_bias": True, "mlp_bias": True}, {"rope_parameters": LLAMA3}],
                         ids=["plain", "biases", "llama3"])
def test_whole_model_logits_equal_transformers(overrides):
    torch.manual_seed(0)
    model = LlamaForCausalLM(hf_config(**overrides)).eval()
    ids = list(range(5, 105))
    with torch.inference_mode():
        expected = model(torch.tensor([ids])).logits[0]
    runner = make_runner(model, slots=1, max_len=128)
    assert isinstance(runner, LlamaRunner)
    got = runner.prompt_logits(ids)
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)  # fp32, other kernels: rounding ~4·eps·√(width·layers) relative, far under 1e-4
    cached = [t[0, :, :100].clone() for t in runner.cache.keys + runner.cache.values]
    # a prefill runs its last layer for the last position alone: the same scores there, and the same cache
    assert torch.allclose(runner.prefill(0, ids, None), expected[-1], atol=1e-5, rtol=1e-4)
    assert all(torch.equal(t[0, :, :100], before) for t, before in zip(runner.cache.keys + runner.cache.values, cached))
    # decoding one token at a time through the cache gives the same scores as the whole prompt
    assert torch.allclose(runner.prefill(0, ids[:60], None), expected[59], atol=1e-5, rtol=1e-4)
    for position in range(60, 100):
        step = runner.decode([ids[position]], [position], [None])[0]
        assert torch.allclose(step, expected[position], atol=1e-5, rtol=1e-4)


def test_weights_are_typed_and_fused():
    torch.manual_seed(0)
    model = LlamaForCausalLM(hf_config()).eval()
    weights = llama.LlamaWeights.from_hf(model)
    layer = weights.layers[0]
    assert isinstance(layer, llama.LayerWeights)
    assert [p.name for p in layer.qkv.parts] == ["q_proj", "k_proj", "v_proj"]
    assert layer.qkv.parts[-1].stop == layer.qkv.weight.shape[0] == 64 + 2 * 2 * 16
    attention = model.model.layers[0].self_attn
    assert torch.equal(layer.qkv.weight[32 + 64:], attention.v_proj.weight[:])
    assert weights.lm_head is model.lm_head.weight  # plain tensors are shared, not copied
    packed = llama.LlamaWeights.from_hf(model, pack=True)  # the runner's float32 default on x86-64 (quant.PackedWeight)
    assert packed.layers[0].qkv.weight.shape == layer.qkv.weight.shape and packed.embed is model.model.embed_tokens.weight


def test_other_architectures_and_rope_types_fall_back_to_transformers(tiny_gpt2_dir):
    from llm_deeper.models.loaders import load_hf_folder

    gpt2, _ = load_hf_folder(tiny_gpt2_dir)
    assert isinstance(make_runner(gpt2, 1, 64), HFRunner)
    yarn = LlamaForCausalLM(hf_config(rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0})).eval()
    assert "yarn" in llama.supports(yarn.config)
    assert isinstance(make_runner(yarn, 1, 64), HFRunner)


@pytest.mark.slow
def test_default_model_rope_uses_its_theta(default_model):
    """The default model's config keeps theta 100000 in rope_parameters; our tables equal its rotary embedding."""
    config = llama.LlamaConfig.from_hf(default_model.model.config)
    assert config.rope_theta == 100000.0
    positions = torch.arange(2048)
    cos_hf, sin_hf = default_model.model.model.rotary_emb(torch.zeros(1, 1, 1), positions.unsqueeze(0))
    cos, sin = llama.rope_tables(config, 2048, torch.float32)
    assert torch.equal(cos, cos_hf[0]) and torch.equal(sin, sin_hf[0])
