"""Positional encodings: sinusoidal, learned and rotary (RoPE).

What you learn: that bidirectional (unmasked) attention alone cannot tell word
order (shuffle the tokens and the outputs shuffle the same way: permutation
equivariance), and that a causal mask breaks the symmetry but still sees the
earlier tokens as a set; three
ways to add order back; and RoPE, the one the default model uses, which
rotates queries and keys so that their dot product depends only on the
distance between two tokens. Our RoPE is checked against transformers' Llama
implementation with the default model's settings (rope_theta 100000, head_dim 64).

Run:  python src/basics/05_attention_positional_encoding.py      (or: llm-deeper lessons run basics/05)
Time: about 6 s (transformers is imported for the comparison).
"""

# %% Attention without positions is blind to order
import numpy as np
import torch

from llm_deeper.lesson import FP32_EPS, check, close, done, section, show
from llm_deeper.scratch.attention import attention, causal_mask
from llm_deeper.scratch.mha import MHAConfig, init_mha, mha_forward
from llm_deeper.scratch.positional import (
    add_learned_positions,
    apply_rope,
    apply_rope_interleaved,
    interleaved_to_half,
    learned_positions,
    rope,
    rope_cos_sin,
    rope_inv_freq,
    sinusoidal_encoding,
)

np.set_printoptions(linewidth=120)
rng = np.random.default_rng(0)
seq, d_model = 6, 16
config = MHAConfig(d_model=d_model, n_heads=2)
weights = init_mha(config, seed=1)
x = rng.standard_normal((1, seq, d_model))  # 6 token embeddings
perm = np.array([3, 0, 5, 1, 4, 2])  # a shuffle of the 6 positions

section("Bidirectional self-attention without positions: shuffle in, shuffle out")
out = mha_forward(config, weights, x)
out_shuffled = mha_forward(config, weights, x[:, perm])
show("permutation", perm)
check("attention(shuffled x) == shuffled attention(x): order is invisible", *close(out_shuffled, out[:, perm], atol=1e-12))
print("  'dog bites man' and 'man bites dog' would get the same set of outputs.")
causal = mha_forward(config, weights, x, mask=causal_mask(seq))
causal_shuffled = mha_forward(config, weights, x[:, perm], mask=causal_mask(seq))
check("with a causal mask, shuffling no longer just shuffles the outputs (what came before matters)",
      not np.allclose(causal_shuffled, causal[:, perm]))
earlier_reordered = np.array([2, 4, 0, 3, 1, 5])  # the last token stays last
last = mha_forward(config, weights, x[:, earlier_reordered], mask=causal_mask(seq))[0, -1]
check("... yet the last token still sees the tokens before it as a set: reorder them, its output stays",
      *close(last, causal[0, -1], atol=1e-12))

# %% Sinusoidal
section("Sinusoidal encoding: a fixed table of sines and cosines, added to the embeddings")
pe = sinusoidal_encoding(64, d_model)
show("table shape (positions, d_model)", pe.shape)
show("position 0", np.round(pe[0], 2))
show("position 1", np.round(pe[1], 2))
check("values stay in [−1, 1] whatever the position", bool(np.abs(pe).max() <= 1.0))
check("every position gets a distinct vector", len({tuple(np.round(r, 8)) for r in pe}) == len(pe))
dots = [pe[p] @ pe[p + 5] for p in range(50)]
check("PE[p]·PE[p+k] depends only on k (here k=5): Σ cos(k·θ_i)", np.allclose(dots, dots[0]), f"{dots[0]:.4f} for every p")
out_pe = mha_forward(config, weights, x + pe[:seq])
out_pe_shuffled = mha_forward(config, weights, x[:, perm] + pe[:seq])
check("with positions added, shuffling the tokens changes the outputs", not np.allclose(out_pe_shuffled, out_pe[:, perm]))

# %% Learned
section("Learned positions: a trainable table, one row per position (GPT-2)")
table = learned_positions(max_len=32, d_model=d_model)
show("table", f"nn.Embedding({table.num_embeddings}, {table.embedding_dim}) = {table.weight.numel()} parameters")
tx = torch.from_numpy(x).float().requires_grad_()
with_pos = add_learned_positions(tx, table)
with_pos.pow(2).sum().backward()
used = table.weight.grad.abs().sum(-1) > 0
check("training reaches only the rows of positions that occurred", bool(used[:seq].all() and not used[seq:].any()), f"rows 0…{seq - 1} of {table.num_embeddings}")
try:
    add_learned_positions(torch.zeros(1, 40, d_model), table)
    refused = False
except ValueError as exc:
    refused = True
    show("a 40-token input", f"ValueError: {exc}")
check("no row exists past max_len: a learned table cannot extrapolate", refused)
out_learned = mha_forward(config, weights, with_pos.detach().double().numpy())
out_learned_shuffled = mha_forward(config, weights, add_learned_positions(tx[:, perm], table).detach().double().numpy())
check("learned positions also break the symmetry", not np.allclose(out_learned_shuffled, out_learned[:, perm], atol=1e-6))

# %% Rotary (RoPE)
section("RoPE: rotate each (x_i, x_{i+d/2}) pair of q and k by position × θ_i")
head_dim, theta = 64, 100000.0  # the default model (SmolLM2-135M): 576 / 9 heads, rope_theta 100000
inv_freq = rope_inv_freq(head_dim, theta)
show("θ_i = theta^(−2i/d), first and last", f"{inv_freq[0]:.3g} … {inv_freq[-1]:.3g} rad per position")
show("one turn takes, fastest and slowest pair", f"{2 * np.pi / inv_freq[0]:.1f} … {2 * np.pi / inv_freq[-1]:.3g} positions")
q = rng.standard_normal((5, head_dim))
q_rot = rope(q, base=theta)
check("a rotation keeps every vector's length", *close(np.linalg.norm(q_rot, axis=-1), np.linalg.norm(q, axis=-1), atol=1e-12))
check("position 0 is not rotated", np.array_equal(q_rot[0], q[0]))

qv, kv = rng.standard_normal(head_dim), rng.standard_normal(head_dim)


def score(m: int, n: int) -> float:
    """q at position m · k at position n, both rotated."""
    return float(rope(qv[None], [m], theta)[0] @ rope(kv[None], [n], theta)[0])


print("  q at position m, k at position n: the score depends on m − n only")
for m, n in ((3, 1), (10, 8), (1002, 1000)):
    print(f"    m={m:5d} n={n:5d}  m−n={m - n}  score={score(m, n):+.10f}")
check("relative-position property: same offset, same score", abs(score(3, 1) - score(1002, 1000)) < 1e-9 and abs(score(10, 8) - score(3, 1)) < 1e-9)
check("a different offset gives a different score", abs(score(3, 1) - score(4, 1)) > 1e-3)
check("the interleaved layout (the paper's) is the same rotation with dimensions reordered",
      *close(interleaved_to_half(apply_rope_interleaved(q, np.arange(5), theta)), rope(interleaved_to_half(q), base=theta), atol=1e-12))

# RoPE acts on q and k inside attention (values are not rotated), so order matters again:
head_q, head_k, head_v = (rng.standard_normal((1, seq, head_dim)) for _ in range(3))
plain, _ = attention(rope(head_q, base=theta), rope(head_k, base=theta), head_v)
shuffled, _ = attention(rope(head_q[:, perm], base=theta), rope(head_k[:, perm], base=theta), head_v[:, perm])
check("with RoPE, shuffling the tokens changes the attention outputs", not np.allclose(shuffled, plain[:, perm]))

# %% Against transformers' Llama RoPE
section("Same numbers as transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb")
from transformers import LlamaConfig  # noqa: E402
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb  # noqa: E402

llama = LlamaConfig(hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=head_dim,
                    rope_parameters={"rope_type": "default", "rope_theta": theta})
positions = np.arange(32)
tq = torch.from_numpy(rng.standard_normal((1, 9, 32, head_dim)).astype(np.float32))
tk = torch.from_numpy(rng.standard_normal((1, 3, 32, head_dim)).astype(np.float32))
cos_t, sin_t = LlamaRotaryEmbedding(llama)(tq, torch.from_numpy(positions)[None])
ref_q, ref_k = apply_rotary_pos_emb(tq, tk, cos_t, sin_t)
cos, sin = rope_cos_sin(positions, head_dim, theta)
show("q (batch, heads, seq, head_dim), k with 3 KV heads", (tuple(tq.shape), tuple(tk.shape)))
# transformers rounds each angle position·θ_i to fp32 (error ≤ eps·position), and that error scales each rotated value.
rope_atol = 2 * FP32_EPS * positions.max() * float(max(tq.abs().max(), tk.abs().max()))
check("our rotated queries equal transformers' (fp32 reference)", *close(apply_rope(tq.double().numpy(), cos, sin), ref_q, atol=rope_atol))
check("our rotated keys equal transformers'", *close(apply_rope(tk.double().numpy(), cos, sin), ref_k, atol=rope_atol))
wrong_cos, wrong_sin = rope_cos_sin(positions, head_dim, 10000.0)
drift = float(np.abs(apply_rope(tq.double().numpy(), wrong_cos, wrong_sin) - ref_q.numpy()).max())
check("the wrong theta (10000 instead of 100000) is caught at once", drift > 0.1, f"max |diff| = {drift:.2f}")

done()
