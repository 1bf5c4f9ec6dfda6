"""TinyGPT: a decoder-only transformer small enough to train on a laptop CPU.

Reading order: config → embeddings → attention (with an optional KV cache) →
MLP → pre-LN block → the model (forward, loss) → parameter count.

Two flavors share one code path, so that export to transformers is a rename:

- `llama` (default): RoPE inside attention, RMSNorm, SwiGLU MLP, no biases.
  Exports to `LlamaForCausalLM`, the architecture of the default model.
- `gpt2`: learned position embeddings added to token embeddings, LayerNorm,
  GELU MLP (nanoGPT's model). Exports to `GPT2LMHeadModel`.

Module names follow transformers' Llama (`embed_tokens`, `layers.N.self_attn`,
`input_layernorm`, `mlp.down_proj`, `norm`, `lm_head`). The only structural
difference: q, k and v come from one fused `qkv_proj` matrix, and SwiGLU's
gate and up from one `gate_up_proj` (one matmul is faster on a CPU than
several small ones); export splits them for Llama and transposes `qkv_proj`
into GPT-2's `c_attn`, which is fused the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TinyGPTConfig:
    """Shape of a TinyGPT; saved in checkpoints and mapped onto the HF config at export."""

    vocab_size: int = 512  # tokens the embedding table holds (tokenizer's vocab size)
    context: int = 256  # longest sequence the model sees (block size); learned positions stop here
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block (head_dim = n_embd / n_head)
    n_embd: int = 128  # width of the residual stream
    flavor: str = "llama"  # "llama": RoPE + RMSNorm + SwiGLU; "gpt2": learned positions + LayerNorm + GELU
    mlp_hidden: int = 0  # MLP inner width; 0 picks 4·n_embd (gpt2) or ≈ 8/3·n_embd rounded up to 16 (llama)
    bias: bool = False  # biases in linear layers (and LayerNorm); nanoGPT trains faster and as well without
    dropout: float = 0.0  # dropout on attention weights and residual branches while training
    rope_theta: float = 10000.0  # RoPE base: higher rotates slower, reaching further positions
    norm_eps: float = 1e-5  # epsilon inside RMSNorm / LayerNorm
    tie_embeddings: bool = True  # lm_head shares the token embedding matrix (fewer parameters)

    def __post_init__(self) -> None:
        if self.flavor not in ("llama", "gpt2"):
            raise ValueError(f"flavor must be 'llama' or 'gpt2', got {self.flavor!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.flavor == "llama" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {self.head_dim}")
        if self.mlp_hidden == 0:
            self.mlp_hidden = 4 * self.n_embd if self.flavor == "gpt2" else 16 * math.ceil(8 * self.n_embd / 3 / 16)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


# ── position information ─────────────────────────────────────────────────────


def rope_cos_sin(config: TinyGPTConfig, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(length, head_dim) cos and sin tables, halves layout (as transformers' Llama)."""
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, config.head_dim, 2, dtype=torch.int64).float() / config.head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate dimension i with i + d/2 by the position's angle; x is (B, H, T, D)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


# ── the KV cache ─────────────────────────────────────────────────────────────


class KVCache:
    """Keys and values of past positions, per layer, so each new token costs O(1) projections.

    Preallocated (B, H, max_len, D) tensors; `length` counts filled positions.
    Memory: 2 × layers × heads × head_dim × max_len × bytes per value, per sequence.
    """

    def __init__(self, config: TinyGPTConfig, batch: int, max_len: int | None = None, dtype=torch.float32, device=None):
        self.max_len = max_len or config.context  # cannot exceed the model's context
        shape = (batch, config.n_head, self.max_len, config.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layer)]
        self.length = 0  # positions already stored (the next token's position)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v for positions [length, length + T) and return all keys/values so far."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions > max_len {self.max_len}")
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


# ── attention, MLP, block ────────────────────────────────────────────────────


class Attention(nn.Module):
    def __init__(self, config: TinyGPTConfig, layer: int):
        super().__init__()
        self.config, self.layer = config, layer
        self.qkv_proj = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # [q; k; v] stacked by rows
        self.o_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.shape
        H, D = self.config.n_head, self.config.head_dim
        qkv = self.qkv_proj(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
        if rope is not None:
            q, k = apply_rope(qkv[:2], *rope)  # rotate queries and keys in one pass
            v = qkv[2]
        else:
            q, k, v = qkv
        start = 0
        if cache is not None:
            start = cache.length
            k, v = cache.update(self.layer, k, v)
        if start == 0:
            mask, causal = None, True  # plain causal attention over the T new tokens
        elif T == 1:
            mask, causal = None, False  # one new token sees every cached position
        else:
            # T new tokens after `start` cached ones: row i sees keys 0 .. start + i.
            mask, causal = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start), False
        dropout = self.config.dropout if self.training else 0.0
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # Under bf16 autocast, torch's CPU attention kernel is several times slower
            # than in fp32 at these sizes (its backward above all): attend in fp32.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout, is_causal=causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        return self.resid_dropout(self.o_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, config: TinyGPTConfig):
        super().__init__()
        self.swiglu = config.flavor == "llama"
        if self.swiglu:
            # SwiGLU: silu(gate(x)) * up(x). Gate and up are stacked in one matrix
            # ([gate; up] by rows) for one matmul; export splits it for Llama.
            self.gate_up_proj = nn.Linear(config.n_embd, 2 * config.mlp_hidden, bias=config.bias)
        else:
            self.up_proj = nn.Linear(config.n_embd, config.mlp_hidden, bias=config.bias)
        self.down_proj = nn.Linear(config.mlp_hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
            hidden = F.silu(gate) * up
        else:
            hidden = F.gelu(self.up_proj(x))
        return self.dropout(self.down_proj(hidden))


def make_norm(config: TinyGPTConfig) -> nn.Module:
    if config.flavor == "llama":
        return nn.RMSNorm(config.n_embd, eps=config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


class Block(nn.Module):
    """Pre-LN: x + attn(norm(x)), then x + mlp(norm(x)); the residual stream is never normalized."""

    def __init__(self, config: TinyGPTConfig, layer: int):
        super().__init__()
        self.input_layernorm = make_norm(config)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x, rope, cache):
        x = x + self.self_attn(self.input_layernorm(x), rope, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


# ── the model ────────────────────────────────────────────────────────────────


class TinyGPT(nn.Module):
    def __init__(self, config: TinyGPTConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        if config.flavor == "gpt2":
            self.embed_positions = nn.Embedding(config.context, config.n_embd)
        else:
            cos, sin = rope_cos_sin(config, config.context)
            self.register_buffer("rope_cos", cos, persistent=False)  # derived from the config, not saved
            self.register_buffer("rope_sin", sin, persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.norm = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.apply(self._init_weights)
        # GPT-2's trick: shrink the layers that write into the residual stream,
        # so its variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """Logits (B, T, vocab) for token ids (B, T), and the mean cross-entropy when `targets` are given.

        With a `cache`, `idx` holds only the new tokens; their positions start
        at `cache.length`, and the cache advances by T.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.context:
            raise ValueError(f"sequence of {start + T} tokens exceeds the context of {self.config.context}")
        x = self.embed_tokens(idx)
        rope = None
        if self.config.flavor == "gpt2":
            x = x + self.embed_positions(torch.arange(start, start + T, device=idx.device))
        else:
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])
        x = self.dropout(x)
        for block in self.layers:
            x = block(x, rope, cache)
        if cache is not None:
            cache.length += T
        logits = self.lm_head(self.norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameters counted once (tied matrices once); optionally without position/token tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed_tokens.weight.numel()
            if self.config.flavor == "gpt2":
                n -= self.embed_positions.weight.numel()
        return n
