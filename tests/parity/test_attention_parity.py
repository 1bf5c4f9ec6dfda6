"""numpy attention (scratch/attention.py) == torch, forward and backward, and the softmax/loss helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_deeper.scratch import attention as A


def qkv(dtype, batch=2, heads=3, q_len=5, k_len=5, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, heads, q_len, dim)).astype(dtype),
            rng.standard_normal((batch, heads, k_len, dim)).astype(dtype),
            rng.standard_normal((batch, heads, k_len, dim)).astype(dtype))


def torch_sdpa(q, k, v, mask=None, is_causal=False):
    t = [torch.from_numpy(a) for a in (q, k, v)]
    m = None if mask is None else torch.from_numpy(np.array(mask))  # a writable copy (broadcast views are read-only)
    return F.scaled_dot_product_attention(*t, attn_mask=m, is_causal=is_causal).numpy()


# 8-wide dot products feeding 5-long softmax sums of unit normals (values up to ~8): 4·eps·√40·8 is 4.5e-14 in fp64
# (1e-10 leaves room) and 2.4e-5 in fp32.
@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-10), (np.float32, 2.5e-5)])
@pytest.mark.parametrize("case", ["none", "causal", "padding", "causal+padding"])
def test_forward_matches_torch_sdpa(dtype, atol, case):
    q, k, v = qkv(dtype)
    causal = A.causal_mask(5) if "causal" in case else None
    padding = A.padding_mask([5, 3], 5) if "padding" in case else None
    mask = A.combine_masks(causal, padding)
    ours, weights = A.attention(q, k, v, mask=mask)
    if case == "causal":  # torch's own causal path, not a mask we built
        ref = torch_sdpa(q, k, v, is_causal=True)
    else:
        ref = torch_sdpa(q, k, v, mask=mask)
    assert ours.dtype == dtype
    assert np.max(np.abs(ours - ref)) < atol
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)  # 5 probabilities summed: ≤ 5·eps(fp32) = 6e-7
    if mask is not None:  # masked keys get exactly zero weight
        assert np.all(weights[~np.broadcast_to(mask, weights.shape)] == 0)


def test_fully_masked_row_gives_zeros_like_torch():
    q, k, v = qkv(np.float64, batch=1, heads=1, q_len=3, k_len=3)
    mask = np.array([[True, True, False], [False, False, False], [True, False, False]])
    ours, _ = A.attention(q, k, v, mask=mask)
    assert np.all(ours[0, 0, 1] == 0)
    assert np.max(np.abs(ours - torch_sdpa(q, k, v, mask=mask))) < 1e-12


def test_torch_version_matches_sdpa():
    q, k, v = qkv(np.float64)
    mask = A.combine_masks(A.causal_mask(5), A.padding_mask([5, 2], 5))
    out, _ = A.attention_torch(*(torch.from_numpy(a) for a in (q, k, v)), mask=torch.from_numpy(mask))
    assert np.max(np.abs(out.numpy() - torch_sdpa(q, k, v, mask=mask))) < 1e-12


@pytest.mark.parametrize("masked", [False, True])
def test_backward_matches_autograd_and_finite_differences(masked):
    q, k, v = qkv(np.float64, batch=1, heads=2, q_len=4, k_len=4, dim=3, seed=1)
    mask = A.combine_masks(A.causal_mask(4), A.padding_mask([3], 4)) if masked else None
    d_out = np.random.default_rng(2).standard_normal((1, 2, 4, 3))
    out, cache = A.attention_forward(q, k, v, mask=mask)
    dq, dk, dv = A.attention_backward(d_out, cache)

    tq, tk, tv = (torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v))
    ref = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=None if mask is None else torch.from_numpy(mask))
    ref.backward(torch.from_numpy(d_out))
    for ours, theirs in ((dq, tq.grad), (dk, tk.grad), (dv, tv.grad)):
        assert A.relative_error(ours, theirs.numpy()) < 1e-10

    def loss_wrt(index):
        def f(x):
            args = [q, k, v]
            args[index] = x
            return float(np.sum(A.attention(*args, mask=mask)[0] * d_out))
        return f

    for index, ours in enumerate((dq, dk, dv)):
        numeric = A.finite_difference_grad(loss_wrt(index), (q, k, v)[index])
        assert A.relative_error(ours, numeric) < 1e-6


def test_backward_sums_over_broadcast_axes():
    q, _, _ = qkv(np.float64, batch=2, heads=2, q_len=3, dim=4)
    k, v = q[:1, :1].copy(), q[:1, :1].copy() * 2  # one K/V broadcast over batch and heads
    out, cache = A.attention_forward(q, k, v)
    dq, dk, dv = A.attention_backward(np.ones_like(out), cache)
    assert dk.shape == k.shape and dv.shape == v.shape
    tq, tk, tv = (torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v))
    F.scaled_dot_product_attention(tq, tk.expand(2, 2, 3, 4), tv.expand(2, 2, 3, 4)).sum().backward()
    assert A.relative_error(dk, tk.grad.numpy()) < 1e-10 and A.relative_error(dv, tv.grad.numpy()) < 1e-10


def test_softmax_logsumexp_stable_where_naive_fails():
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]])
    with np.errstate(all="ignore"):
        assert np.isnan(A.softmax_naive(x)[0]).any()
    ref = torch.softmax(torch.from_numpy(x), -1).numpy()
    assert np.max(np.abs(A.softmax(x) - ref)) < 1e-15
    assert np.max(np.abs(A.logsumexp(x, axis=-1) - torch.logsumexp(torch.from_numpy(x), -1).numpy())) < 1e-12
    assert np.max(np.abs(A.log_softmax(x) - torch.log_softmax(torch.from_numpy(x), -1).numpy())) < 1e-12
    assert A.logsumexp(np.full(3, -np.inf)) == -np.inf


def test_cross_entropy_and_gradient_match_torch():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 6, 11)) * 3
    targets = rng.integers(0, 11, size=(2, 6))
    targets[0, :2] = -100  # ignored positions (prompt tokens, padding)
    t_logits = torch.from_numpy(logits.copy()).requires_grad_()
    ref = F.cross_entropy(t_logits.reshape(-1, 11), torch.from_numpy(targets).reshape(-1), ignore_index=-100)
    ref.backward()
    assert abs(A.cross_entropy(logits, targets) - ref.item()) < 1e-12
    assert A.relative_error(A.cross_entropy_grad(logits, targets), t_logits.grad.numpy()) < 1e-10
    assert abs(A.perplexity(np.log(11.0)) - 11.0) < 1e-9
    with pytest.raises(ValueError, match="ignore_index"):
        A.cross_entropy(logits, np.full((2, 6), -100))


def test_masks_shapes_and_errors():
    assert A.causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert A.padding_mask([2, 0], 3).shape == (2, 1, 1, 3)
    with pytest.raises(ValueError):
        A.causal_mask(4, 2)
    with pytest.raises(ValueError):
        A.padding_mask([4], 3)
    with pytest.raises(ValueError, match="dim"):
        A.attention(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4)))
    additive = np.where(A.causal_mask(3), 0.0, -np.inf)  # torch's float-mask style: refused, not misread
    with pytest.raises(ValueError, match="boolean"):
        A.attention(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), mask=additive)
    with pytest.raises(ValueError, match="boolean"):
        A.attention_torch(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), mask=torch.from_numpy(additive))


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 3), heads=st.integers(1, 3), q_len=st.integers(1, 6), extra_keys=st.integers(0, 3),
       dim=st.integers(1, 9), seed=st.integers(0, 10_000), causal=st.booleans())
def test_any_shape_matches_torch(batch, heads, q_len, extra_keys, dim, seed, causal):
    k_len = q_len + extra_keys
    q, k, v = qkv(np.float64, batch, heads, q_len, k_len, dim, seed)
    lengths = np.random.default_rng(seed).integers(1, k_len + 1, size=batch)
    mask = A.combine_masks(A.causal_mask(q_len, k_len) if causal else None, A.padding_mask(lengths, k_len))
    ours, _ = A.attention(q, k, v, mask=mask)
    ref = torch_sdpa(q, k, v, mask=np.broadcast_to(mask, (batch, 1, q_len, k_len)))
    assert np.max(np.abs(ours - ref)) < 1e-10
