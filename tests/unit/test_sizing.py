"""Sizing formulas equal transformers' own counts and the KV cache it allocates."""

import pytest
import torch

from conftest import run_cli
from llm_deeper.sizing import KNOWN, Arch, from_hf_config, kv_cache_bytes, lora_parameters, parameters


@pytest.mark.parametrize("tied, bias, kv_heads", [(True, False, 2), (False, False, 4), (False, True, 1)])
def test_parameter_formula_equals_transformers(tied, bias, kv_heads):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=kv_heads, tie_word_embeddings=tied, attention_bias=bias)
    model = LlamaForCausalLM(config)
    if bias:  # Llama's attention_bias also adds one to o_proj; count what the formula covers (Qwen2: q, k, v only)
        expected = sum(p.numel() for n, p in model.named_parameters() if not n.endswith("o_proj.bias"))
    else:
        expected = sum(p.numel() for p in model.parameters())
    assert parameters(from_hf_config(config)) == expected


def test_default_model_count_is_exact():
    assert parameters(KNOWN["smollm2-135m"]) == 134_515_008


def test_kv_cache_formula_matches_a_real_cache():
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    cache = DynamicCache(config=config)
    with torch.no_grad():
        model(torch.zeros(3, 17, dtype=torch.long), cache=cache, use_cache=True)
    real = sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size() for layer in cache.layers)
    assert kv_cache_bytes(from_hf_config(config), seq_len=17, batch=3, dtype="fp32") == real


def test_kv_cache_uses_kv_heads_times_head_dim_not_hidden():
    arch = KNOWN["llama-3.1-8b"]
    # 2 × 32 × 8 × 128 × 8192 × 2 B = 1 GiB; a formula with `hidden` in place of head_dim would say 32 GiB.
    assert kv_cache_bytes(arch, 8192) == 2**30


def test_lora_parameters_for_q_only():
    arch = Arch("t", 10, 8, 2, 2, 1, 16, 32)
    assert lora_parameters(arch, 4, ("q",)) == 2 * 4 * (8 + 8)


def test_calc_cli():
    result = run_cli("calc", "kv-cache", "smollm2-135m", "--seq-len", "8192", "--dtype", "fp16")
    assert result.returncode == 0 and "180.0 MiB" in result.stdout
    bad = run_cli("calc", "params", "gpt-9")
    assert bad.returncode == 2 and "unknown architecture 'gpt-9'" in bad.stderr
