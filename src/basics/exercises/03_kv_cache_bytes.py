"""How big is the KV cache?

After lesson basics/06 (multi-head attention, GQA). Write `solve(layers, kv_heads,
head_dim, seq_len, bytes_per_value)` that returns the bytes a KV cache needs for one
sequence: a key and a value vector per layer, per KV head, per token. Then use it:
how many 8,192-token sequences of Llama-3.1-8B (32 layers, 8 KV heads, head size
128) fit in 20 GiB of bf16 cache?
"""

LESSON = "basics/06"
SIGNATURE = "def solve(layers: int, kv_heads: int, head_dim: int, seq_len: int, bytes_per_value: float) -> float"


def check(solve) -> None:
    from llm_deeper.sizing import KNOWN, kv_cache_bytes
    from llm_deeper.lesson import check

    for name, dtype, size in (("smollm2-135m", "fp16", 2), ("smollm2-135m", "fp32", 4), ("llama-3.1-8b", "bf16", 2)):
        a = KNOWN[name]
        ours = solve(a.layers, a.kv_heads, a.hd, 8192, size)
        check(f"{name}, {dtype}, 8,192 tokens: equals llm_deeper.sizing.kv_cache_bytes", ours == kv_cache_bytes(a, 8192, dtype=dtype), f"{ours / 2**20:,.0f} MiB")
    a = KNOWN["llama-3.1-8b"]
    per_sequence = solve(a.layers, a.kv_heads, a.hd, 8192, 2)
    check("Llama-3.1-8B: exactly 1 GiB per 8,192-token sequence in bf16, so 20 sequences fit in 20 GiB", per_sequence == 2**30 and int(20 * 2**30 // per_sequence) == 20)
    wrong = 2 * a.layers * a.hidden * 8192 * 2
    check("counting `hidden` instead of kv_heads × head_dim overstates GQA's cache by heads / kv_heads = 4×", wrong / per_sequence == a.heads / a.kv_heads)
