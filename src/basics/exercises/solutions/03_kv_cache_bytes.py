def solve(layers: int, kv_heads: int, head_dim: int, seq_len: int, bytes_per_value: float) -> float:
    return 2 * layers * kv_heads * head_dim * seq_len * bytes_per_value  # 2: one key and one value
