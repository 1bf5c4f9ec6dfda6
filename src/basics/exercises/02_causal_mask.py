"""The causal mask, and attention through it

After lesson basics/03 (attention step by step). Write `solve(q, k, v)` for arrays
shaped (seq, d) that returns causal attention: scores q·kᵀ/√d, the future set to
−∞ before the softmax, then the weighted sum of the values. Query i may read keys
0..i only. Build the mask yourself (np.tril, or compare indices).
"""

LESSON = "basics/03"
SIGNATURE = "def solve(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray"


def check(solve) -> None:
    import numpy as np
    import torch

    from llm_deeper.lesson import check, close

    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(6, 8)) for _ in range(3))
    out = solve(q, k, v)
    ref = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)), is_causal=True).numpy()
    ok, detail = close(out, ref, atol=1e-12)
    check("equals scaled_dot_product_attention(is_causal=True) in fp64", ok, detail)
    check("the first token can only read itself: its output is v[0]", close(out[0], v[0], atol=1e-12)[0])
    changed = v.copy()
    changed[4:] += 100.0
    check("changing later values leaves earlier outputs unchanged", close(solve(q, k, changed)[:4], out[:4], atol=1e-12)[0])
