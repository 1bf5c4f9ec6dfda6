"""numpy MHA/GQA/MQA (scratch/mha.py) == torch.nn.MultiheadAttention and SDPA with repeated K/V."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llm_deeper.scratch import attention as A
from llm_deeper.scratch import mha as M


def torch_mha(d_model=16, n_heads=4, bias=True, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # torch zero-initialises the biases; make them count
        for p in layer.parameters():
            p.uniform_(-0.5, 0.5)
    return layer.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", ["none", "causal", "padding"])
def test_self_attention_matches_torch_multihead_attention(bias, case):
    layer = torch_mha(bias=bias)
    config, weights = M.load_torch_mha(layer.state_dict(), n_heads=4)
    assert (config.d_model, config.n_heads, config.kind, config.bias) == (16, 4, "MHA", bias)
    x = np.random.default_rng(1).standard_normal((2, 6, 16))
    mask, torch_kwargs = None, {}
    if case == "causal":
        mask = A.causal_mask(6)
        torch_kwargs = {"attn_mask": torch.from_numpy(~mask), "is_causal": True}  # torch: True = blocked
    elif case == "padding":
        mask = A.padding_mask([6, 4], 6)
        torch_kwargs = {"key_padding_mask": torch.from_numpy(~mask[:, 0, 0, :])}
    ours, ours_w = M.mha_forward(config, weights, x, mask=mask, return_weights=True)
    tx = torch.from_numpy(x)
    ref, ref_w = layer(tx, tx, tx, need_weights=True, average_attn_weights=False, **torch_kwargs)
    assert np.max(np.abs(ours - ref.detach().numpy())) < 1e-12
    assert np.max(np.abs(ours_w - ref_w.detach().numpy())) < 1e-12


def test_cross_attention_matches_torch():
    layer = torch_mha(seed=2)
    config, weights = M.load_torch_mha(layer.state_dict(), n_heads=4)
    rng = np.random.default_rng(3)
    query, memory = rng.standard_normal((1, 3, 16)), rng.standard_normal((1, 7, 16))
    ref, _ = layer(torch.from_numpy(query), torch.from_numpy(memory), torch.from_numpy(memory))
    assert np.max(np.abs(M.mha_forward(config, weights, query, memory) - ref.detach().numpy())) < 1e-12


def test_loader_reads_separate_projection_weights():
    # torch stores q/k/v_proj_weight separately when kdim/vdim differ; same numbers, other keys.
    layer = torch_mha(d_model=8, n_heads=2, seed=4)
    sd = dict(layer.state_dict())
    w_q, w_k, w_v = sd.pop("in_proj_weight").chunk(3)
    sd.update(q_proj_weight=w_q, k_proj_weight=w_k, v_proj_weight=w_v)
    config, weights = M.load_torch_mha(sd, n_heads=2)
    x = np.random.default_rng(4).standard_normal((1, 3, 8))
    ref, _ = layer(*(torch.from_numpy(x),) * 3)
    assert np.max(np.abs(M.mha_forward(config, weights, x) - ref.detach().numpy())) < 1e-12


def test_loader_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="add_bias_kv"):
        M.load_torch_mha(torch.nn.MultiheadAttention(8, 2, add_bias_kv=True).state_dict(), n_heads=2)
    with pytest.raises(ValueError, match="not a MultiheadAttention"):
        M.load_torch_mha(torch.nn.Linear(2, 2).state_dict(), n_heads=1)
    with pytest.raises(ValueError, match="divisible"):
        M.MHAConfig(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="divisible"):
        M.MHAConfig(d_model=12, n_heads=4, n_kv_heads=3)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 3, 6])
def test_grouped_attention_equals_repeated_kv_and_torch_gqa(n_kv_heads):
    rng = np.random.default_rng(5)
    q = rng.standard_normal((2, 6, 5, 4))
    k, v = rng.standard_normal((2, n_kv_heads, 5, 4)), rng.standard_normal((2, n_kv_heads, 5, 4))
    mask = A.combine_masks(A.causal_mask(5), A.padding_mask([5, 3], 5))
    grouped = M.grouped_attention(q, k, v, mask=mask)
    rep = 6 // n_kv_heads
    repeated, _ = A.attention(q, M.repeat_kv(k, rep), M.repeat_kv(v, rep), mask=mask)
    assert np.max(np.abs(grouped - repeated)) < 1e-12
    ref = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)), attn_mask=torch.from_numpy(mask), enable_gqa=True)
    assert np.max(np.abs(grouped - ref.numpy())) < 1e-12


def test_repeat_kv_order_matches_transformers():
    from transformers.models.llama.modeling_llama import repeat_kv

    x = np.random.default_rng(6).standard_normal((1, 3, 4, 2))
    assert np.array_equal(M.repeat_kv(x, 3), repeat_kv(torch.from_numpy(x), 3).numpy())


@pytest.mark.parametrize("n_kv_heads", [None, 3, 1])
def test_gqa_layer_same_with_and_without_materialised_kv(n_kv_heads):
    config = M.MHAConfig(d_model=24, n_heads=6, n_kv_heads=n_kv_heads)
    weights = M.init_mha(config, seed=7)
    x = np.random.default_rng(8).standard_normal((2, 5, 24))
    fast = M.mha_forward(config, weights, x, mask=A.causal_mask(5))
    slow, attn = M.mha_forward(config, weights, x, mask=A.causal_mask(5), return_weights=True)
    assert attn.shape == (2, 6, 5, 5)
    assert np.max(np.abs(fast - slow)) < 1e-12


def test_parameter_counts_match_real_layers():
    layer = torch.nn.MultiheadAttention(24, 6)
    assert M.param_count(M.MHAConfig(24, 6)) == sum(p.numel() for p in layer.parameters())
    # GQA: K and V shrink by n_heads / n_kv_heads; weights are exactly what init_mha makes.
    for kv in (6, 3, 1):
        config = M.MHAConfig(24, 6, n_kv_heads=kv)
        assert M.param_count(config) == sum(a.size for a in M.init_mha(config).arrays())
    assert M.param_count(M.MHAConfig(24, 6, 1)) < M.param_count(M.MHAConfig(24, 6, 3)) < M.param_count(M.MHAConfig(24, 6))
    assert M.kv_cache_values_per_token(M.MHAConfig(576, 9, 3)) == 2 * 3 * 64


def test_wrong_width_is_a_clear_error():
    config = M.MHAConfig(8, 2)
    with pytest.raises(ValueError, match="d_model=8"):
        M.mha_forward(config, M.init_mha(config), np.zeros((1, 3, 6)))
