"""Stage runner, shared context, stage records for reruns, and the Markdown report of the speedrun."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import pkgutil
import time
import traceback
from dataclasses import asdict, dataclass, field
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
    source: str = ""  # hash of the stage's code: an edited stage is not reused from an earlier run


@dataclass
class Outcome:
    """A stage after running."""

    stage: Stage
    result: StageResult | None
    seconds: float
    error: str = ""  # traceback text when the stage raised
    reused: bool = False  # taken from an earlier run's record, not run again

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
        source = hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]
        found.append(Stage(key=info.name, title=module.TITLE, run=module.run, source=source))
    return found


# ── records: a rerun in the same folder skips the stages that already finished ──

def _to_json(value: Any) -> Any:
    """A JSON form of what a stage leaves in ctx.state; raises TypeError for in-memory objects."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_json(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return Path(value["__path__"]) if set(value) == {"__path__"} else {k: _from_json(v) for k, v in value.items()}
    return value


@dataclass
class StageRecord:
    """What a finished stage leaves in `<run_dir>/stages/<key>.json`."""

    fingerprint: dict[str, Any]  # model, seed, mode, stage code and library code: any change means run it again
    result: dict[str, Any]  # the StageResult's fields
    seconds: float  # how long it took when it ran
    state: dict[str, Any]  # the JSON-able entries it added to ctx.state
    complete: bool  # False when it also left in-memory objects (a loaded model): then it always runs


@functools.cache
def library_digest() -> str:
    """Hash of the installed package's Python files: a stage calls into the library (the recipe, the data, the
    engine), so after a `git pull` a record made by other code is not reused even when the stage file is the same."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint(ctx: Context, stage: Stage) -> dict[str, Any]:
    return {"model": ctx.model, "seed": ctx.seed, "quick": ctx.quick, "source": stage.source, "library": library_digest()}


def _record_path(ctx: Context, stage: Stage) -> Path:
    return ctx.run_dir / "stages" / f"{stage.key}.json"


def load_record(ctx: Context, stage: Stage) -> StageRecord | None:
    """The stage's record from an earlier run in this folder, if it still applies."""
    try:
        record = StageRecord(**json.loads(_record_path(ctx, stage).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):  # none yet, or unreadable: run the stage
        return None
    return record if record.fingerprint == _fingerprint(ctx, stage) else None


def save_record(ctx: Context, outcome: Outcome, added: dict[str, Any]) -> None:
    state, complete = {}, True
    for key, value in added.items():
        try:
            state[key] = _to_json(value)
        except TypeError:
            complete = False
    record = StageRecord(_fingerprint(ctx, outcome.stage), asdict(outcome.result), outcome.seconds, state, complete)
    path = _record_path(ctx, outcome.stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.__dict__, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)  # a killed run never leaves half a record


def run_stages(ctx: Context, stages: list[Stage], on_start: Callable[[Stage], None], on_end: Callable[[Outcome], None],
               fresh: bool = False) -> list[Outcome]:
    """Run stages in order; stop at the first failure (later stages build on it).

    Unless `fresh`, a stage whose record from an earlier run in `ctx.run_dir` still applies is
    not run again: its result and what it left in ctx.state come from the record. Once a stage
    runs again, every later stage runs too (it may build on the new outputs). A stage that left
    in-memory objects (a loaded model) always runs, and, since it rebuilds them from the same
    inputs, does not force later stages to run.
    """
    outcomes = []
    rerun_all = fresh
    for stage in stages:
        record = None if rerun_all else load_record(ctx, stage)
        if record is not None and record.complete:
            ctx.state.update({k: _from_json(v) for k, v in record.state.items()})
            outcome = Outcome(stage, StageResult(**record.result), record.seconds, reused=True)
            outcomes.append(outcome)
            on_end(outcome)
            continue
        rerun_all = rerun_all or record is None
        on_start(stage)
        before = dict(ctx.state)
        start = time.perf_counter()
        try:
            outcome = Outcome(stage, stage.run(ctx), time.perf_counter() - start)
        except Exception as exc:  # a stage failing must still produce a report
            outcome = Outcome(stage, None, time.perf_counter() - start, error="".join(traceback.format_exception(exc)))
        outcomes.append(outcome)
        on_end(outcome)
        if not outcome.ok:
            break
        save_record(ctx, outcome, {k: v for k, v in ctx.state.items() if k not in before or before[k] is not v})
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
        f"- total: {sum(o.seconds for o in outcomes):.1f} s"
        + (f" ({sum(o.seconds for o in outcomes if not o.reused):.1f} s in this run; stages marked 'reused' come from an earlier run, `--fresh` reruns them)"
           if any(o.reused for o in outcomes) else ""),
        "",
        "| stage | result | time | headline |",
        "|---|---|---:|---|",
    ]
    for o in outcomes:
        status = ("ok (reused)" if o.reused else "ok") if o.ok else "FAILED"
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
