"""Stage runner, shared context and the Markdown report of the speedrun."""

from __future__ import annotations

import importlib
import pkgutil
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable


@dataclass
class StageResult:
    """What one stage reports."""

    headline: str  # one line for the summary table
    metrics: dict[str, Any] = field(default_factory=dict)  # figures for the report
    ok: bool = True  # False marks a stage whose check failed
    details: str = ""  # optional Markdown paragraph for the report


@dataclass
class Context:
    """State shared by the stages of one run."""

    quick: bool  # tiny settings everywhere
    model: str  # the model every stage starts from
    run_dir: Path  # where this run writes its report and artifacts
    seed: int = 0  # seed for everything random
    state: dict[str, Any] = field(default_factory=dict)  # what a stage leaves for later ones (loaded model, adapter folder, ...)
    log: Callable[[str], None] = print  # progress lines


@dataclass
class Stage:
    """A discovered stage module."""

    key: str  # module name, e.g. "10_prepare_model"
    title: str  # human title
    run: Callable[[Context], StageResult]


@dataclass
class Outcome:
    """A stage after running."""

    stage: Stage
    result: StageResult | None
    seconds: float
    error: str = ""  # traceback text when the stage raised

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok and not self.error


def discover(only: list[str] | None = None) -> list[Stage]:
    """Stage modules in order; `only` filters by substring of the key."""
    from . import stages

    found = []
    for info in sorted(pkgutil.iter_modules(stages.__path__), key=lambda m: m.name):
        if only and not any(word in info.name for word in only):
            continue
        module = importlib.import_module(f"{stages.__name__}.{info.name}")
        found.append(Stage(key=info.name, title=module.TITLE, run=module.run))
    return found


def run_stages(ctx: Context, stages: list[Stage], on_start: Callable[[Stage], None], on_end: Callable[[Outcome], None]) -> list[Outcome]:
    """Run stages in order; stop at the first failure (later stages build on it)."""
    outcomes = []
    for stage in stages:
        on_start(stage)
        start = time.perf_counter()
        try:
            outcome = Outcome(stage, stage.run(ctx), time.perf_counter() - start)
        except Exception as exc:  # a stage failing must still produce a report
            outcome = Outcome(stage, None, time.perf_counter() - start, error="".join(traceback.format_exception(exc)))
        outcomes.append(outcome)
        on_end(outcome)
        if not outcome.ok:
            break
    return outcomes


def write_report(ctx: Context, outcomes: list[Outcome], path: Path) -> Path:
    """The Markdown report: a summary table, then each stage's figures."""
    import platform

    import torch

    lines = [
        "# LLM Deeper speedrun",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- mode: {'quick (tiny settings)' if ctx.quick else 'full'}",
        f"- model: {ctx.model}",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}",
        f"- total: {sum(o.seconds for o in outcomes):.1f} s",
        "",
        "| stage | result | time | headline |",
        "|---|---|---:|---|",
    ]
    for o in outcomes:
        status = "ok" if o.ok else "FAILED"
        headline = o.result.headline if o.result else o.error.strip().splitlines()[-1]
        lines.append(f"| {o.stage.title} | {status} | {o.seconds:.1f} s | {headline} |")
    for o in outcomes:
        lines += ["", f"## {o.stage.title}", ""]
        if o.result:
            lines += [f"- {key}: {value}" for key, value in o.result.metrics.items()]
            if o.result.details:
                lines += ["", o.result.details]
        if o.error:
            lines += ["```", o.error.rstrip(), "```"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
