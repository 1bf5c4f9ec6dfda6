"""FlashAttention's idea in numpy: tiles and an online softmax, never the full score matrix.

Plain attention builds the (n_q × n_k) score matrix, softmaxes each row and multiplies by V.
FlashAttention (Dao et al. 2022) gets the same result while holding one (block_q × block_k)
tile at a time, so memory is linear in the sequence length and the tiles stay in fast memory.
The trick is the *online softmax*: each query row keeps a running maximum m, a running sum of
exponentials l and an unnormalized output o. When a new tile brings a larger maximum m', the
old sum and output are rescaled by exp(m − m') before the tile is added, and at the end
o / l is exactly softmax(scores) @ V. With a causal mask, tiles wholly in the future are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OnlineSoftmax:
    """Running statistics of one row block: max, sum of exp(score − max), unnormalized output."""

    m: np.ndarray  # (rows,) largest score seen so far
    l: np.ndarray  # (rows,) Σ exp(score − m) over the keys seen so far
    o: np.ndarray  # (rows, d_v) Σ exp(score − m) · v over the keys seen so far

    @classmethod
    def empty(cls, rows: int, d_v: int) -> "OnlineSoftmax":
        return cls(np.full(rows, -np.inf), np.zeros(rows), np.zeros((rows, d_v)))

    def add(self, scores: np.ndarray, values: np.ndarray) -> None:
        """Fold one tile of scores (rows, keys) and its values (keys, d_v) into the running state."""
        m_new = np.maximum(self.m, scores.max(axis=1))
        safe = np.where(np.isfinite(m_new), m_new, 0.0)  # a row with every key masked so far stays empty
        rescale = np.exp(np.where(np.isfinite(self.m), self.m - safe, -np.inf))
        p = np.exp(scores - safe[:, None])
        self.l = self.l * rescale + p.sum(axis=1)
        self.o = self.o * rescale[:, None] + p @ values
        self.m = m_new

    def result(self) -> np.ndarray:
        return self.o / self.l[:, None]


@dataclass
class TileStats:
    """What the tiled pass touched, to compare with the (n_q × n_k) matrix of plain attention."""

    tiles_computed: int = 0  # score tiles actually computed
    tiles_skipped: int = 0  # tiles wholly in the causal future, never computed
    largest_scores: int = 0  # most score entries alive at once (block_q × block_k at most)


def flash_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = False, block_q: int = 16,
                    block_k: int = 16, scale: float | None = None) -> tuple[np.ndarray, TileStats]:
    """softmax(q kᵀ · scale [+ causal mask]) v for (n, d) arrays, one tile at a time; (output, stats).

    With `causal`, query i sees keys 0..i + (n_k − n_q) (the last n_q positions, as with a KV cache).
    """
    n_q, d = q.shape
    n_k = k.shape[0]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    offset = n_k - n_q
    out = np.empty((n_q, v.shape[1]), dtype=np.result_type(q, v, np.float64))
    stats = TileStats()
    for q0 in range(0, n_q, block_q):
        q1 = min(q0 + block_q, n_q)
        state = OnlineSoftmax.empty(q1 - q0, v.shape[1])
        for k0 in range(0, n_k, block_k):
            k1 = min(k0 + block_k, n_k)
            if causal and k0 > q1 - 1 + offset:  # every key of this tile is after every query of the block
                stats.tiles_skipped += 1
                continue
            scores = (q[q0:q1] @ k[k0:k1].T) * scale
            if causal:
                rows, cols = np.arange(q0, q1)[:, None] + offset, np.arange(k0, k1)[None, :]
                scores = np.where(cols <= rows, scores, -np.inf)
            state.add(scores, v[k0:k1])
            stats.tiles_computed += 1
            stats.largest_scores = max(stats.largest_scores, scores.size)
        out[q0:q1] = state.result()
    return out, stats
