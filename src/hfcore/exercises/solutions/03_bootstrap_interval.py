import numpy as np


def solve(scores: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    n = len(scores)
    indices = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = np.asarray(scores)[indices].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
