"""Several runs side by side (base vs full vs LoRA vs merged), with 95% intervals.

Each run's interval is a bootstrap over its own examples. When two runs
scored the same examples (same ids), the difference to the first run gets a
*paired* bootstrap: the same resampled examples on both sides, which is much
tighter than comparing two separate intervals, because per-example
difficulty cancels out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .scores import Aggregate, aggregate, bootstrap_indices, bootstrap_stats, fmt, metric_names, pairs, percentile_ci, spec, weighted


@dataclass
class Delta:
    """Run k minus the first run on the same examples."""

    value: float  # difference of the aggregates
    low: float  # paired bootstrap 2.5th percentile
    high: float  # paired bootstrap 97.5th percentile


@dataclass
class Comparison:
    """Aggregates of every run, per metric, and paired differences to the first run."""

    labels: list[str]  # one per run, unique
    metrics: list[str]  # metrics present in at least one run
    table: dict[str, list[Aggregate | None]]  # metric -> per-run aggregate (None when the run lacks it)
    deltas: dict[str, list[Delta | None]]  # metric -> per-run paired difference to run 0 (None for run 0 / unpaired)


def run_label(run: dict, index: int) -> str:
    info = run.get("info", {})
    return str(info.get("label") or info.get("model") or f"run {index + 1}")


def unique_labels(runs: list[dict]) -> list[str]:
    labels, seen = [], {}
    for i, run in enumerate(runs):
        label = run_label(run, i)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return labels


def paired_delta(name: str, base: list[dict], other: list[dict], resamples: int, seed: int) -> Delta | None:
    """Paired bootstrap of other − base over the examples both have (None without overlap)."""
    by_id = {r["id"]: r for r in base}
    common = [r["id"] for r in other if r["id"] in by_id]
    if len(common) < 2 or len(common) != len(set(common)):
        return None
    other_by_id = {r["id"]: r for r in other}
    v0, w0 = pairs([by_id[i] for i in common], name)
    v1, w1 = pairs([other_by_id[i] for i in common], name)
    if w0.sum() <= 0 or w1.sum() <= 0:
        return None
    indices = bootstrap_indices(len(common), resamples, seed)
    diff = bootstrap_stats(name, v1, w1, indices) - bootstrap_stats(name, v0, w0, indices)
    low, high = percentile_ci(diff)
    return Delta(weighted(name, v1, w1) - weighted(name, v0, w0), low, high)


def compare(runs: list[dict], resamples: int = 1000, seed: int = 0) -> Comparison:
    """Aggregate every metric of every run (loaded with `report.load_run`)."""
    if not runs:
        raise UserError("nothing to compare: pass two or more run folders written by `llm-deeper eval`")
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in metric_names(run["examples"]) if m not in metrics]
    table: dict[str, list[Aggregate | None]] = {}
    deltas: dict[str, list[Delta | None]] = {}
    for name in metrics:
        row = []
        for run in runs:
            agg = aggregate(run["examples"], name, resamples, seed)
            row.append(agg if agg.n else None)
        table[name] = row
        deltas[name] = [None] + [paired_delta(name, runs[0]["examples"], run["examples"], resamples, seed) for run in runs[1:]]
    return Comparison(labels=unique_labels(runs), metrics=metrics, table=table, deltas=deltas)


def cell(name: str, agg: Aggregate | None) -> str:
    return "—" if agg is None else f"{fmt(name, agg.value)} [{fmt(name, agg.low)}, {fmt(name, agg.high)}]"


def delta_cell(name: str, delta: Delta | None) -> str:
    if delta is None or math.isnan(delta.value):
        return "—"
    sign = "+" if delta.value >= 0 else ""
    return f"{sign}{fmt(name, delta.value)} [{fmt(name, delta.low)}, {fmt(name, delta.high)}]"


def markdown(comp: Comparison, title: str = "Comparison") -> str:
    """Table: metric, each run 'value [95% CI]', then paired differences to the first run."""
    header = ["metric"] + comp.labels + [f"Δ {label} − {comp.labels[0]}" for label in comp.labels[1:]]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in comp.metrics:
        cells = [cell(name, agg) for agg in comp.table[name]] + [delta_cell(name, d) for d in comp.deltas[name][1:]]
        lines.append(f"| {spec(name).label} | " + " | ".join(cells) + " |")
    lines += ["", "Values are aggregates with percentile-bootstrap 95% intervals over examples; "
              "Δ columns use a paired bootstrap on the examples both runs share (an interval that excludes 0 is a real difference)."]
    return "\n".join(lines) + "\n"


def bar_chart(comp: Comparison, path: str | Path, metrics: list[str] | None = None) -> Path:
    """One small panel per metric, one bar per run, 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in (metrics or comp.metrics) if any(a is not None for a in comp.table[m])]
    if not names:
        raise UserError("no metric to plot")
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names):
        values, errors = [], [[], []]
        for agg in comp.table[name]:
            value = agg.value if agg is not None and np.isfinite(agg.value) else 0.0
            low = agg.low if agg is not None and np.isfinite(agg.low) else value
            high = agg.high if agg is not None and np.isfinite(agg.high) else value
            values.append(value)
            errors[0].append(max(0.0, value - low))
            errors[1].append(max(0.0, high - value))
        x = np.arange(len(values))
        ax.bar(x, values, yerr=errors, capsize=4, color=[colors[i % len(colors)] for i in x])
        ax.set_title(spec(name).label + ("" if spec(name).higher_is_better else " (lower is better)"), fontsize=9)
        ax.set_xticks(x, comp.labels, rotation=20, fontsize=8, ha="right")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
