"""Back-of-the-envelope numbers that are exact: parameters, memory, KV cache.

Formulas for the decoder-only Llama family (RMSNorm, RoPE, GQA, SwiGLU), which
covers the default model and most open models. The parameter formula is tested
equal to transformers' own count on random configs.
"""

from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "q4": 0.5}


@dataclass(frozen=True)
class Arch:
    """The shape of a Llama-family decoder."""

    name: str  # display name
    vocab: int  # vocabulary size
    hidden: int  # model width
    layers: int  # transformer blocks
    heads: int  # query heads
    kv_heads: int  # key/value heads (GQA: fewer than heads)
    intermediate: int  # SwiGLU inner width
    context: int  # maximum positions
    tied: bool = False  # output head shares the embedding matrix
    qkv_bias: bool = False  # Qwen2-style biases on q, k, v
    head_dim: int = 0  # 0 means hidden // heads

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads


KNOWN: dict[str, Arch] = {a.name: a for a in [
    Arch("smollm2-135m", 49152, 576, 30, 9, 3, 1536, 8192, tied=True),
    Arch("llama-3.2-1b", 128256, 2048, 16, 32, 8, 8192, 131072, tied=True),
    Arch("mistral-7b", 32000, 4096, 32, 32, 8, 14336, 32768),
    Arch("qwen2.5-7b", 152064, 3584, 28, 28, 4, 18944, 131072, qkv_bias=True),
    Arch("llama-3.1-8b", 128256, 4096, 32, 32, 8, 14336, 131072),
    Arch("llama-3.1-70b", 128256, 8192, 80, 64, 8, 28672, 131072),
]}


def parameters(a: Arch) -> int:
    """Exact parameter count (tied embeddings counted once)."""
    q = a.hidden * a.heads * a.hd
    kv = 2 * a.hidden * a.kv_heads * a.hd
    o = a.heads * a.hd * a.hidden
    bias = (a.heads + 2 * a.kv_heads) * a.hd if a.qkv_bias else 0
    mlp = 3 * a.hidden * a.intermediate  # gate, up, down
    norms = 2 * a.hidden  # before attention and before the MLP
    per_layer = q + kv + o + bias + mlp + norms
    embeddings = a.vocab * a.hidden * (1 if a.tied else 2)
    return embeddings + a.layers * per_layer + a.hidden  # + final norm


def kv_cache_bytes(a: Arch, seq_len: int, batch: int = 1, dtype: str = "bf16") -> float:
    """KV cache = 2 (K and V) × layers × kv_heads × head_dim × seq_len × batch × bytes."""
    return 2 * a.layers * a.kv_heads * a.hd * seq_len * batch * BYTES_PER_VALUE[dtype]


def weights_bytes(a: Arch, dtype: str = "bf16") -> float:
    """Memory of the weights alone."""
    return parameters(a) * BYTES_PER_VALUE[dtype]


def full_finetune_bytes(a: Arch) -> float:
    """Mixed-precision AdamW without activations: bf16 weights + grads (2+2), fp32 master + 2 moments (12)."""
    return parameters(a) * 16


def lora_parameters(a: Arch, rank: int, targets: tuple[str, ...] = ("q", "k", "v", "o")) -> int:
    """Trainable LoRA parameters: r × (in + out) for each targeted projection in each layer."""
    shapes = {
        "q": (a.hidden, a.heads * a.hd), "k": (a.hidden, a.kv_heads * a.hd), "v": (a.hidden, a.kv_heads * a.hd),
        "o": (a.heads * a.hd, a.hidden), "gate": (a.hidden, a.intermediate), "up": (a.hidden, a.intermediate),
        "down": (a.intermediate, a.hidden),
    }
    return a.layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)


def from_hf_config(config) -> Arch:
    """An `Arch` from a transformers LlamaConfig-like object."""
    return Arch(
        name=getattr(config, "name_or_path", "") or config.model_type, vocab=config.vocab_size, hidden=config.hidden_size,
        layers=config.num_hidden_layers, heads=config.num_attention_heads,
        kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        intermediate=config.intermediate_size, context=config.max_position_embeddings,
        tied=bool(getattr(config, "tie_word_embeddings", False)), qkv_bias=bool(getattr(config, "attention_bias", False)),
        head_dim=getattr(config, "head_dim", 0) or 0,
    )


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError
