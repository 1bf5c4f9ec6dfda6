"""Multi-head attention in numpy: MHA, grouped-query (GQA) and multi-query (MQA).

One layer, three settings of `n_kv_heads`:
- MHA: n_kv_heads == n_heads, every query head has its own key/value head;
- GQA: 1 < n_kv_heads < n_heads, groups of n_heads / n_kv_heads query heads
  share one key/value head (Llama 3, SmolLM2: 9 query heads, 3 KV heads);
- MQA: n_kv_heads == 1, all query heads share one key/value head.

Fewer KV heads means fewer K/V parameters and, above all, a smaller KV cache
at inference time, at little cost in quality.

Weights are stored as (in, out) matrices so the code reads like the math,
`x @ w_q`; `load_torch_mha` copies them from `torch.nn.MultiheadAttention`'s
state_dict (which stores Linear weights as (out, in)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .attention import attention


@dataclass(frozen=True)
class MHAConfig:
    """Shape of one multi-head attention layer."""

    d_model: int  # width of the residual stream (input and output features)
    n_heads: int  # number of query heads
    n_kv_heads: int | None = None  # key/value heads: None = n_heads (MHA), 1 = MQA, in between = GQA
    bias: bool = True  # projections have biases (torch's MultiheadAttention default; Llama has none)

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.kv_heads}")

    @property
    def kv_heads(self) -> int:
        """Key/value heads actually used."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def head_dim(self) -> int:
        """Features per head: d_model / n_heads."""
        return self.d_model // self.n_heads

    @property
    def group_size(self) -> int:
        """Query heads that share one key/value head."""
        return self.n_heads // self.kv_heads

    @property
    def kind(self) -> str:
        """'MHA', 'GQA' or 'MQA'."""
        return "MHA" if self.kv_heads == self.n_heads else ("MQA" if self.kv_heads == 1 else "GQA")


@dataclass
class MHAWeights:
    """Projection matrices (in, out) and biases of one layer."""

    w_q: np.ndarray  # (d_model, n_heads·head_dim)
    w_k: np.ndarray  # (d_model, kv_heads·head_dim)
    w_v: np.ndarray  # (d_model, kv_heads·head_dim)
    w_o: np.ndarray  # (n_heads·head_dim, d_model)
    b_q: np.ndarray | None = None  # (n_heads·head_dim,) or None without bias
    b_k: np.ndarray | None = None
    b_v: np.ndarray | None = None
    b_o: np.ndarray | None = None

    def arrays(self) -> list[np.ndarray]:
        """Every parameter array that is present."""
        return [a for a in (self.w_q, self.w_k, self.w_v, self.w_o, self.b_q, self.b_k, self.b_v, self.b_o) if a is not None]


def init_mha(config: MHAConfig, seed: int = 0, dtype=np.float64) -> MHAWeights:
    """Random weights, uniform ±1/√d_model (keeps activations around unit scale)."""
    rng = np.random.default_rng(seed)
    d, hd = config.d_model, config.head_dim
    q_out, kv_out = config.n_heads * hd, config.kv_heads * hd
    bound = 1.0 / np.sqrt(d)

    def u(*shape):
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    return MHAWeights(
        w_q=u(d, q_out), w_k=u(d, kv_out), w_v=u(d, kv_out), w_o=u(q_out, d),
        b_q=u(q_out) if config.bias else None, b_k=u(kv_out) if config.bias else None,
        b_v=u(kv_out) if config.bias else None, b_o=u(d) if config.bias else None,
    )


def param_count(config: MHAConfig) -> int:
    """Parameters of the layer: Q and O are d×d; K and V shrink with the KV heads."""
    d, kv_out = config.d_model, config.kv_heads * config.head_dim
    weights = d * d + 2 * d * kv_out + d * d
    biases = (d + 2 * kv_out + d) if config.bias else 0
    return weights + biases


def kv_cache_values_per_token(config: MHAConfig) -> int:
    """Numbers cached per token for this layer: K and V, each kv_heads × head_dim."""
    return 2 * config.kv_heads * config.head_dim


# ── head bookkeeping ────────────────────────────────────────────────────────


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(batch, seq, n_heads·head_dim) → (batch, n_heads, seq, head_dim)."""
    batch, seq, width = x.shape
    return x.reshape(batch, seq, n_heads, width // n_heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(batch, n_heads, seq, head_dim) → (batch, seq, n_heads·head_dim): the concat step."""
    batch, heads, seq, head_dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * head_dim)


def repeat_kv(x: np.ndarray, n_rep: int) -> np.ndarray:
    """(batch, kv_heads, seq, d) → (batch, kv_heads·n_rep, seq, d), each KV head copied n_rep times in a row.

    Query head h then reads KV head h // n_rep, the grouping GQA defines (and
    the order transformers' `repeat_kv` uses).
    """
    return x if n_rep == 1 else np.repeat(x, n_rep, axis=1)


def grouped_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Attention of H query heads over G < H shared KV heads, without copying K/V.

    q (batch, H, Lq, d), k/v (batch, G, Lk, d). The query heads are viewed as
    (G groups × H/G heads) so each group attends to its own KV head by
    broadcasting, which is what `repeat_kv` + ordinary attention computes.
    """
    batch, n_heads, q_len, head_dim = q.shape
    kv_heads = k.shape[1]
    if n_heads % kv_heads:
        raise ValueError(f"grouped_attention: {n_heads} query heads cannot be shared among {kv_heads} KV heads")
    grouped_q = q.reshape(batch, kv_heads, n_heads // kv_heads, q_len, head_dim)
    if mask is not None and mask.ndim == 4:  # (batch|1, heads|1, Lq, Lk) → add the group axis
        mask = mask[:, :, None] if mask.shape[1] == 1 else mask.reshape(mask.shape[0], kv_heads, -1, *mask.shape[2:])
    out, _ = attention(grouped_q, k[:, :, None], v[:, :, None], mask=mask)
    return out.reshape(batch, n_heads, q_len, -1)


# ── the layer ───────────────────────────────────────────────────────────────


def _project(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return x @ w if b is None else x @ w + b


def mha_forward(
    config: MHAConfig,
    weights: MHAWeights,
    query: np.ndarray,
    key: np.ndarray | None = None,
    value: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    return_weights: bool = False,
):
    """Multi-head attention: project, split heads, attend per head, concat, project out.

    query (batch, Lq, d_model); key/value default to the query (self-attention).
    mask: bool, True = may attend, broadcastable to (batch, n_heads, Lq, Lk),
    e.g. `causal_mask(L)` or `padding_mask(lengths, L)`.
    Returns (batch, Lq, d_model), plus the per-head weights (batch, n_heads,
    Lq, Lk) when `return_weights` (computed through repeat_kv for GQA/MQA).
    """
    key = query if key is None else key
    value = key if value is None else value
    if query.shape[-1] != config.d_model:
        raise ValueError(f"mha_forward: input has {query.shape[-1]} features, the layer expects d_model={config.d_model}")
    q = split_heads(_project(query, weights.w_q, weights.b_q), config.n_heads)
    k = split_heads(_project(key, weights.w_k, weights.b_k), config.kv_heads)
    v = split_heads(_project(value, weights.w_v, weights.b_v), config.kv_heads)
    if return_weights or config.group_size == 1:
        heads, attn = attention(q, repeat_kv(k, config.group_size), repeat_kv(v, config.group_size), mask=mask)
    else:
        heads, attn = grouped_attention(q, k, v, mask=mask), None
    out = _project(merge_heads(heads), weights.w_o, weights.b_o)
    return (out, attn) if return_weights else out


# ── loading from torch.nn.MultiheadAttention ───────────────────────────────


def load_torch_mha(state_dict, n_heads: int, dtype=np.float64) -> tuple[MHAConfig, MHAWeights]:
    """Copy a `torch.nn.MultiheadAttention` state_dict into (config, weights).

    torch packs Q, K and V into one `in_proj_weight` (3·d, d) with rows
    [W_q; W_k; W_v] in (out, in) layout, or keeps `q_proj_weight`, … when
    key/value widths differ from d. Both are handled; `add_bias_kv` (extra
    learned key/value rows) is not part of this layer and is refused.
    """
    sd = {name: t.detach().cpu().numpy().astype(dtype) for name, t in state_dict.items()}
    if "bias_k" in sd or "bias_v" in sd:
        raise ValueError("load_torch_mha: add_bias_kv=True is not supported (build the torch layer without it)")
    if "in_proj_weight" in sd:
        w_q, w_k, w_v = np.split(sd["in_proj_weight"], 3, axis=0)
    elif "q_proj_weight" in sd:
        w_q, w_k, w_v = sd["q_proj_weight"], sd["k_proj_weight"], sd["v_proj_weight"]
    else:
        raise ValueError(f"load_torch_mha: not a MultiheadAttention state_dict (keys: {sorted(sd)})")
    bias = "in_proj_bias" in sd
    b_q, b_k, b_v = np.split(sd["in_proj_bias"], 3) if bias else (None, None, None)
    d_model = w_q.shape[0]
    if w_k.shape[1] != d_model or w_v.shape[1] != d_model:
        raise ValueError("load_torch_mha: key/value inputs narrower than d_model (kdim/vdim) are not supported")
    config = MHAConfig(d_model=d_model, n_heads=n_heads, bias=bias)
    weights = MHAWeights(
        w_q=w_q.T.copy(), w_k=w_k.T.copy(), w_v=w_v.T.copy(), w_o=sd["out_proj.weight"].T.copy(),
        b_q=b_q, b_k=b_k, b_v=b_v, b_o=sd.get("out_proj.bias"),
    )
    return config, weights
