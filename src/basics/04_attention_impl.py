"""Scaled dot-product attention, complete: batched forward, padding masks, backward, in numpy and torch.

What you learn: attention over a padded batch with several heads; how a
padding mask keeps pad tokens from leaking into real ones; the backward pass
written by hand (dQ, dK, dV through the softmax Jacobian) and checked two
ways, against finite differences and against torch autograd; and the same
function written in torch, equal to PyTorch's fused kernel in fp64 and fp32.

Run:  python src/basics/04_attention_impl.py      (or: llm-deeper lessons run basics/04)
Time: about 3 s (about 2 s with --quick).
"""

# %% A padded batch
import numpy as np
import torch
import torch.nn.functional as F

from llm_deeper.lesson import check, close, done, is_quick, section, show, sum_tolerance
from llm_deeper.scratch.attention import (
    attention,
    attention_backward,
    attention_forward,
    attention_torch,
    causal_mask,
    combine_masks,
    finite_difference_grad,
    padding_mask,
    relative_error,
)

rng = np.random.default_rng(0)
batch, heads, seq, head_dim = 2, 2, 5, 8
lengths = [5, 3]  # sequence 1 has 3 real tokens and 2 padding slots
q, k, v = (rng.standard_normal((batch, heads, seq, head_dim)) for _ in range(3))

section("A batch of two sequences, the second one padded")
show("q, k, v shape (batch, heads, seq, head_dim)", q.shape)
show("real lengths", lengths)
pad = padding_mask(lengths, seq)
causal = causal_mask(seq)
mask = combine_masks(causal, pad)
show("padding_mask shape (broadcasts over heads and queries)", pad.shape)
show("causal_mask shape", causal.shape)
show("combined mask shape", mask.shape)
print("  mask for sequence 1 (rows = queries, columns = keys):")
print("  " + str(mask[1, 0].astype(int)).replace("\n", "\n  "))
check("the causal mask AND the padding mask: no future, no padding", bool(np.all(mask[1, 0, 4] == [True, True, True, False, False])))

# %% Forward, against PyTorch
section("Forward pass, numpy vs torch.nn.functional.scaled_dot_product_attention")
out, weights = attention(q, k, v, mask=mask)
ref = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)), attn_mask=torch.from_numpy(mask))
show("output shape", out.shape)
# head_dim-wide products and seq-long sums of unit normals: rounding 4·eps·√(head_dim·seq)·|score| — 1e-14 in fp64, 1e-5 in fp32.
check("fp64: numpy attention equals PyTorch", *close(out, ref, atol=1e-10))
q32, k32, v32 = (a.astype(np.float32) for a in (q, k, v))
out32, _ = attention(q32, k32, v32, mask=mask)
ref32 = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q32, k32, v32)), attn_mask=torch.from_numpy(mask))
check("fp32: numpy attention equals PyTorch", *close(out32, ref32, atol=sum_tolerance(head_dim * seq, scale=float(np.abs(q).max() * np.abs(k).max()))))
check("padding keys get zero weight from every query", bool(np.all(weights[1, :, :, 3:] == 0)))

# %% What padding must not change
section("Padding must not leak into the real tokens")
k_noisy, v_noisy = k.copy(), v.copy()
k_noisy[1, :, 3:] = 1e3 * rng.standard_normal((heads, 2, head_dim))  # garbage in the pad slots
v_noisy[1, :, 3:] = 1e3
out_noisy, _ = attention(q, k_noisy, v_noisy, mask=mask)
check("changing padded keys/values leaves the real tokens' outputs unchanged", *close(out_noisy[1, :, :3], out[1, :, :3], atol=1e-12))  # masked weights are exactly 0
alone, _ = attention(q[1:, :, :3], k[1:, :, :3], v[1:, :, :3], mask=causal_mask(3))
check("a padded sequence gives the same outputs as running it alone", *close(out[1:, :, :3], alone, atol=1e-12))
print("  (outputs at the pad positions themselves are computed but meaningless;")
print("   the loss ignores them: label -100, the ignore_index of cross-entropy, taught in hfcore/03.)")

# %% Backward by hand
section("Backward pass: dQ, dK, dV by hand")
print("  S = scale·QKᵀ, P = softmax(S), O = PV")
print("  dV = Pᵀ dO;  dP = dO Vᵀ;  dS = P ⊙ (dP − rowsum(dP ⊙ P));  dQ = scale·dS K;  dK = scale·dSᵀ Q")
d_out = rng.standard_normal(out.shape)  # the gradient some loss would send back
_, cache = attention_forward(q, k, v, mask=mask)
dq, dk, dv = attention_backward(d_out, cache)
show("dq, dk, dv shapes", (dq.shape, dk.shape, dv.shape))

tq, tk, tv = (torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v))
F.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(mask)).backward(torch.from_numpy(d_out))
for name, ours, theirs in (("dQ", dq, tq.grad), ("dK", dk, tk.grad), ("dV", dv, tv.grad)):
    err = relative_error(ours, theirs.numpy())
    check(f"{name} equals torch autograd", err < 1e-10, f"relative error {err:.1e}")

# Finite differences cost two forward passes per number: check a smaller slice in quick mode.
small = (slice(None), slice(None), slice(0, 3 if is_quick() else 5), slice(None))
q_s, k_s, v_s, m_s, d_s = q[small], k[small], v[small], mask[..., : q[small].shape[2], : q[small].shape[2]], d_out[small]
_, cache_s = attention_forward(q_s, k_s, v_s, mask=m_s)
grads = attention_backward(d_s, cache_s)
for index, name in enumerate(("dQ", "dK", "dV")):
    def loss(x, index=index):
        args = [q_s, k_s, v_s]
        args[index] = x
        return float(np.sum(attention(*args, mask=m_s)[0] * d_s))  # L = Σ O ⊙ dO, so dL/dO = dO
    numeric = finite_difference_grad(loss, (q_s, k_s, v_s)[index])
    err = relative_error(grads[index], numeric)
    check(f"{name} equals central finite differences", err < 1e-6, f"relative error {err:.1e}, {numeric.size} numbers")
check("no gradient reaches the padded keys and values", bool(np.all(dk[1, :, 3:] == 0) and np.all(dv[1, :, 3:] == 0)))

# %% The same function in torch
section("The same attention written with torch ops")
t_out, t_weights = attention_torch(*(torch.from_numpy(a) for a in (q, k, v)), mask=torch.from_numpy(mask))
check("attention_torch equals the fused PyTorch kernel", *close(t_out, ref, atol=1e-12))
check("…and the numpy version, weights included", *close(t_weights, weights, atol=1e-12))
tq2 = torch.from_numpy(q.copy()).requires_grad_()
attention_torch(tq2, torch.from_numpy(k), torch.from_numpy(v), mask=torch.from_numpy(mask))[0].backward(torch.from_numpy(d_out))
check("autograd through attention_torch gives our hand-written dQ", relative_error(tq2.grad.numpy(), dq) < 1e-10)
show("memory of one score matrix at seq 4096, fp32, per head", f"{4096 * 4096 * 4 / 2**20:.0f} MiB  (why fused kernels never store it whole)")

done()
