"""Position information for attention: sinusoidal, learned and rotary (RoPE).

Attention by itself treats its input as a set: permute the tokens and the
outputs permute the same way (it is permutation-equivariant). Three ways to
tell it where each token sits:

- sinusoidal (Vaswani et al. 2017): a fixed table added to the embeddings;
- learned (GPT-2): a trainable table added to the embeddings, one row per
  position up to a maximum length;
- rotary, RoPE (Su et al. 2021; Llama, SmolLM2): rotate each query/key pair of
  dimensions by an angle proportional to the position, so that the dot
  product q_m · k_n depends only on the offset m − n.

RoPE comes in two layouts that pair different dimensions: `half` (rotate
dimension i with i + d/2, what Llama and transformers do) and `interleaved`
(rotate 2i with 2i + 1, the paper's and GPT-J's). They are the same rotation
up to a fixed permutation of the dimensions.
"""

from __future__ import annotations

import numpy as np

# ── sinusoidal ──────────────────────────────────────────────────────────────


def sinusoidal_encoding(seq_len: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """(seq_len, d_model) table: PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(same angle).

    Each pair of columns is a clock running at its own speed, from one turn
    every 2π positions (i = 0) to very slow ones, so every position gets a
    distinct pattern and nearby positions get similar ones.
    """
    if d_model % 2:
        raise ValueError(f"sinusoidal_encoding: d_model must be even, got {d_model}")
    positions = np.arange(seq_len, dtype=np.float64)[:, None]
    inv_freq = base ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    angles = positions * inv_freq[None, :]
    table = np.empty((seq_len, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table


# ── learned ─────────────────────────────────────────────────────────────────


def learned_positions(max_len: int, d_model: int, seed: int = 0, std: float = 0.02):
    """A trainable (max_len, d_model) table as a torch `nn.Embedding`, GPT-2 style.

    Initialised like GPT-2 (normal, std 0.02); training shapes it. It has no
    row for positions ≥ max_len, so it cannot extrapolate past the length it
    was trained on (see `add_learned_positions`).
    """
    import torch

    table = torch.nn.Embedding(max_len, d_model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        table.weight.copy_(torch.randn(max_len, d_model, generator=generator) * std)
    return table


def add_learned_positions(x, table):
    """x (batch, seq, d) + table rows 0 … seq−1; a clear error past the table's length."""
    import torch

    seq_len = x.shape[-2]
    if seq_len > table.num_embeddings:
        raise ValueError(f"learned positions: sequence of {seq_len} tokens but the table has only {table.num_embeddings} rows")
    return x + table(torch.arange(seq_len))


# ── rotary (RoPE) ───────────────────────────────────────────────────────────


def rope_inv_freq(head_dim: int, base: float = 10000.0) -> np.ndarray:
    """(head_dim/2,) rotation speeds θ_i = base^(−2i/d): fast for early pairs, slow for late ones."""
    if head_dim % 2:
        raise ValueError(f"RoPE: head_dim must be even, got {head_dim}")
    return 1.0 / base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)


def rope_cos_sin(positions, head_dim: int, base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the angles p·θ_i, each (..., len(positions), head_dim) in the `half` layout.

    The head_dim/2 angles are written twice ([θ, θ]) so they line up with the
    two halves that `rotate_half` pairs.
    """
    angles = np.asarray(positions, dtype=np.float64)[..., None] * rope_inv_freq(head_dim, base)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles), np.sin(angles)


def rotate_half(x: np.ndarray) -> np.ndarray:
    """(x1, x2) → (−x2, x1) on the two halves of the last axis: a 90° turn of each (x_i, x_{i+d/2}) pair."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate x (..., seq, head_dim) by its positions' angles: x·cos + rotate_half(x)·sin.

    Pair (x_i, x_{i+d/2}) at position p turns by p·θ_i:
        x_i'       = x_i cos − x_{i+d/2} sin
        x_{i+d/2}' = x_{i+d/2} cos + x_i sin
    cos/sin (seq, head_dim) broadcast over leading batch/head axes.
    """
    return x * cos + rotate_half(x) * sin


def apply_rope_interleaved(x: np.ndarray, positions, base: float = 10000.0) -> np.ndarray:
    """The paper's layout: pair (x_{2i}, x_{2i+1}) turns by p·θ_i. Same rotation, other pairing."""
    angles = np.asarray(positions, dtype=np.float64)[:, None] * rope_inv_freq(x.shape[-1], base)
    cos, sin = np.cos(angles), np.sin(angles)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x, dtype=np.result_type(x, np.float64))
    out[..., 0::2] = even * cos - odd * sin
    out[..., 1::2] = odd * cos + even * sin
    return out


def interleaved_to_half(x: np.ndarray) -> np.ndarray:
    """Reorder the last axis from (x0, x1, x2, x3, …) to (x0, x2, …, x1, x3, …).

    This is the permutation that turns interleaved pairs (2i, 2i+1) into half
    pairs (i, i + d/2); weight converters between the two layouts apply it to
    the rows of W_q and W_k.
    """
    return np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)


def rope(x: np.ndarray, positions=None, base: float = 10000.0) -> np.ndarray:
    """Apply RoPE (half layout) to x (..., seq, head_dim) at positions 0 … seq−1 (or the given ones)."""
    positions = np.arange(x.shape[-2]) if positions is None else np.asarray(positions)
    cos, sin = rope_cos_sin(positions, x.shape[-1], base)
    return apply_rope(x, cos, sin)
