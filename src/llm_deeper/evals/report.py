"""Write one run as results.json (per example + aggregate) and report.md; read it back."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import UserError
from .scores import Aggregate, fmt, spec

RESULTS = "results.json"
REPORT = "report.md"


def _clean(value):
    """nan/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(run) -> dict:
    """The whole run as one JSON-ready object."""
    return _clean({"info": run.info, "aggregate": {k: a.as_dict() for k, a in run.aggregates.items()}, "examples": run.records})


def aggregate_table(aggregates: dict[str, Aggregate]) -> list[str]:
    """Markdown rows: metric | value | 95% CI | examples."""
    lines = ["| metric | value | 95% CI (bootstrap) | examples |", "|---|---:|---|---:|"]
    for name, agg in aggregates.items():
        lines.append(f"| {spec(name).label} | {fmt(name, agg.value)} | {fmt(name, agg.low)} – {fmt(name, agg.high)} | {agg.n} |")
    return lines


def markdown(run, examples_shown: int = 5) -> str:
    """A readable report: what was run, the aggregate table, notes, a few examples."""
    info = run.info
    title = info.get("label") or info.get("model", "model")
    lines = [f"# Evaluation: {title}", ""]
    for key in ("model", "adapter", "backend", "base_url", "data", "examples", "date", "machine"):
        if info.get(key) not in (None, ""):
            lines.append(f"- {key}: {info[key]}")
    config = info.get("config", {})
    lines += [f"- metrics: {', '.join(config.get('metrics', []))}; max new tokens {config.get('max_new_tokens')}, temperature {config.get('temperature')}", ""]
    lines += aggregate_table(run.aggregates)
    notes = []
    if "bertscore" in info:
        b = info["bertscore"]
        notes.append(f"BERTScore encoder: {b['encoder']}, layer {b['layer']} of {b['of_layers']}, idf {b['idf']}, not rescaled. {b['note']}")
    if "perplexity" in info:
        notes.append(f"Perplexity: {info['perplexity']}.")
    notes.append("Intervals: percentile bootstrap over examples, "
                 f"{config.get('resamples', 1000)} resamples; tokens/s pools tokens over seconds.")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    shown = [r for r in run.records if "prediction" in r][:examples_shown]
    if shown:
        lines += ["", f"## First {len(shown)} examples", ""]
        for r in shown:
            expected = calls_text(r.get("expected_calls")) or repr(r["reference"])
            got = " ".join(x for x in (repr(r["prediction"]) if r["prediction"] else "", calls_text(r.get("predicted_calls"))) if x) or "''"
            lines += [f"- **{r['id']}** — prompt: {r['prompt']!r}", f"  - expected: {expected}", f"  - got: {got}"]
    return "\n".join(lines) + "\n"


def calls_text(calls: list[dict] | None) -> str:
    """Tool calls as `name({...})`, one after another, for reading."""
    out = []
    for call in calls or []:
        function = call.get("function", call)
        arguments = function.get("arguments")
        out.append(f"{function.get('name')}({arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)})")
    return " ".join(out)


def write_run(run, folder: str | Path) -> tuple[Path, Path]:
    """Write results.json and report.md into `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = folder / RESULTS
    results.write_text(json.dumps(to_json(run), indent=1, ensure_ascii=False), encoding="utf-8")
    report = folder / REPORT
    report.write_text(markdown(run), encoding="utf-8")
    return results, report


def load_run(path: str | Path) -> dict:
    """A run's results.json (pass the file or the folder that holds it)."""
    path = Path(path).expanduser()
    file = path / RESULTS if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"no evaluation results at {path}: pass a folder written by `llm-deeper eval` (it holds {RESULTS})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{file} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or not {"info", "examples"} <= set(data):
        raise UserError(f"{file} is not an `llm-deeper eval` results file (needs 'info' and 'examples')")
    for record in data["examples"]:
        record["scores"] = {k: tuple(v) if v[0] is not None else (0.0, 0.0) for k, v in record.get("scores", {}).items()}
    data.setdefault("path", str(file))
    return data
