"""The online softmax: attention over keys that arrive in chunks

After lesson inferencing_and_advanced/06 (the serving ideas). Write
`solve(q, key_chunks, value_chunks)` for one query vector q (d,) and lists of key
chunks (n_i, d) and value chunks (n_i, d_v): return softmax(q·kᵀ/√d)·V over all
keys, reading each chunk once and keeping only a running max, a running sum of
exponentials and an unnormalized output (rescale both when the max grows).
"""

LESSON = "inferencing_and_advanced/06"
SIGNATURE = "def solve(q: np.ndarray, key_chunks: list[np.ndarray], value_chunks: list[np.ndarray]) -> np.ndarray"


def check(solve) -> None:
    import numpy as np
    import torch

    from llm_deeper.lesson import check, close
    from llm_deeper.scratch.flash_attention import flash_attention

    rng = np.random.default_rng(4)
    q, k, v = rng.normal(size=16), rng.normal(size=(50, 16)), rng.normal(size=(50, 8))
    ref = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(x)[None] for x in (q[None], k, v)))[0, 0].numpy()
    for cuts in ([50], [10, 40], [7, 7, 7, 7, 7, 15], [1] * 50):
        edges = np.cumsum([0] + cuts)
        out = solve(q, [k[a:b] for a, b in zip(edges, edges[1:])], [v[a:b] for a, b in zip(edges, edges[1:])])
        ok, detail = close(out, ref, atol=1e-12)
        check(f"chunks of {cuts[:3]}{'…' if len(cuts) > 3 else ''}: equals scaled_dot_product_attention", ok, detail)
    check("equals the library's tiled attention", close(solve(q, [k], [v]), flash_attention(q[None], k, v)[0][0], atol=1e-12)[0])
    big = solve(q * 200, [k[:25], k[25:]], [v[:25], v[25:]])
    check("scores in the hundreds stay finite (the running max keeps every exponent ≤ 0)", bool(np.isfinite(big).all()))
