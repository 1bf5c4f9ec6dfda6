"""Generation speed and latency, side figures of every generating run.

tokens/s pools over the run: Σ generated tokens / Σ generation seconds (a
weighted mean with the seconds as weights), so one slow example weighs by its
time, not as one vote. Latency is the plain mean seconds per example,
prompt processing included. Over `--base-url` both include the HTTP round trip;
with `--batch-size` above 1 each example is charged an even share of its
batch's time (throughput stays exact, latency becomes an average).
"""

from __future__ import annotations


def speed_scores(completion_tokens: int, seconds: float) -> dict[str, tuple[float, float]]:
    """Per-example scores in the (value, weight) form of `scores.py`."""
    if seconds <= 0:
        return {}
    return {"tokens_per_s": (completion_tokens / seconds, seconds), "latency_s": (seconds, 1.0)}
