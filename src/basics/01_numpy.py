"""NumPy for attention: shapes, broadcasting, batched matmul and einsum.

What you learn: the array shapes attention works with (batch, heads, seq,
head_dim), how reshape/transpose split a model dimension into heads, how
broadcasting adds biases and masks without copies, how `@` multiplies whole
batches of matrices, and how einsum writes the same products by index names.

Run:  python src/basics/01_numpy.py      (or: llm-deeper lessons run basics/01)
Time: about 1 s.
"""

# %% Tensors and their shapes
import numpy as np

from llm_deeper.lesson import check, done, section, show
from llm_deeper.scratch.mha import merge_heads, split_heads

section("A batch of token vectors")
batch, seq, d_model, n_heads = 2, 5, 12, 3  # distinct sizes, so every shape below is readable
head_dim = d_model // n_heads
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, seq, d_model))  # 2 sequences × 5 tokens × 12 features
show("x.shape (batch, seq, d_model)", x.shape)
show("x.ndim", x.ndim)
show("x.dtype", x.dtype)
show("x.size (numbers stored)", x.size)
check("size is the product of the shape", x.size == batch * seq * d_model)
show("x[0, 1] (sequence 0, token 1)", np.round(x[0, 1], 2))
check("indexing one token leaves its feature vector", x[0, 1].shape == (d_model,))

# %% Reshape and transpose: from one wide vector to several heads
section("Split d_model into heads")
heads = split_heads(x, n_heads)  # reshape to (batch, seq, heads, head_dim), then swap seq and heads
show("split_heads(x).shape (batch, heads, seq, head_dim)", heads.shape)
check("head h holds features h·head_dim … (h+1)·head_dim−1 of every token", np.array_equal(heads[0, 1, 2], x[0, 2, head_dim:2 * head_dim]))
check("merge_heads undoes split_heads exactly", np.array_equal(merge_heads(heads), x))
check("transpose is a view: no data copied", np.shares_memory(heads, x))
check("but the view is no longer contiguous in memory", not heads.flags["C_CONTIGUOUS"])

# %% Broadcasting
section("Broadcasting: align shapes from the right, stretch the 1s")
bias = rng.standard_normal(d_model)
y = x + bias  # (2, 5, 12) + (12,) → the bias is added to every token of every sequence
show("(2, 5, 12) + (12,)", y.shape)
check("the bias was added to every token", np.allclose(y[1, 3] - x[1, 3], bias))
col, row = np.arange(3).reshape(3, 1), np.arange(4).reshape(1, 4)
show("(3, 1) + (1, 4)", (col + row).shape)
check("(3, 1) + (1, 4) → (3, 4) with entry [i, j] = i + j", (col + row)[2, 3] == 5 and (col + row).shape == (3, 4))
mask = np.tril(np.ones((seq, seq), dtype=bool))
scores = np.zeros((batch, n_heads, seq, seq))
masked = np.where(mask, scores, -np.inf)  # one (seq, seq) mask serves every batch and head
show("np.where((5, 5) mask, (2, 3, 5, 5) scores, -inf)", masked.shape)
check("a (seq, seq) mask broadcasts over batch and heads", masked.shape == scores.shape and np.isinf(masked[1, 1, 0, 3]))
try:
    x + np.ones(5)
    broadcast_failed = False
except ValueError as exc:
    broadcast_failed = True
    show("(2, 5, 12) + (5,)", f"ValueError: {exc}")
check("mismatched trailing sizes refuse to broadcast", broadcast_failed)

# %% Batched matrix multiplication
section("Batched matmul: @ multiplies the last two axes, batches the rest")
q = split_heads(rng.standard_normal((batch, seq, d_model)), n_heads)
k = split_heads(rng.standard_normal((batch, seq, d_model)), n_heads)
k_t = np.swapaxes(k, -1, -2)  # (batch, heads, head_dim, seq)
s = q @ k_t  # (batch, heads, seq, head_dim) @ (batch, heads, head_dim, seq)
show("q.shape", q.shape)
show("k.swapaxes(-1, -2).shape", k_t.shape)
show("(q @ kᵀ).shape (batch, heads, seq_q, seq_k)", s.shape)
loop = np.empty_like(s)
for b in range(batch):
    for h in range(n_heads):
        loop[b, h] = q[b, h] @ k[b, h].T
check("one @ equals a Python loop over batch and heads", np.allclose(s, loop))
check("entry [b, h, i, j] is the dot product of query i and key j", np.isclose(s[1, 0, 2, 3], q[1, 0, 2] @ k[1, 0, 3]))

# %% einsum: name the axes, say which are summed
section("einsum: the same products, written by index names")
s_einsum = np.einsum("bhqd,bhkd->bhqk", q, k)  # d appears on the left only → summed
show("einsum('bhqd,bhkd->bhqk')", s_einsum.shape)
check("einsum scores equal q @ kᵀ", np.allclose(s_einsum, s))
weights = rng.random((batch, n_heads, seq, seq))
v = split_heads(rng.standard_normal((batch, seq, d_model)), n_heads)
mixed = np.einsum("bhqk,bhkd->bhqd", weights, v)  # weighted sum of value vectors
check("einsum weighted sum equals weights @ v", np.allclose(mixed, weights @ v))
w_q = rng.standard_normal((d_model, d_model))
check("a projection x @ W is einsum('bsd,de->bse')", np.allclose(np.einsum("bsd,de->bse", x, w_q), x @ w_q))

# %% Precision
section("dtypes: float32 keeps ~7 digits, float64 ~16")
show("float32(1) + 1e-8 == 1", np.float32(1) + np.float32(1e-8) == np.float32(1))
check("float32 cannot see a 1e-8 change at 1.0, float64 can", np.float32(1) + np.float32(1e-8) == np.float32(1) and 1.0 + 1e-8 != 1.0)
show("machine epsilon float32 / float64", f"{np.finfo(np.float32).eps:.1e} / {np.finfo(np.float64).eps:.1e}")
check("parity tests use float64 for this reason: its epsilon is ~1e-16", np.finfo(np.float64).eps < 1e-15)

done()
