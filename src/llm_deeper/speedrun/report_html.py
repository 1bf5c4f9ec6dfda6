"""The speedrun's report card: one self-contained HTML page (plots embedded) beside report.md.

Like nanochat's report card: the summary first, then every stage's figures, with the
PNG plots the stages wrote (TinyGPT loss, fine-tune loss, base-vs-LoRA chart) inlined as
data URIs, so the single file can be mailed or archived and still shows everything.
"""

from __future__ import annotations

import base64
import html
import platform
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .core import Context, Outcome

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #1d1d1f; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; width: 100%; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td.num { text-align: right; white-space: nowrap; }
.ok { color: #127a2e; font-weight: 600; } .failed { color: #b3261e; font-weight: 600; } .reused { color: #666; }
pre { background: #f5f5f7; padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
.meta { color: #555; }
"""


def _image_paths(metrics: dict[str, Any]) -> list[tuple[str, Path]]:
    """Metric values that name a PNG the stage wrote."""
    found = []
    for key, value in metrics.items():
        if isinstance(value, (str, Path)) and str(value).endswith(".png") and Path(value).is_file():
            found.append((key, Path(value)))
    return found


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _markdown_block(text: str) -> str:
    """The small Markdown the stages write: code fences, bullet lists, pipe tables, paragraphs."""
    parts, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            parts.append(f"<pre>{html.escape(chr(10).join(lines[i + 1:j]))}</pre>")
            i = j + 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            head, *body = rows or [[]]
            parts.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body) + "</table>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            parts.append("<ul>" + "".join(items) + "</ul>")
        else:
            if line.strip():
                parts.append(f"<p>{_inline(line)}</p>")
            i += 1
    return "\n".join(parts)


def _inline(text: str) -> str:
    """`code` and **bold** in escaped text."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def _status(o: Outcome) -> str:
    if not o.ok:
        return '<span class="failed">FAILED</span>'
    return '<span class="ok">ok</span>' + (' <span class="reused">(reused)</span>' if o.reused else "")


def _speed_rows(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    """Every throughput figure the stages reported (keys that mention tokens/s or tok/s)."""
    rows = []
    for o in outcomes:
        for key, value in (o.result.metrics if o.result else {}).items():
            if "tokens/s" in key or "tok/s" in key:
                rows.append((o.stage.title, key, str(value)))
    return rows


def render_html(ctx: Context, outcomes: list[Outcome]) -> str:
    """The whole page as a string."""
    import torch

    total = sum(o.seconds for o in outcomes)
    this_run = sum(o.seconds for o in outcomes if not o.reused)
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>LLM Deeper speedrun report card</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>LLM Deeper speedrun report card</h1>",
        f"<p class='meta'>{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} · "
        f"{'quick (tiny settings)' if ctx.quick else 'full'} · model {html.escape(ctx.model)} · seed {ctx.seed} · "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__} · "
        f"total {total:.1f} s" + (f" ({this_run:.1f} s in this run)" if this_run != total else "") + "</p>",
        "<h2>Summary</h2><table><tr><th>stage</th><th>result</th><th>time</th><th>headline</th></tr>",
    ]
    for o in outcomes:
        headline = o.result.headline if o.result else o.error.strip().splitlines()[-1]
        out.append(f"<tr><td>{html.escape(o.stage.title)}</td><td>{_status(o)}</td><td class='num'>{o.seconds:.1f} s</td>"
                   f"<td>{_inline(headline)}</td></tr>")
    out.append("</table>")
    speeds = _speed_rows(outcomes)
    if speeds:
        out.append("<h2>Speed</h2><table><tr><th>stage</th><th>figure</th><th>value</th></tr>")
        out += [f"<tr><td>{html.escape(s)}</td><td>{html.escape(k)}</td><td class='num'>{html.escape(v)}</td></tr>" for s, k, v in speeds]
        out.append("</table>")
    for o in outcomes:
        out.append(f"<h2>{html.escape(o.stage.title)} {_status(o)}</h2>")
        if o.result:
            images = dict(_image_paths(o.result.metrics))
            rows = [(k, v) for k, v in o.result.metrics.items() if k not in images]
            if rows:
                out.append("<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>")
            out += [_figure(f"{o.stage.title}: {k}", p) for k, p in images.items()]
            if o.result.details:
                out.append(_markdown_block(o.result.details))
        if o.error:
            out.append(f"<pre>{html.escape(o.error.rstrip())}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_html_report(ctx: Context, outcomes: list[Outcome], path: Path) -> Path:
    """Write the page atomically and return its path."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_html(ctx, outcomes), encoding="utf-8")
    tmp.replace(path)
    return path
