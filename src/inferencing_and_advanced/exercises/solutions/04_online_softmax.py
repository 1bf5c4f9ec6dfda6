import numpy as np


def solve(q: np.ndarray, key_chunks: list[np.ndarray], value_chunks: list[np.ndarray]) -> np.ndarray:
    m, total, out = -np.inf, 0.0, np.zeros(value_chunks[0].shape[1])
    for k, v in zip(key_chunks, value_chunks):
        scores = k @ q / np.sqrt(q.shape[0])
        m_new = max(m, scores.max())
        rescale = np.exp(m - m_new)  # 0 on the first chunk (m = −∞)
        weights = np.exp(scores - m_new)
        total = total * rescale + weights.sum()
        out = out * rescale + weights @ v
        m = m_new
    return out / total
