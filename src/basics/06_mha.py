"""Multi-head attention, and its grouped-query (GQA) and multi-query (MQA) variants.

What you learn: how one attention layer runs several heads side by side
(project, split into heads, attend per head, concatenate, project out), that
our numpy layer equals `torch.nn.MultiheadAttention` once its weights are
copied in, and how GQA and MQA share key/value heads to cut parameters and,
above all, the KV cache; with the default model's real shapes (576 wide,
9 query heads, 3 KV heads) checked against its checkpoint.

Run:  python src/basics/06_mha.py      (or: llm-deeper lessons run basics/06)
Time: about 5 s.
"""

# %% One layer, step by step
import numpy as np
import torch
import torch.nn.functional as F

from llm_deeper.lesson import check, close, done, section, show
from llm_deeper.scratch.attention import attention, causal_mask
from llm_deeper.scratch.mha import (
    MHAConfig,
    grouped_attention,
    init_mha,
    kv_cache_values_per_token,
    load_torch_mha,
    merge_heads,
    mha_forward,
    param_count,
    repeat_kv,
    split_heads,
)

rng = np.random.default_rng(0)
batch, seq = 2, 5
config = MHAConfig(d_model=32, n_heads=4)
w = init_mha(config, seed=1)
x = rng.standard_normal((batch, seq, config.d_model))
mask = causal_mask(seq)

section(f"Multi-head attention by hand: d_model={config.d_model}, {config.n_heads} heads of {config.head_dim}")
show("x (batch, seq, d_model)", x.shape)
q_flat, k_flat, v_flat = x @ w.w_q + w.b_q, x @ w.w_k + w.b_k, x @ w.w_v + w.b_v
show("1. project: x W_q + b_q (batch, seq, heads·head_dim)", q_flat.shape)
q, k, v = (split_heads(t, config.n_heads) for t in (q_flat, k_flat, v_flat))
show("2. split heads (batch, heads, seq, head_dim)", q.shape)
heads, weights = attention(q, k, v, mask=mask)
show("3. attention in every head at once (batch, heads, seq, head_dim)", heads.shape)
show("   weights (batch, heads, seq_q, seq_k)", weights.shape)
concat = merge_heads(heads)
show("4. concatenate heads (batch, seq, d_model)", concat.shape)
out = concat @ w.w_o + w.b_o
show("5. output projection (batch, seq, d_model)", out.shape)
check("the five steps equal mha_forward", *close(out, mha_forward(config, w, x, mask=mask), atol=1e-12))
last = weights[0, :, -1]  # what the last token looks at, per head
print("  last token's attention weights, one row per head:")
print("  " + str(np.round(last, 2)).replace("\n", "\n  "))
check("each head spreads its attention differently", not np.allclose(last[0], last[1]) and not np.allclose(last[1], last[2]))

# %% Against torch.nn.MultiheadAttention
section("The same layer as torch.nn.MultiheadAttention (weights copied by the loader)")
torch.manual_seed(0)
layer = torch.nn.MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64).eval()
with torch.no_grad():
    layer.in_proj_bias.uniform_(-0.1, 0.1)  # torch starts biases at zero; give them values to compare
    layer.out_proj.bias.uniform_(-0.1, 0.1)
t_config, t_w = load_torch_mha(layer.state_dict(), n_heads=4)
show("state_dict", {name: tuple(t.shape) for name, t in layer.state_dict().items()})
tx = torch.from_numpy(x)
ref, ref_w = layer(tx, tx, tx, attn_mask=torch.from_numpy(~mask), need_weights=True, average_attn_weights=False)  # torch: True = blocked
ours, ours_w = mha_forward(t_config, t_w, x, mask=mask, return_weights=True)
check("our numpy MHA equals torch.nn.MultiheadAttention", *close(ours, ref, atol=1e-12))
check("…per-head attention weights included", *close(ours_w, ref_w, atol=1e-12))
check("parameter count matches torch's", param_count(t_config) == sum(p.numel() for p in layer.parameters()), f"{param_count(t_config):,}")

# %% GQA and MQA
section("Grouped-query attention: fewer key/value heads, shared by groups of query heads")
for n_kv in (4, 2, 1):
    cfg = MHAConfig(d_model=32, n_heads=4, n_kv_heads=n_kv)
    cw = init_mha(cfg, seed=2)
    k_heads = split_heads(x @ cw.w_k + cw.b_k, cfg.kv_heads)
    show(f"{cfg.kind} ({n_kv} KV heads): K per layer", f"{k_heads.shape} → query head h reads KV head h // {cfg.group_size}")
q8 = rng.standard_normal((batch, 8, seq, 16))
k2, v2 = rng.standard_normal((batch, 2, seq, 16)), rng.standard_normal((batch, 2, seq, 16))
grouped = grouped_attention(q8, k2, v2, mask=mask)
repeated, _ = attention(q8, repeat_kv(k2, 4), repeat_kv(v2, 4), mask=mask)
check("GQA (8 query heads, 2 KV heads) equals repeating each KV head 4× and running MHA", *close(grouped, repeated, atol=1e-12))
sdpa = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q8, k2, v2)), attn_mask=torch.from_numpy(mask), enable_gqa=True)
check("…and PyTorch's SDPA with enable_gqa=True", *close(grouped, sdpa, atol=1e-12))
mqa = grouped_attention(q8, k2[:, :1], v2[:, :1], mask=mask)
check("MQA is the one-KV-head case", *close(mqa, attention(q8, repeat_kv(k2[:, :1], 8), repeat_kv(v2[:, :1], 8), mask=mask)[0], atol=1e-12))

# %% What the sharing saves, on the default model's shapes
section("Parameters and KV cache at SmolLM2-135M's shapes (d_model 576, 9 heads of 64, no biases)")
layers, context, bytes_per_value = 30, 2048, 2  # 30 layers, a 2048-token context, fp16 cache
print("  variant  KV heads  attention params/layer   KV cache (30 layers, 2048 tokens, fp16)")
sizes = {}
for kv in (9, 3, 1):
    cfg = MHAConfig(d_model=576, n_heads=9, n_kv_heads=kv, bias=False)
    cache = layers * kv_cache_values_per_token(cfg) * context * bytes_per_value  # 2 × layers × kv_heads × head_dim × tokens × bytes
    sizes[kv] = (param_count(cfg), cache)
    print(f"  {cfg.kind:7}  {kv:8d}  {param_count(cfg):21,}   {cache / 2**20:8.1f} MiB")
check("GQA with 3 KV heads caches 3× less than MHA", sizes[9][1] == 3 * sizes[3][1])
check("MQA caches 9× less than MHA", sizes[9][1] == 9 * sizes[1][1])

from safetensors import safe_open  # noqa: E402

from llm_deeper.models.loaders import model_folder  # noqa: E402
from llm_deeper.models.registry import resolve  # noqa: E402

folder = model_folder(resolve("smollm2-135m-instruct"))  # converted once and cached; only tensor shapes are read here
with safe_open(str(folder / "model.safetensors"), framework="np") as f:
    shapes = {name: f.get_slice(f"model.layers.0.self_attn.{name}.weight").get_shape() for name in ("q_proj", "k_proj", "v_proj", "o_proj")}
show("the real checkpoint, layer 0 (out, in)", shapes)
real = sum(int(np.prod(s)) for s in shapes.values())
check("the default model is GQA: k_proj/v_proj are 3 heads × 64 = 192 wide", shapes["k_proj"] == [192, 576] and shapes["q_proj"] == [576, 576])
check("our GQA parameter count equals the real layer's", sizes[3][0] == real, f"{real:,} per layer")

done()
