"""Softmax with a temperature, stable for any logits

After lesson basics/02 (the math). Write `solve(logits, temperature)` that returns
softmax(logits / temperature) over the last axis, for any array shape. It must not
overflow for logits in the thousands (subtract the row's maximum first), each row
must sum to 1, and a small temperature must put nearly all the mass on the
largest logit while a large one flattens the distribution.
"""

LESSON = "basics/02"
SIGNATURE = "def solve(logits: np.ndarray, temperature: float) -> np.ndarray"


def check(solve) -> None:
    import numpy as np

    from llm_deeper.lesson import check, close
    from llm_deeper.scratch.attention import softmax

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7)) * 4
    for t in (0.5, 1.0, 2.0):
        ok, detail = close(solve(logits, t), softmax(logits / t), atol=1e-12)
        check(f"T={t}: equals the library's softmax(logits / T)", ok, detail)
    big = np.array([1000.0, 999.0, -1000.0])
    out = solve(big, 1.0)
    check("logits in the thousands give finite probabilities that sum to 1", bool(np.isfinite(out).all()) and abs(out.sum() - 1) < 1e-12)
    check("T=0.01 puts > 99% of the mass on the largest logit", solve(np.array([2.0, 1.0, 0.0]), 0.01)[0] > 0.99)
    entropy = lambda p: float(-(p * np.log(p)).sum())  # noqa: E731
    check("a higher temperature has a higher entropy", entropy(solve(logits[0], 0.5)) < entropy(solve(logits[0], 1.0)) < entropy(solve(logits[0], 4.0)))
