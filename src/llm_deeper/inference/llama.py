"""The engine's own Llama forward pass, in reading order: config, norm, RoPE, weights, block.

The engine does not call transformers' `LlamaForCausalLM.forward`: a decode step
over a batch of requests, each at its own position with its own LoRA adapter,
needs a forward that owns its weights and its KV cache. This file is that
forward (the idea of mlx-lm's `models/llama.py`), built from the transformers
model's tensors once (projections fused, optionally quantized) and proven equal
to transformers by test (tests/parity/test_engine_llama.py: RMSNorm, RoPE with
the model's own rope parameters, whole-model logits).

Shapes: x [batch, length, hidden]; q [batch, heads, length, head_dim];
k, v [batch, kv_heads, length, head_dim] (grouped-query attention: `heads`
query heads share `kv_heads` key/value heads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

from ..errors import UserError
from .quant import bf16_head_packing_pays, linear, quantize

ROPE_TYPES = ("default", "llama3")  # the rope scalings implemented here; other models use the transformers fallback


# -- configuration --------------------------------------------------------------------
@dataclass(frozen=True)
class LlamaConfig:
    """What the forward needs from a transformers LlamaConfig."""

    hidden: int  # model width
    layers: int  # transformer blocks
    heads: int  # query heads
    kv_heads: int  # key/value heads (grouped-query attention when fewer than heads)
    head_dim: int  # width of one head
    norm_eps: float  # RMSNorm epsilon
    rope_theta: float  # RoPE base (the default model uses 100000, not Llama's 10000)
    rope: dict  # the full rope parameters (type, and llama3's factor and wavelengths)

    @classmethod
    def from_hf(cls, config) -> "LlamaConfig":
        rope = rope_parameters(config)
        return cls(
            hidden=config.hidden_size,
            layers=config.num_hidden_layers,
            heads=config.num_attention_heads,
            kv_heads=config.num_key_value_heads,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads,
            norm_eps=config.rms_norm_eps,
            rope_theta=float(rope["rope_theta"]),
            rope=rope,
        )


def rope_parameters(config) -> dict:
    """The rope settings, wherever this transformers version keeps them.

    transformers 5 writes `rope_parameters` ({"rope_type", "rope_theta", ...});
    older configs have a top-level `rope_theta` and an optional `rope_scaling`.
    Reading only `rope_theta` silently falls back to 10000: mlx-lm did, and answered
    fluent nonsense (models/embedded.py: write_portable_config, docs/05_deployment.md).
    """
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
    params["rope_type"] = params.get("rope_type") or params.get("type") or "default"
    return params


def supports(config) -> str:
    """Why this forward cannot run the model ("" when it can)."""
    if getattr(config, "model_type", "") != "llama":
        return f"architecture {getattr(config, 'model_type', '?')!r} is not Llama"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not SiLU"
    rope = rope_parameters(config)
    if rope["rope_type"] not in ROPE_TYPES:
        return f"rope type {rope['rope_type']!r} is not one of {', '.join(ROPE_TYPES)}"
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        return "RoPE covers only part of each head"
    return ""


# -- RMSNorm ----------------------------------------------------------------------------
def rms_norm(x, weight, eps: float):
    """x / sqrt(mean(x²) + eps) × weight, computed in fp32 and cast back before the weight (as Llama does)."""
    import torch

    hidden = x.float()
    normed = (hidden * torch.rsqrt(hidden.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)  # a fresh tensor
    return normed.mul_(weight) if weight.dtype == normed.dtype else weight * normed  # in place: one [tokens, hidden] tensor fewer


# -- rotary position embedding ----------------------------------------------------------------
def rope_frequencies(config: LlamaConfig):
    """Inverse frequencies [head_dim / 2]: theta^(-2i/d), rescaled for long context by llama3's rule."""
    import torch

    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if config.rope["rope_type"] == "llama3":
        inv_freq = _llama3_scaling(inv_freq, config.rope)
    return inv_freq


def _llama3_scaling(inv_freq, rope: dict):
    """Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between."""
    import torch

    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_context = rope["original_max_position_embeddings"]
    low_wavelength, high_wavelength = old_context / low, old_context / high
    wavelength = 2 * math.pi / inv_freq
    scaled = torch.where(wavelength > low_wavelength, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelength - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelength >= high_wavelength) & (wavelength <= low_wavelength)
    return torch.where(medium, blended, scaled)


def rope_tables(config: LlamaConfig, length: int, dtype):
    """cos and sin [length, head_dim] for positions 0..length-1 (each frequency used for both halves)."""
    import torch

    angles = torch.arange(length, dtype=torch.float32)[:, None] * rope_frequencies(config)[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def signed_sin(sin):
    """The sin table with its first half negated: what `rotate` takes (the sign moves from x to the table, once)."""
    import torch

    half = sin.shape[-1] // 2
    return torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)


def rotate(x, cos, sin_signed):
    """Rotate each (x_i, x_{i + d/2}) pair by its position's angle: x·cos + (-x₂, x₁)·sin; the tables broadcast over heads.

    (x₂, x₁)·signed_sin(sin) is (-x₂, x₁)·sin bit for bit (negation is exact), so the rotation takes
    4 ops and 2 new tensors instead of 5 and 5: one op per layer fewer in a decode step, and fewer
    passes over q and k in a prefill.
    """
    import torch

    half = x.shape[-1] // 2
    swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)
    return (x * cos).add_(swapped.mul_(sin_signed))


# -- weights ----------------------------------------------------------------------------
class Part(NamedTuple):
    """A projection inside a fused weight: output columns start:stop, named as PEFT names it."""

    name: str  # "q_proj", "gate_proj", ... (the key a LoRA adapter uses)
    start: int
    stop: int


@dataclass
class Projection:
    """One (possibly fused) linear layer: weight [out, in] (a tensor, or int8/int4 packed), optional bias."""

    weight: object  # torch.Tensor, quant.PackedWeight (oneDNN + transposed layouts), quant.Int8Weight or quant.Int4Weight
    bias: object  # torch.Tensor [out] or None
    parts: tuple[Part, ...]  # the original projections it holds, for per-request LoRA


@dataclass
class LayerWeights:
    """One transformer block's weights, q|k|v and gate|up fused into one matmul each."""

    input_norm: object  # RMSNorm weight [hidden] before attention
    qkv: Projection  # [heads + 2 × kv_heads) × head_dim, hidden]
    o: Projection  # [hidden, heads × head_dim]
    post_norm: object  # RMSNorm weight [hidden] before the MLP
    gate_up: Projection  # [2 × intermediate, hidden]
    down: Projection  # [hidden, intermediate]


@dataclass
class LlamaWeights:
    """The whole model: embeddings, blocks, final norm, output head."""

    embed: object  # [vocab, hidden]
    layers: list[LayerWeights]
    norm: object  # final RMSNorm weight [hidden]
    lm_head: object  # [vocab, hidden] (tied to embed in the default model), maybe int8-packed

    @classmethod
    def from_hf(cls, model, quant: str | None = None, pack: bool = False) -> "LlamaWeights":
        """Fuse (and maybe quantize) a transformers Llama's tensors; plain tensors are shared, not copied.

        The LM head (Q8_0 in the GGUF, tied to the embeddings) loses far more in 4 bits
        (KL to fp32 0.044 vs 0.0014, bench/RESULTS.md): int4 keeps it bf16, packed for oneDNN where its bf16
        kernels run (quant.bf16_head_packing_pays).
        `pack`: float projections and the LM head are copied into oneDNN's packed layout and a
        transposed one (quant.PackedWeight: twice their own memory; the embedding stays shared);
        with int4, its bf16 head is packed where that pays.
        """
        import torch

        body = model.model
        with torch.inference_mode():
            layers = [_fuse_layer(layer, quant, pack) for layer in body.layers]
            head_pack = pack and (quant is None or (quant == "int4" and bf16_head_packing_pays()))
            lm_head = quantize(model.lm_head.weight, "int8" if quant == "int8" else None, pack=head_pack)
        return cls(body.embed_tokens.weight, layers, body.norm.weight, lm_head)


def _fuse(modules: list[tuple[str, object]], quant: str | None, pack: bool = False) -> Projection:
    import torch

    weights = [m.weight for _, m in modules]
    weight = weights[0] if len(weights) == 1 else torch.cat(weights)
    biases = [m.bias for _, m in modules]
    bias = None if biases[0] is None else biases[0] if len(biases) == 1 else torch.cat(biases)
    parts, start = [], 0
    for (name, _), w in zip(modules, weights):
        parts.append(Part(name, start, start + w.shape[0]))
        start += w.shape[0]
    return Projection(quantize(weight, quant, pack), bias, tuple(parts))


def _fuse_layer(layer, quant: str | None, pack: bool = False) -> LayerWeights:
    att, mlp = layer.self_attn, layer.mlp
    return LayerWeights(
        input_norm=layer.input_layernorm.weight,
        qkv=_fuse([("q_proj", att.q_proj), ("k_proj", att.k_proj), ("v_proj", att.v_proj)], quant, pack),
        o=_fuse([("o_proj", att.o_proj)], quant, pack),
        post_norm=layer.post_attention_layernorm.weight,
        gate_up=_fuse([("gate_proj", mlp.gate_proj), ("up_proj", mlp.up_proj)], quant, pack),
        down=_fuse([("down_proj", mlp.down_proj)], quant, pack),
    )


# -- the forward ------------------------------------------------------------------------
# A LoRA hook: (output, input, layer index, projection) -> output with the adapters' deltas added.
LoraHook = Callable[[object, object, int, Projection], object]
# Attention with a cache: (layer index, q, k, v) -> attention output [batch, heads, length, head_dim].
Attend = Callable[[int, object, object, object], object]


def project(x, proj: Projection, layer: int, lora: LoraHook | None, residual=None):
    """x through the projection (+ `residual`), with the LoRA deltas of `layer` added."""
    out = linear(x, proj.weight, proj.bias, residual)
    return out if lora is None else lora(out, x, layer, proj)


def block(config: LlamaConfig, index: int, w: LayerWeights, x, cos, sin, attend: Attend, lora: LoraHook | None = None,
          last_only: bool = False):
    """One transformer block: x + attention(norm(x)), then + SwiGLU MLP(norm(x)); `sin` is signed (see `rotate`).

    Each residual add happens inside the projection that feeds it, and SiLU(gate) is multiplied by
    up in place: no tensor the size of the activations is written twice where once does.
    `last_only`: only the last position's output is wanted (a prompt's last layer). Every position's
    k and v still go to `attend` (the cache needs them), but the attention, the output projection and
    the MLP run for the last query alone: `attend` then gets q of length 1, the sequence's last position.
    """
    import torch.nn.functional as F

    batch, length, _ = x.shape
    q_size, kv_size = config.heads * config.head_dim, config.kv_heads * config.head_dim
    qkv = project(rms_norm(x, w.input_norm, config.norm_eps), w.qkv, index, lora)
    # q and k heads rotated together: one RoPE (4 ops) per layer instead of two
    qk = qkv[..., :q_size + kv_size].view(batch, length, config.heads + config.kv_heads, config.head_dim).transpose(1, 2)
    qk = rotate(qk, cos, sin)
    q, k = qk[:, :config.heads], qk[:, config.heads:]
    v = qkv[..., q_size + kv_size:].view(batch, length, config.kv_heads, config.head_dim).transpose(1, 2)
    if last_only:
        q, x, length = q[:, :, -1:], x[:, -1:], 1
    attended = attend(index, q, k, v).transpose(1, 2).reshape(batch, length, q_size)
    x = project(attended, w.o, index, lora, residual=x)
    gate_up = project(rms_norm(x, w.post_norm, config.norm_eps), w.gate_up, index, lora)
    half = gate_up.shape[-1] // 2
    return project(F.silu(gate_up[..., :half]).mul_(gate_up[..., half:]), w.down, index, lora, residual=x)


def forward(config: LlamaConfig, weights: LlamaWeights, tokens, cos, sin, attend: Attend, lora: LoraHook | None = None,
            last_only: bool = False):
    """Final hidden states [batch, length, hidden] of `tokens` [batch, length]; cos/signed sin broadcast to q.

    `last_only`: the last position's alone ([batch, 1, hidden]), all positions still cached: the last
    layer then skips the rest (a 1,036-token prompt of the default model: 6.2 of its 220 GFLOP).
    """
    import torch.nn.functional as F

    x = F.embedding(tokens, weights.embed)
    for index, layer in enumerate(weights.layers):
        x = block(config, index, layer, x, cos, sin, attend, lora, last_only=last_only and index == len(weights.layers) - 1)
    return x


def logits(config: LlamaConfig, weights: LlamaWeights, hidden):
    """Output-head scores in fp32 for final hidden states [..., hidden]."""
    return linear(rms_norm(hidden, weights.norm, config.norm_eps), weights.lm_head).float()


def check_supported(model) -> None:
    """Raise a UserError naming why this forward cannot run the model."""
    reason = supports(model.config)
    if reason:
        raise UserError(f"the engine's Llama forward cannot run this model: {reason}")
