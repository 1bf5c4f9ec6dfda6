"""Per-example scores, their aggregate, and bootstrap confidence intervals.

Every metric stores, for each example, a pair (value, weight):
- a plain average (ROUGE, exact match) has weight 1;
- a rate over calls (exact arguments) has value = fraction, weight = calls;
- perplexity has value = mean NLL per token, weight = tokens, and a transform
  (exp) applied after averaging, so the aggregate is exp(token-weighted NLL);
- weight 0 means "not applicable to this example" (no reference text, ...).

The aggregate is transform(Σ value·weight / Σ weight). The bootstrap resamples
whole examples, which keeps that ratio-of-sums structure intact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is named, aggregated and read."""

    label: str  # human name for tables and charts
    group: str  # the --metrics word that turns it on
    higher_is_better: bool = True  # direction, for "best" marks in comparisons
    transform: str = "identity"  # "identity" or "exp" (applied after averaging)
    fmt: str = "{:.3f}"  # how to print the aggregate


METRICS: dict[str, MetricSpec] = {
    "ppl": MetricSpec("perplexity", "ppl", higher_is_better=False, transform="exp", fmt="{:.2f}"),
    "bits_per_byte": MetricSpec("bits per byte", "ppl", higher_is_better=False),
    "rouge1": MetricSpec("ROUGE-1 F", "rouge"),
    "rouge2": MetricSpec("ROUGE-2 F", "rouge"),
    "rougeL": MetricSpec("ROUGE-L F", "rouge"),
    "rougeLsum": MetricSpec("ROUGE-Lsum F", "rouge"),
    "bertscore_p": MetricSpec("BERTScore P", "bertscore"),
    "bertscore_r": MetricSpec("BERTScore R", "bertscore"),
    "bertscore_f1": MetricSpec("BERTScore F1", "bertscore"),
    "exact_match": MetricSpec("exact match", "exact"),
    "contains": MetricSpec("contains answer", "exact"),
    "tool_full_match": MetricSpec("tool: all right", "tools"),
    "tool_call_decision": MetricSpec("tool: call / no-call right", "tools"),
    "tool_selection": MetricSpec("tool: selection", "tools"),
    "tool_args_exact": MetricSpec("tool: exact arguments", "tools"),
    "tool_schema_valid": MetricSpec("tool: schema-valid args", "tools"),
    "tool_no_call": MetricSpec("tool: correct no-call", "tools"),
    "tool_parallel_set": MetricSpec("tool: parallel set match", "tools"),
    "tokens_per_s": MetricSpec("tokens/s", "speed", fmt="{:.1f}"),
    "latency_s": MetricSpec("latency s/example", "speed", higher_is_better=False, fmt="{:.2f}"),
}
GROUPS = sorted({spec.group for spec in METRICS.values()})


def spec(name: str) -> MetricSpec:
    """The spec of a metric; unknown names (from newer runs) read as plain averages."""
    return METRICS.get(name, MetricSpec(name, "other"))


def _transform(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return np.exp if spec(name).transform == "exp" else (lambda x: x)


@dataclass
class Aggregate:
    """One metric over a run."""

    value: float  # transform(weighted mean)
    low: float  # bootstrap 2.5th percentile
    high: float  # bootstrap 97.5th percentile
    n: int  # examples that had this metric (weight > 0)
    weight: float  # total weight (tokens for perplexity, calls for call rates)

    def as_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.low, self.high], "n": self.n, "weight": self.weight}


def pairs(records: Iterable[dict], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, weights) of one metric over per-example records; missing = weight 0."""
    values, weights = [], []
    for record in records:
        value, weight = record["scores"].get(name, (0.0, 0.0))
        values.append(float(value))
        weights.append(float(weight))
    return np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)


def weighted(name: str, values: np.ndarray, weights: np.ndarray) -> float:
    """transform(Σ v·w / Σ w); nan when nothing had weight."""
    total = weights.sum()
    if total <= 0:
        return math.nan
    return float(_transform(name)(np.asarray((values * weights).sum() / total)))


def bootstrap_indices(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """[resamples, n] example indices drawn with replacement (shared for paired tests)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_stats(name: str, values: np.ndarray, weights: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The metric on each resample (nan where a resample had no weight)."""
    num = (values * weights)[indices].sum(axis=1)
    den = weights[indices].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _transform(name)(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))


def percentile_ci(stats: np.ndarray) -> tuple[float, float]:
    """Percentile 95% interval, ignoring nan resamples."""
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def aggregate(records: list[dict], name: str, resamples: int = 1000, seed: int = 0) -> Aggregate:
    """Aggregate value and bootstrap 95% CI of one metric."""
    values, weights = pairs(records, name)
    value = weighted(name, values, weights)
    low, high = percentile_ci(bootstrap_stats(name, values, weights, bootstrap_indices(len(records), resamples, seed))) if len(records) else (math.nan, math.nan)
    return Aggregate(value=value, low=low, high=high, n=int((weights > 0).sum()), weight=float(weights.sum()))


def metric_names(records: list[dict]) -> list[str]:
    """Metrics present in any record, in the order of METRICS (then unknown ones)."""
    present = {name for record in records for name, (_, w) in record["scores"].items() if w > 0}
    return [m for m in METRICS if m in present] + sorted(present - set(METRICS))


def aggregate_all(records: list[dict], resamples: int = 1000, seed: int = 0) -> dict[str, Aggregate]:
    """Every metric present in the records."""
    return {name: aggregate(records, name, resamples, seed) for name in metric_names(records)}


def fmt(name: str, value: float) -> str:
    """A value printed the way its metric reads best."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else spec(name).fmt.format(value)
