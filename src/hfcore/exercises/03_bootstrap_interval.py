"""A 95% bootstrap interval for a mean score

After lesson hfcore/06 (evals). Write `solve(scores, resamples, seed)` for a 1-D array
of per-example scores: draw `resamples` samples of the same size with replacement,
with `np.random.default_rng(seed).integers(0, n, size=(resamples, n))` as the
indices, take each sample's mean, and return the 2.5th and 97.5th percentiles of
those means as (low, high).
"""

LESSON = "hfcore/06"
SIGNATURE = "def solve(scores: np.ndarray, resamples: int, seed: int) -> tuple[float, float]"


def check(solve) -> None:
    import numpy as np

    from llm_deeper.evals.scores import bootstrap_indices, percentile_ci
    from llm_deeper.lesson import check

    rng = np.random.default_rng(3)
    scores = (rng.random(40) < 0.7).astype(float)  # 40 right/wrong answers, about 70% right
    low, high = solve(scores, 1000, 0)
    ref = percentile_ci(scores[bootstrap_indices(40, 1000, 0)].mean(axis=1))
    check("equals the library's interval (llm_deeper.evals.scores)", np.allclose((low, high), ref, atol=1e-12), f"[{low:.3f}, {high:.3f}]")
    check("the interval contains the mean", low <= scores.mean() <= high)
    more = np.tile(scores, 10)
    low10, high10 = solve(more, 1000, 0)
    check("10× the examples (same share right) gives an interval about √10 ≈ 3.2× narrower",
          2.5 < (high - low) / (high10 - low10) < 4.0, f"{high - low:.3f} vs {high10 - low10:.3f}")
