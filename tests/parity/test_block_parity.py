"""Our numpy transformer block and stack (scratch/block.py) == torch.nn.TransformerEncoderLayer / TransformerEncoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_deeper.scratch import attention as A
from llm_deeper.scratch import block as B


def randomise(module, seed):
    """Fresh random values for every parameter (LayerNorm scales too, so they are tested)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype) - 0.5)
    return module.eval()


def torch_layer(norm_first, activation="gelu", seed=0):
    layer = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dropout=0.0, activation=activation,
                                             batch_first=True, norm_first=norm_first, dtype=torch.float64)
    return randomise(layer, seed)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("causal", [False, True])
def test_block_matches_transformer_encoder_layer(norm_first, activation, causal):
    layer = torch_layer(norm_first, activation)
    config, weights = B.load_torch_layer(layer.state_dict(), n_heads=4, norm_first=norm_first, activation=activation)
    assert (config.d_model, config.ff_width, config.norm_first) == (16, 24, norm_first)
    x = np.random.default_rng(1).standard_normal((2, 7, 16))
    mask = A.causal_mask(7) if causal else None
    src_mask = None if mask is None else torch.from_numpy(~mask)  # torch: True = blocked
    with torch.no_grad():
        ref = layer(torch.from_numpy(x), src_mask=src_mask, is_causal=causal).numpy()
    assert np.max(np.abs(B.block_forward(config, weights, x, mask=mask) - ref)) < 1e-12


def test_block_with_padding_mask_matches_torch_on_real_tokens():
    layer = torch_layer(True, seed=3)
    config, weights = B.load_torch_layer(layer.state_dict(), n_heads=4, norm_first=True)
    x = np.random.default_rng(4).standard_normal((2, 5, 16))
    mask = A.padding_mask([5, 3], 5)
    with torch.no_grad():
        ref = layer(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(~mask[:, 0, 0])).numpy()
    ours = B.block_forward(config, weights, x, mask=mask)
    # torch's fast path may leave padded query rows as zeros; compare the real tokens.
    assert np.max(np.abs(ours[0] - ref[0])) < 1e-12 and np.max(np.abs(ours[1, :3] - ref[1, :3])) < 1e-12


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_stack_matches_transformer_encoder(norm_first):
    layer = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=norm_first, dtype=torch.float64)
    final = torch.nn.LayerNorm(16, dtype=torch.float64) if norm_first else None
    encoder = randomise(torch.nn.TransformerEncoder(layer, num_layers=3, norm=final, enable_nested_tensor=False), seed=5)
    stack = B.load_torch_stack(encoder.state_dict(), n_heads=4, norm_first=norm_first)
    assert len(stack.blocks) == 3 and (stack.final_ln is not None) == norm_first
    assert not np.array_equal(stack.blocks[0].w1, stack.blocks[1].w1)  # each layer really has its own weights
    x = np.random.default_rng(6).standard_normal((1, 6, 16))
    mask = A.causal_mask(6)
    with torch.no_grad():
        ref = encoder(torch.from_numpy(x), mask=torch.from_numpy(~mask), is_causal=True).numpy()
    assert np.max(np.abs(B.stack_forward(stack, x, mask=mask) - ref)) < 1e-11


def test_param_count_matches_torch_layer():
    config = B.BlockConfig(d_model=16, n_heads=4, d_ff=24)
    assert B.block_param_count(config) == sum(p.numel() for p in torch_layer(True).parameters())
    gqa = B.BlockConfig(d_model=16, n_heads=4, n_kv_heads=2, d_ff=24)
    w = B.init_block(gqa)
    assert B.block_param_count(gqa) == sum(a.size for a in w.attn.arrays()) + w.w1.size + w.b1.size + w.w2.size + w.b2.size + 4 * 16


def test_gqa_stack_is_causal():
    config = B.BlockConfig(d_model=24, n_heads=6, n_kv_heads=2)
    stack = B.init_stack(config, n_layers=2, seed=7)
    x = np.random.default_rng(8).standard_normal((1, 6, 24))
    out = B.stack_forward(stack, x, mask=A.causal_mask(6))
    x2 = x.copy()
    x2[0, 4:] += np.random.default_rng(9).standard_normal((2, 24))  # change the future (not by a constant: LayerNorm would erase that)
    out2 = B.stack_forward(stack, x2, mask=A.causal_mask(6))
    assert np.max(np.abs(out[0, :4] - out2[0, :4])) < 1e-12 and np.max(np.abs(out[0, 4:] - out2[0, 4:])) > 1e-3


def test_errors_are_clear():
    with pytest.raises(ValueError, match="activation"):
        B.BlockConfig(d_model=8, n_heads=2, activation="swish")
    with pytest.raises(ValueError, match="TransformerEncoderLayer"):
        B.load_torch_layer(torch.nn.Linear(2, 2).state_dict(), n_heads=1, norm_first=True)
    with pytest.raises(ValueError, match="TransformerEncoder"):
        B.load_torch_stack({}, n_heads=1, norm_first=True)
