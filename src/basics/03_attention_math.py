"""Attention step by step: Q, K, V, scores, scaling, the causal mask, softmax, weighted sum.

What you learn: every intermediate of softmax(QKᵀ/√d_k + mask)·V on four
tokens you can read in full, with its shape; what the causal mask does to the
scores (−∞) and to the weights (exact zeros); and that the library's
`attention` and PyTorch's `scaled_dot_product_attention` compute the same.

Run:  python src/basics/03_attention_math.py      (or: llm-deeper lessons run 03)
Time: about 2 s.
"""

# %% Four tokens, three small matrices
import numpy as np
import torch
import torch.nn.functional as F

from llm_deeper.lesson import check, close, done, section, show
from llm_deeper.scratch.attention import attention, causal_mask, softmax

np.set_printoptions(precision=2, suppress=True)
tokens = ["The", "cat", "sat", "down"]
d_model, d_k = 6, 4
rng = np.random.default_rng(24)  # a seed whose weights are all readable at two decimals
X = rng.standard_normal((len(tokens), d_model))  # one embedding row per token (random here; learned in a real model)
W_q, W_k, W_v = (rng.standard_normal((d_model, d_k)) / np.sqrt(d_model) for _ in range(3))

section("Inputs: token embeddings X and projections W_q, W_k, W_v")
show("tokens", tokens)
show("X.shape (seq, d_model)", X.shape)
show("W_q.shape = W_k.shape = W_v.shape (d_model, d_k)", W_q.shape)

# %% Queries, keys, values
section("Q = X W_q (what each token looks for), K = X W_k (what it offers), V = X W_v (what it passes on)")
Q, K, V = X @ W_q, X @ W_k, X @ W_v
print("Q =\n", Q)
show("Q.shape, K.shape, V.shape", (Q.shape, K.shape, V.shape))
check("one query, one key and one value per token", Q.shape == K.shape == V.shape == (4, d_k))

# %% Scores
section("Scores = Q Kᵀ: how well query i matches key j")
S = Q @ K.T
print("S =\n", S)
check("S[i, j] is the dot product of query i and key j", np.isclose(S[2, 1], Q[2] @ K[1]))
check("S is (queries × keys) = 4 × 4", S.shape == (4, 4))

section("Scale by 1/√d_k (lesson 02 showed why)")
S_scaled = S / np.sqrt(d_k)
show("√d_k", np.sqrt(d_k))
check("scaling divides every score by 2", np.allclose(S_scaled * 2, S))

# %% The causal mask
section("Causal mask: token i may look at tokens 0 … i only")
mask = causal_mask(len(tokens))
print(mask.astype(int))
S_masked = np.where(mask, S_scaled, -np.inf)
print("masked scores (−∞ above the diagonal):")
print(S_masked)
check("every future position is −∞ before the softmax", bool(np.all(np.isneginf(S_masked[~mask]))))

# %% Softmax, row by row
section("Softmax over each row: exp(−∞) = 0, so the future gets exactly zero weight")
A = softmax(S_masked, axis=-1)
print("weights =\n", A)
check("each row sums to 1", np.allclose(A.sum(-1), 1.0))
check("the future gets exactly 0 (not a small number)", bool(np.all(A[~mask] == 0.0)))
check("token 0 can only attend to itself: weight 1", A[0, 0] == 1.0)

section("The mask table, from these numbers")
print("  Scores after masking (what goes INTO the softmax):")
print("           " + "".join(f"{t:>8}" for t in tokens))
for i, t in enumerate(tokens):
    print(f"  {t:>6}:  " + "".join(f"{'-∞':>8}" if np.isneginf(x) else f"{x:8.2f}" for x in S_masked[i]))
print("  Weights after the softmax (what comes OUT):")
print("           " + "".join(f"{t:>8}" for t in tokens))
for i, t in enumerate(tokens):
    print(f"  {t:>6}:  " + "".join(f"{x:8.2f}" for x in A[i]) + f"   ← sees {', '.join(tokens[:i + 1])}")
print("  (A table that shows −∞ next to probabilities mixes the two stages: −∞ lives in the")
print("   scores, and the softmax turns it into an exact 0 in the weights.)")
check("row i has exactly i + 1 non-zero weights", [int((A[i] > 0).sum()) for i in range(4)] == [1, 2, 3, 4])

# %% Weighted sum of values
section("Output = weights · V: each token's output is a blend of the values it may see")
O = A @ V
print("O =\n", O)
check("output 0 is value 0 itself", np.allclose(O[0], V[0]))
check("output 3 is the weighted average of all four values", np.allclose(O[3], sum(A[3, j] * V[j] for j in range(4))))
check("output shape (seq, d_k)", O.shape == (4, d_k))

# %% The same thing in one call, and in PyTorch
section("One call: the library, and PyTorch's fused kernel")
O_lib, A_lib = attention(Q, K, V, mask=mask)
check("llm_deeper.scratch.attention gives the same output and weights", np.allclose(O_lib, O) and np.allclose(A_lib, A))
O_torch = F.scaled_dot_product_attention(*(torch.from_numpy(a)[None] for a in (Q, K, V)), is_causal=True)[0]
check("torch.nn.functional.scaled_dot_product_attention(is_causal=True) agrees", *close(O, O_torch, atol=1e-12))
unmasked, _ = attention(Q, K, V)
check("without the mask, early tokens see the future (outputs change)", not np.allclose(unmasked[:3], O[:3]) and np.allclose(unmasked[3], O[3]))

done()
