"""Back-of-the-envelope numbers that are exact: parameters, memory, KV cache.

Formulas for the decoder-only Llama family (RMSNorm, RoPE, GQA, SwiGLU), which
covers the default model and most open models. The parameter formula is tested
equal to transformers' own count on random configs.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes per weight, scales included. Q4_1 (GGUF, and this project's int4 engine path):
# 32 four-bit values + an fp16 scale + an fp16 minimum = 20 bytes per 32 weights.
# NF4 (QLoRA): 4 bits + one 8-bit absmax per 64 weights + one fp32 scale per 256 absmaxes
# ("double quantization") = 4.127 bits. int8 here is per-row: one scale per row, ~0 per weight.
BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "q4_1": 20 / 32, "nf4": (4 + 8 / 64 + 32 / (64 * 256)) / 8}


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


def qlora_bytes(a: Arch, rank: int) -> float:
    """QLoRA without activations: linear layers in NF4, embeddings and norms in bf16, LoRA trained at 16 B/param.

    bitsandbytes quantizes only the linear layers; the embedding (and an untied head) stay bf16.
    """
    embeddings = a.vocab * a.hidden * (1 if a.tied else 2)
    norms = a.layers * 2 * a.hidden + a.hidden
    linear = parameters(a) - embeddings - norms
    return linear * BYTES_PER_VALUE["nf4"] + (embeddings + norms) * 2 + lora_parameters(a, rank) * 16


def lora_bytes(a: Arch, rank: int) -> float:
    """LoRA without activations: the frozen base in bf16 plus the adapters at 16 B per trained parameter."""
    return weights_bytes(a, "bf16") + lora_parameters(a, rank) * 16


def twelve_d_squared_ratio(a: Arch) -> float:
    """Exact per-layer parameters ÷ the often-quoted 12·d² (GPT-2's 4·d² attention + 8·d² MLP)."""
    per_layer = (parameters(a) - a.vocab * a.hidden * (1 if a.tied else 2) - a.hidden) / a.layers
    return per_layer / (12 * a.hidden**2)


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


def training_flops(a: Arch, tokens: float) -> float:
    """About 6 · parameters · tokens: 2 for the forward multiply-add, 4 for the backward (Kaplan et al. 2020)."""
    return 6 * parameters(a) * tokens


def prompt_tuning_parameters(a: Arch, virtual_tokens: int = 20) -> int:
    """Prompt tuning trains only `virtual_tokens` input embeddings of width d."""
    return virtual_tokens * a.hidden


@dataclass(frozen=True)
class Device:
    """A machine from the seed's budget table, sized by the memory a model may use."""

    name: str  # display name
    price: str  # rough cost, as the seed's budget table puts it
    memory_gb: float  # memory as sold, decimal GB (GPU memory, or unified memory on a Mac)
    usable: float  # share a model may take: vLLM's default 0.9 on a GPU; macOS wires about 2/3 of
    # unified memory to the GPU up to 36 GB and 3/4 above (`sysctl iogpu.wired_limit_mb` changes it)
    cuda: bool  # vLLM's GPU build and bitsandbytes' NF4 need CUDA; a Mac runs MLX instead

    @property
    def usable_bytes(self) -> float:
        return self.memory_gb * 1e9 * self.usable


DEVICES = [
    Device("Google Colab free (T4 16 GB)", "$0", 16, 0.9, cuda=True),
    Device("Mac mini M2 16 GB", "$1K", 16, 2 / 3, cuda=False),
    Device("Mac Studio M2 Max 32 GB", "$2K", 32, 2 / 3, cuda=False),
    Device("Mac Studio M2 Ultra 192 GB", "$6K", 192, 3 / 4, cuda=False),
    Device("rented A100 80 GB", "$1K/month", 80, 0.9, cuda=True),
]

# Activations and KV cache come on top of weights and optimizer state; a job fits when it
# leaves this share free (a short context and small batch; long contexts need more).
HEADROOM = 1.2
BUDGET_MODELS = ("smollm2-135m", "llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b")


def job_bytes(a: Arch, job: str, rank: int = 16) -> float:
    """Memory of one job before activations: serve in bf16 or 4-bit, LoRA, QLoRA, full fine-tune."""
    sizes = {
        "serve bf16": lambda: weights_bytes(a, "bf16"),
        "serve 4-bit": lambda: weights_bytes(a, "q4_1"),
        "LoRA": lambda: lora_bytes(a, rank),
        "QLoRA": lambda: qlora_bytes(a, rank),
        "full fine-tune": lambda: full_finetune_bytes(a),
    }
    return sizes[job]()


JOBS = ("serve bf16", "serve 4-bit", "LoRA", "QLoRA", "full fine-tune")


def largest_that_fits(device: Device, job: str) -> Arch | None:
    """The largest of BUDGET_MODELS whose job fits the device with HEADROOM; None when none does.

    QLoRA is sized as NF4 (bitsandbytes, CUDA); on a Mac, mlx-lm's LoRA on a 4-bit model does the
    same job in about the same memory.
    """
    fitting = [KNOWN[n] for n in BUDGET_MODELS if job_bytes(KNOWN[n], job) * HEADROOM <= device.usable_bytes]
    return fitting[-1] if fitting else None


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError
