"""A transformer block in numpy: attention + feed-forward, residuals, LayerNorm; and a stack of them.

Two ways to place the normalisation:

    post-LN (the 2017 paper, BERT):   x = LN(x + Attn(x));      x = LN(x + FFN(x))
    pre-LN  (GPT-2 and later):        x = x + Attn(LN(x));      x = x + FFN(LN(x))

Post-LN normalises the residual stream after every sub-layer; pre-LN leaves
the stream untouched (a clean identity path from input to output, which is
why deep pre-LN stacks train without warm-up tricks) and needs one final
LayerNorm at the top of the stack.

The layout of the weights mirrors `torch.nn.TransformerEncoderLayer`, so
`load_torch_layer` / `load_torch_stack` copy a torch layer or
`nn.TransformerEncoder` into this code for the parity test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .mha import MHAConfig, MHAWeights, init_mha, load_torch_mha, mha_forward
from .mha import param_count as mha_param_count

_erf = np.vectorize(math.erf, otypes=[np.float64])


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each vector to mean 0, variance 1 (biased variance, as torch), then scale and shift."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU: x · Φ(x) = x · ½(1 + erf(x/√2)) (torch's `nn.GELU()` default)."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return np.maximum(x, 0.0)


ACTIVATIONS = {"gelu": gelu, "relu": relu}


@dataclass(frozen=True)
class BlockConfig:
    """Shape and wiring of one transformer block."""

    d_model: int  # width of the residual stream
    n_heads: int  # query heads of the attention
    n_kv_heads: int | None = None  # key/value heads (None = n_heads; fewer = GQA/MQA)
    d_ff: int | None = None  # hidden width of the feed-forward net (None = 4·d_model)
    norm_first: bool = True  # True = pre-LN (GPT-2 style), False = post-LN (2017 paper)
    activation: str = "gelu"  # "gelu" (exact) or "relu"
    eps: float = 1e-5  # LayerNorm epsilon (torch's default)

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: use one of {sorted(ACTIVATIONS)}")

    @property
    def ff_width(self) -> int:
        """Hidden width of the feed-forward net."""
        return 4 * self.d_model if self.d_ff is None else self.d_ff

    @property
    def attention(self) -> MHAConfig:
        """The attention sub-layer's config."""
        return MHAConfig(d_model=self.d_model, n_heads=self.n_heads, n_kv_heads=self.n_kv_heads)


@dataclass
class BlockWeights:
    """Parameters of one block ((in, out) matrices, like `mha.MHAWeights`)."""

    attn: MHAWeights  # the attention sub-layer
    w1: np.ndarray  # (d_model, d_ff) FFN up-projection
    b1: np.ndarray  # (d_ff,)
    w2: np.ndarray  # (d_ff, d_model) FFN down-projection
    b2: np.ndarray  # (d_model,)
    ln1_w: np.ndarray  # (d_model,) LayerNorm before (pre-LN) or after (post-LN) attention
    ln1_b: np.ndarray
    ln2_w: np.ndarray  # (d_model,) LayerNorm around the FFN
    ln2_b: np.ndarray


def init_block(config: BlockConfig, seed: int = 0, dtype=np.float64) -> BlockWeights:
    """Random weights (uniform ±1/√fan_in, as torch's Linear), LayerNorms at identity."""
    rng = np.random.default_rng(seed)
    d, ff = config.d_model, config.ff_width

    def u(fan_in, *shape):
        return rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=shape).astype(dtype)

    return BlockWeights(
        attn=init_mha(config.attention, seed=seed + 1, dtype=dtype),
        w1=u(d, d, ff), b1=u(d, ff), w2=u(ff, ff, d), b2=u(ff, d),
        ln1_w=np.ones(d, dtype), ln1_b=np.zeros(d, dtype), ln2_w=np.ones(d, dtype), ln2_b=np.zeros(d, dtype),
    )


def block_param_count(config: BlockConfig) -> int:
    """Attention + FFN (two matrices with biases) + two LayerNorms (scale and shift)."""
    d, ff = config.d_model, config.ff_width
    return mha_param_count(config.attention) + (d * ff + ff) + (ff * d + d) + 4 * d


def feed_forward(x: np.ndarray, w: BlockWeights, activation: str = "gelu") -> np.ndarray:
    """Position-wise FFN: act(x W1 + b1) W2 + b2, the same two layers for every token."""
    return ACTIVATIONS[activation](x @ w.w1 + w.b1) @ w.w2 + w.b2


def block_forward(config: BlockConfig, w: BlockWeights, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """One block on x (batch, seq, d_model); mask as in `mha_forward` (True = may attend)."""
    attn = config.attention

    def self_attention(h):
        return mha_forward(attn, w.attn, h, mask=mask)

    if config.norm_first:
        x = x + self_attention(layer_norm(x, w.ln1_w, w.ln1_b, config.eps))
        return x + feed_forward(layer_norm(x, w.ln2_w, w.ln2_b, config.eps), w, config.activation)
    x = layer_norm(x + self_attention(x), w.ln1_w, w.ln1_b, config.eps)
    return layer_norm(x + feed_forward(x, w, config.activation), w.ln2_w, w.ln2_b, config.eps)


@dataclass
class Stack:
    """N blocks and, for pre-LN, the final LayerNorm."""

    config: BlockConfig  # shared by every block
    blocks: list[BlockWeights]  # one entry per layer, bottom first
    final_ln: tuple[np.ndarray, np.ndarray] | None  # (weight, bias) of the last LayerNorm, or None


def init_stack(config: BlockConfig, n_layers: int, seed: int = 0, dtype=np.float64, final_norm: bool | None = None) -> Stack:
    """n_layers random blocks; a final LayerNorm by default for pre-LN stacks."""
    final_norm = config.norm_first if final_norm is None else final_norm
    blocks = [init_block(config, seed=seed + 100 * i, dtype=dtype) for i in range(n_layers)]
    final = (np.ones(config.d_model, dtype), np.zeros(config.d_model, dtype)) if final_norm else None
    return Stack(config=config, blocks=blocks, final_ln=final)


def stack_forward(stack: Stack, x: np.ndarray, mask: np.ndarray | None = None, return_all: bool = False):
    """Run every block in order (then the final LayerNorm); optionally every layer's output too."""
    outputs = []
    for w in stack.blocks:
        x = block_forward(stack.config, w, x, mask=mask)
        outputs.append(x)
    if stack.final_ln is not None:
        x = layer_norm(x, *stack.final_ln, eps=stack.config.eps)
    return (x, outputs) if return_all else x


# ── loading from torch.nn.TransformerEncoderLayer / TransformerEncoder ──────


def load_torch_layer(state_dict, n_heads: int, norm_first: bool, activation: str = "gelu", eps: float = 1e-5, dtype=np.float64) -> tuple[BlockConfig, BlockWeights]:
    """Copy a `torch.nn.TransformerEncoderLayer` state_dict into (config, weights).

    torch names: self_attn.* (a MultiheadAttention), linear1/linear2 (the FFN,
    (out, in) weights), norm1/norm2. `norm_first`, the activation and eps are
    constructor arguments, not weights, so they are passed in.
    """
    sd = {name: t.detach().cpu().numpy().astype(dtype) for name, t in state_dict.items()}
    attn_sd = {name[len("self_attn."):]: t for name, t in state_dict.items() if name.startswith("self_attn.")}
    if not attn_sd or "linear1.weight" not in sd:
        raise ValueError(f"load_torch_layer: not a TransformerEncoderLayer state_dict (keys: {sorted(sd)[:6]} …)")
    attn_config, attn_w = load_torch_mha(attn_sd, n_heads, dtype=dtype)
    config = BlockConfig(d_model=attn_config.d_model, n_heads=n_heads, d_ff=sd["linear1.weight"].shape[0], norm_first=norm_first, activation=activation, eps=eps)
    weights = BlockWeights(
        attn=attn_w, w1=sd["linear1.weight"].T.copy(), b1=sd["linear1.bias"], w2=sd["linear2.weight"].T.copy(), b2=sd["linear2.bias"],
        ln1_w=sd["norm1.weight"], ln1_b=sd["norm1.bias"], ln2_w=sd["norm2.weight"], ln2_b=sd["norm2.bias"],
    )
    return config, weights


def load_torch_stack(state_dict, n_heads: int, norm_first: bool, activation: str = "gelu", eps: float = 1e-5, dtype=np.float64) -> Stack:
    """Copy a `torch.nn.TransformerEncoder` state_dict (layers.N.*, optional norm.*) into a Stack."""
    n_layers = 1 + max((int(name.split(".")[1]) for name in state_dict if name.startswith("layers.")), default=-1)
    if n_layers == 0:
        raise ValueError("load_torch_stack: no layers.N.* entries; pass a TransformerEncoder state_dict")
    config, blocks = None, []
    for i in range(n_layers):
        prefix = f"layers.{i}."
        layer_sd = {name[len(prefix):]: t for name, t in state_dict.items() if name.startswith(prefix)}
        config, weights = load_torch_layer(layer_sd, n_heads, norm_first, activation, eps, dtype)
        blocks.append(weights)
    final = None
    if "norm.weight" in state_dict:
        final = (state_dict["norm.weight"].detach().cpu().numpy().astype(dtype), state_dict["norm.bias"].detach().cpu().numpy().astype(dtype))
    assert config is not None
    return Stack(config=config, blocks=blocks, final_ln=final)
