"""Our RoPE (scratch/positional.py) == transformers' Llama rotary embedding on the same q/k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_deeper.scratch import positional as P

THETA = 100000.0  # the default model's rope_theta (SmolLM2-135M)
HEAD_DIM = 64  # the default model's head_dim (576 / 9)


def llama_rope(q, k, positions):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    config = LlamaConfig(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=HEAD_DIM,
                         max_position_embeddings=2048, rope_parameters={"rope_type": "default", "rope_theta": THETA})
    rotary = LlamaRotaryEmbedding(config)
    tq, tk = torch.from_numpy(q), torch.from_numpy(k)
    cos, sin = rotary(tq, torch.from_numpy(positions)[None])
    out_q, out_k = apply_rotary_pos_emb(tq, tk, cos, sin)
    return out_q.numpy(), out_k.numpy(), cos[0].numpy(), rotary.inv_freq.numpy()


@pytest.mark.parametrize("positions", [np.arange(16), np.array([0, 5, 17, 300, 1999])])
def test_rope_matches_transformers_llama(positions):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 9, len(positions), HEAD_DIM)).astype(np.float32)
    k = rng.standard_normal((1, 3, len(positions), HEAD_DIM)).astype(np.float32)
    ref_q, ref_k, ref_cos, inv_freq = llama_rope(q, k, positions)
    # transformers computes the angles in fp32; ours are fp64, so the gap grows with the position.
    assert np.max(np.abs(P.rope_inv_freq(HEAD_DIM, THETA) - inv_freq)) < 1e-7
    cos, sin = P.rope_cos_sin(positions, HEAD_DIM, THETA)
    atol = 1e-5 if positions.max() < 100 else 5e-4
    assert np.max(np.abs(cos - ref_cos)) < atol
    assert np.max(np.abs(P.apply_rope(q.astype(np.float64), cos, sin) - ref_q)) < 4 * atol
    assert np.max(np.abs(P.rope(k.astype(np.float64), positions, THETA) - ref_k)) < 4 * atol


def test_rotate_half_matches_transformers():
    from transformers.models.llama.modeling_llama import rotate_half

    x = np.random.default_rng(1).standard_normal((2, 3, 8))
    assert np.array_equal(P.rotate_half(x), rotate_half(torch.from_numpy(x)).numpy())


def test_rope_scores_depend_only_on_offset():
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal(HEAD_DIM), rng.standard_normal(HEAD_DIM)

    def score(m, n):
        return float(P.rope(q[None], [m], THETA)[0] @ P.rope(k[None], [n], THETA)[0])

    assert abs(score(7, 3) - score(104, 100)) < 1e-10  # same offset 4
    assert abs(score(7, 3) - score(8, 3)) > 1e-3  # different offset


def test_rope_preserves_norms_and_position_zero_is_identity():
    x = np.random.default_rng(3).standard_normal((5, HEAD_DIM))
    rotated = P.rope(x, base=THETA)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)
    assert np.array_equal(rotated[0], x[0])


def test_interleaved_layout_is_a_permutation_of_half_layout():
    x = np.random.default_rng(4).standard_normal((6, 16))
    positions = np.arange(6)
    assert np.max(np.abs(P.interleaved_to_half(P.apply_rope_interleaved(x, positions)) - P.rope(P.interleaved_to_half(x), positions))) < 1e-12


def test_sinusoidal_table_values_and_errors():
    table = P.sinusoidal_encoding(50, 16)
    assert table.shape == (50, 16)
    assert np.allclose(table[0, 0::2], 0) and np.allclose(table[0, 1::2], 1)
    assert abs(table[3, 0] - np.sin(3)) < 1e-15 and abs(table[3, 3] - np.cos(3 / 10000 ** (2 / 16))) < 1e-15
    with pytest.raises(ValueError, match="even"):
        P.sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="even"):
        P.rope_inv_freq(5)


def test_learned_positions_table_limits_length():
    table = P.learned_positions(8, 4)
    x = torch.zeros(1, 5, 4)
    out = P.add_learned_positions(x, table)
    assert torch.equal(out[0], table.weight[:5].detach())
    with pytest.raises(ValueError, match="only 8 rows"):
        P.add_learned_positions(torch.zeros(1, 9, 4), table)
