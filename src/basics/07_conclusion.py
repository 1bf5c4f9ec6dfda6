"""Putting it together: a transformer block, pre-LN and post-LN, stacked, run on real token ids.

What you learn: how attention, a feed-forward net, residual connections and
LayerNorm make one transformer block; that our numpy block equals PyTorch's
`nn.TransformerEncoderLayer` with the same weights; how pre-LN and post-LN
differ in what happens to the residual stream as blocks stack up; and a full
forward pass: the default model's tokenizer turns a sentence into ids, its
embedding table turns ids into vectors, and a stack of our blocks (random
weights, the default model's widths) turns them into next-token logits.

Run:  python src/basics/07_conclusion.py      (or: llm-deeper lessons run basics/07)
Time: about 6 s (about 4 s with --quick).
"""

# %% One block, and its PyTorch twin
import os

# These matrices are small (a dozen tokens): one BLAS thread beats two that hand
# work back and forth, by 4× on a busy 2-core machine. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from llm_deeper.lesson import check, close, done, is_quick, section, show  # noqa: E402
from llm_deeper.scratch.attention import causal_mask, cross_entropy, perplexity  # noqa: E402
from llm_deeper.scratch.block import (  # noqa: E402
    BlockConfig,
    block_forward,
    block_param_count,
    init_stack,
    load_torch_layer,
    stack_forward,
)

rng = np.random.default_rng(0)

section("A block = attention + feed-forward, each wrapped in a residual and a LayerNorm")
print("  pre-LN  (GPT-2 onward): x = x + Attn(LN(x));   x = x + FFN(LN(x))")
print("  post-LN (2017 paper):   x = LN(x + Attn(x));   x = LN(x + FFN(x))")
for norm_first in (True, False):
    torch.manual_seed(1)
    layer = torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=norm_first, dtype=torch.float64).eval()
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so the comparison covers them
        for name, p in layer.named_parameters():
            if "norm" in name or "bias" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.2, 0.2)
    config, weights = load_torch_layer(layer.state_dict(), n_heads=4, norm_first=norm_first)
    x = rng.standard_normal((2, 6, 32))
    with torch.no_grad():
        ref = layer(torch.from_numpy(x), src_mask=torch.from_numpy(~causal_mask(6)), is_causal=True)
    name = "pre-LN" if norm_first else "post-LN"
    check(f"{name}: our numpy block equals nn.TransformerEncoderLayer", *close(block_forward(config, weights, x, mask=causal_mask(6)), ref, atol=1e-12))
check("parameter count matches torch's", block_param_count(config) == sum(p.numel() for p in layer.parameters()), f"{block_param_count(config):,}")

# %% Real token ids
section("Real text: the default model's tokenizer and embedding table")
from safetensors import safe_open  # noqa: E402

from llm_deeper.models.loaders import load_tokenizer, model_folder  # noqa: E402
from llm_deeper.models.registry import resolve  # noqa: E402

tokenizer = load_tokenizer("smollm2-135m-instruct")
sentence = "Attention lets every token look back at the tokens before it."
ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
show("sentence", repr(sentence))
show("token ids", ids)
show("tokens", tokenizer.convert_ids_to_tokens(ids))
check("the ids decode back to the sentence", tokenizer.decode(ids) == sentence, f"{len(ids)} tokens")
with safe_open(str(model_folder(resolve("smollm2-135m-instruct")) / "model.safetensors"), framework="np") as f:
    embedding = f.get_tensor("model.embed_tokens.weight")  # (vocab, 576) float32, trained; no other weights are read
show("embedding table (vocab, d_model)", embedding.shape)
x = embedding[ids][None].astype(np.float64)  # (1, seq, 576): one row per token id (fp64 from here on)
show("x = embedding[ids] (batch, seq, d_model)", x.shape)
check("row i of x is the embedding of token i", np.array_equal(x[0, 3], embedding[ids[3]].astype(np.float64)))

# %% A stack of blocks on those embeddings
n_layers = 2 if is_quick() else 4
config = BlockConfig(d_model=576, n_heads=9, n_kv_heads=3, d_ff=1536, norm_first=True)  # the default model's widths, with GQA
section(f"A stack of {n_layers} pre-LN blocks (random weights) at the default model's widths")
stack = init_stack(config, n_layers=n_layers, seed=2)
show("block config", f"d_model {config.d_model}, {config.n_heads} query heads, {config.attention.kv_heads} KV heads, FFN {config.ff_width}")
show("parameters per block / stack", f"{block_param_count(config):,} / {n_layers * block_param_count(config):,}")
mask = causal_mask(len(ids))
hidden, per_layer = stack_forward(stack, x, mask=mask, return_all=True)
for i, h in enumerate(per_layer):
    show(f"after block {i}", f"{h.shape}, residual-stream std {h.std():.3f}")
show("after the final LayerNorm", hidden.shape)
check("shape is kept through the stack: (batch, seq, d_model)", hidden.shape == x.shape)
check("every number is finite", bool(np.isfinite(hidden).all()))

extra = tokenizer(" Later tokens cannot change earlier outputs.", add_special_tokens=False)["input_ids"]
longer = embedding[ids + extra][None].astype(np.float64)
hidden_longer = stack_forward(stack, longer, mask=causal_mask(len(ids) + len(extra)))
check("causal: appending tokens leaves the earlier outputs unchanged", *close(hidden_longer[:, : len(ids)], hidden, atol=1e-10))
check("…while the new positions get their own outputs", not np.allclose(hidden_longer[0, len(ids)], hidden[0, -1]))

# %% Pre-LN and post-LN, deeper
section("Pre-LN vs post-LN: what stacking does to the residual stream")
depth = 6 if is_quick() else 12
pre = init_stack(BlockConfig(d_model=576, n_heads=9, n_kv_heads=3, d_ff=1536, norm_first=True), n_layers=depth, seed=3)
post = init_stack(BlockConfig(d_model=576, n_heads=9, n_kv_heads=3, d_ff=1536, norm_first=False), n_layers=depth, seed=3)
x_unit = x / x.std()  # start both from unit scale
_, pre_layers = stack_forward(pre, x_unit, mask=mask, return_all=True)
_, post_layers = stack_forward(post, x_unit, mask=mask, return_all=True)
pre_std = [float(h.std()) for h in pre_layers]
post_std = [float(h.std(axis=-1).mean()) for h in post_layers]
show("pre-LN stream std by depth", np.round(pre_std, 2))
show("post-LN stream std by depth", np.round(post_std, 3))
check("pre-LN: the stream grows at every block (each adds to an untouched identity path)", bool(np.all(np.diff(pre_std) > 0)) and pre_std[-1] > 1.1 * pre_std[0], f"{pre_std[0]:.2f} → {pre_std[-1]:.2f}")
check("post-LN: every block ends in a LayerNorm, so each token's vector stays at std 1", np.allclose(post_std, 1.0, atol=1e-3))  # LayerNorm's eps=1e-5 under the root: std = 1 − eps/(2·var), not a rounding question

# %% Next-token logits
section("From hidden states to next-token logits (tied embeddings, as SmolLM2)")
logits = hidden[0].astype(np.float32) @ embedding.T  # (seq, vocab) in fp32: score every word of the vocabulary at every position
show("logits (seq, vocab)", logits.shape)
targets = np.array(ids[1:])  # position t predicts token t + 1
loss = cross_entropy(logits[:-1], targets)
show("next-token loss / perplexity", f"{loss:.2f} nats / {perplexity(loss):,.0f}")
ref_loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits[:-1]), torch.from_numpy(targets)).item()
check("our cross-entropy equals torch's on these logits", abs(loss - ref_loss) < 1e-4, f"{loss:.6f} vs {ref_loss:.6f}")
print("  Random blocks predict nothing useful. Week 2 (src/hfcore/) trains such a stack,")
print("  TinyGPT, until this loss falls; the real SmolLM2 is 30 trained blocks of this shape,")
print("  with RMSNorm, a gated FFN and RoPE in place of LayerNorm, GELU and no positions.")

done()
