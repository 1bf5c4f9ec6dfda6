"""Scaled dot-product attention from scratch in numpy: forward, backward, masks.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V

Also the pieces attention and language-model training lean on: a numerically
stable softmax (log-sum-exp), cross-entropy and perplexity, and a finite-
difference gradient to check hand-written backward passes against.

Conventions used across `scratch/`:
- arrays are (..., seq, dim): any leading batch/head axes broadcast;
- a boolean mask is True where a query MAY attend to a key (torch's
  `scaled_dot_product_attention` uses the same meaning for bool masks;
  `nn.MultiheadAttention` uses the opposite one, see `mha.py`);
- a query row whose keys are all masked gets zero weights and a zero output,
  as torch does, instead of the NaN a plain softmax would give.

The tests prove each function equal to its torch twin (tests/parity/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# ── softmax and friends ─────────────────────────────────────────────────────


def softmax_naive(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / Σ exp(x), straight from the definition: overflows for large x (lesson 02 shows it)."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log Σ exp(x) without overflow: m + log Σ exp(x − m), with m = max(x).

    Rows that are all −∞ give −∞ (an empty sum), not NaN.
    """
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)  # an all −∞ row: subtract 0, not −∞ (−∞ − −∞ = NaN)
    with np.errstate(divide="ignore"):  # log(0) = −∞ for an all −∞ row is the right answer
        out = np.log(np.sum(np.exp(x - m_safe), axis=axis, keepdims=True)) + m_safe
    return out if keepdims else np.squeeze(out, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: exp(x − max) / Σ exp(x − max).

    Subtracting the row maximum changes nothing mathematically (it cancels in
    the ratio) but keeps every exponent ≤ 0, so nothing overflows. A row that
    is entirely −∞ (every key masked) returns zeros.
    """
    x = np.asarray(x)
    m = np.max(x, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m_safe)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x) = x − logsumexp(x): exact even where softmax underflows to 0."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float:
    """Mean negative log-likelihood of `targets` under softmax(`logits`).

    logits: (N, vocab) or (..., vocab); targets: integer ids with the leading
    shape of logits. Positions whose target is `ignore_index` (padding, prompt
    tokens) are left out of the mean, as in `torch.nn.functional.cross_entropy`.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    flat_logits = logits.reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1)
    keep = flat_targets != ignore_index
    if not keep.any():
        raise ValueError("cross_entropy: every target is ignore_index, nothing to average")
    logp = log_softmax(flat_logits[keep], axis=-1)
    picked = logp[np.arange(keep.sum()), flat_targets[keep]]
    return float(-picked.mean())


def cross_entropy_grad(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> np.ndarray:
    """d cross_entropy / d logits = (softmax(logits) − one_hot(target)) / N, zero on ignored rows."""
    logits = np.asarray(logits)
    flat = logits.reshape(-1, logits.shape[-1])
    flat_targets = np.asarray(targets).reshape(-1)
    keep = flat_targets != ignore_index
    grad = softmax(flat, axis=-1)
    grad[np.flatnonzero(keep), flat_targets[keep]] -= 1.0
    grad[~keep] = 0.0
    return (grad / keep.sum()).reshape(logits.shape)


def perplexity(mean_loss: float) -> float:
    """exp(mean cross-entropy in nats): the effective number of equally likely choices per token."""
    return float(np.exp(mean_loss))


# ── masks ───────────────────────────────────────────────────────────────────


def causal_mask(q_len: int, k_len: int | None = None) -> np.ndarray:
    """(q_len, k_len) bool, True where query i may see key j.

    Queries are the LAST q_len positions of the k_len keys (what a KV cache
    needs), so query i sees keys 0 … i + (k_len − q_len). For a square mask
    this is the lower triangle, the same as torch's `is_causal=True`.
    """
    k_len = q_len if k_len is None else k_len
    if k_len < q_len:
        raise ValueError(f"causal_mask: {k_len} keys cannot cover {q_len} queries")
    return np.tril(np.ones((q_len, k_len), dtype=bool), k=k_len - q_len)


def padding_mask(lengths, max_len: int) -> np.ndarray:
    """(batch, 1, 1, max_len) bool, True on the real (non-padding) keys of each sequence.

    Right padding: sequence b holds tokens 0 … lengths[b]−1. The two singleton
    axes broadcast over heads and queries.
    """
    lengths = np.asarray(lengths)
    if np.any(lengths < 0) or np.any(lengths > max_len):
        raise ValueError(f"padding_mask: lengths {lengths.tolist()} must lie in 0 … {max_len}")
    keep = np.arange(max_len)[None, :] < lengths[:, None]
    return keep[:, None, None, :]


def combine_masks(*masks: np.ndarray | None) -> np.ndarray | None:
    """AND of the given boolean masks (broadcast); None entries are ignored."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = np.logical_and(out, m)
    return out


# ── scaled dot-product attention ────────────────────────────────────────────


def _require_bool(mask) -> None:
    """Refuse additive float masks (0 / −inf): read as booleans they would mean the opposite."""
    if str(mask.dtype) not in ("bool", "torch.bool"):
        raise ValueError(f"attention mask must be boolean (True = may attend), got dtype {mask.dtype}")


@dataclass
class AttentionCache:
    """What the forward pass keeps for the backward pass."""

    q: np.ndarray  # (..., Lq, d) queries
    k: np.ndarray  # (..., Lk, d) keys
    v: np.ndarray  # (..., Lk, dv) values
    weights: np.ndarray  # (..., Lq, Lk) softmax probabilities (0 where masked)
    scale: float  # the factor the scores were multiplied by (1/√d by default)


def attention_scores(q: np.ndarray, k: np.ndarray, mask: np.ndarray | None = None, scale: float | None = None) -> np.ndarray:
    """Scaled, masked scores Q Kᵀ · scale, with −∞ where the mask is False."""
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ np.swapaxes(k, -1, -2)) * scale
    if mask is not None:
        _require_bool(mask)
        scores = np.where(mask, scores, -np.inf)
    return scores


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(Q Kᵀ · scale + mask) V; returns (output (..., Lq, dv), weights (..., Lq, Lk))."""
    out, cache = attention_forward(q, k, v, mask=mask, scale=scale)
    return out, cache.weights


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, scale: float | None = None) -> tuple[np.ndarray, AttentionCache]:
    """The forward pass, keeping what `attention_backward` needs."""
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention: queries have dim {q.shape[-1]} but keys have {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: {k.shape[-2]} keys but {v.shape[-2]} values")
    scale = float(1.0 / np.sqrt(q.shape[-1])) if scale is None else float(scale)
    weights = softmax(attention_scores(q, k, mask, scale), axis=-1)
    return weights @ v, AttentionCache(q=q, k=k, v=v, weights=weights, scale=scale)


def attention_backward(d_out: np.ndarray, cache: AttentionCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dQ, dK, dV) of a loss whose gradient w.r.t. the output is `d_out`.

    With S = scale·QKᵀ (masked), P = softmax(S), O = PV:
        dV = Pᵀ dO
        dP = dO Vᵀ
        dS = P ⊙ (dP − rowsum(dP ⊙ P))     (the softmax Jacobian, applied row by row)
        dQ = scale · dS K,   dK = scale · dSᵀ Q
    Masked entries have P = 0, so no gradient flows through them.
    Leading axes that were broadcast in the forward pass are summed back.
    """
    p, q, k, v = cache.weights, cache.q, cache.k, cache.v
    d_v = np.swapaxes(p, -1, -2) @ d_out
    d_p = d_out @ np.swapaxes(v, -1, -2)
    d_s = p * (d_p - np.sum(d_p * p, axis=-1, keepdims=True))
    d_q = cache.scale * (d_s @ k)
    d_k = cache.scale * (np.swapaxes(d_s, -1, -2) @ q)
    return _unbroadcast(d_q, q.shape), _unbroadcast(d_k, k.shape), _unbroadcast(d_v, v.shape)


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the axes that broadcasting added or stretched."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def finite_difference_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(x+εe_i) − f(x−εe_i)) / 2ε for every element of x (fp64 please).

    Slow (two calls of f per element) and only as exact as ε allows, which is
    why it checks a backward pass rather than replacing it.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        up = f(x)
        flat[i] = saved - eps
        down = f(x)
        flat[i] = saved
        flat_grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max(|a|, |b|, tiny): the scale-free number gradient checks compare."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-30))


# ── the same attention in torch ─────────────────────────────────────────────


def attention_torch(q, k, v, mask=None, scale: float | None = None):
    """softmax(QKᵀ·scale + mask) V written with torch ops (autograd gives the backward).

    Same conventions as `attention`; torch tensors in, (output, weights) out.
    """
    import torch

    scale = 1.0 / q.shape[-1] ** 0.5 if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        mask = torch.as_tensor(mask)
        _require_bool(mask)
        scores = scores.masked_fill(~mask, float("-inf"))
    # A fully masked row is all −∞; softmax would give NaN, so zero it as torch's SDPA does.
    empty = scores.amax(dim=-1, keepdim=True) == float("-inf")
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1).masked_fill(empty, 0.0)
    return weights @ v, weights
