"""`llm-deeper eval bfcl`: BFCL's AST categories through our engine or any OpenAI-compatible server.

Every item goes through the chat layer (`llm_deeper.chat`): in-process the
engine with the server's own tool prompt, grammar for `tool_choice` and
parser, base and LoRA adapter side by side on one loaded model; with
`--base-url` the server does it all.
Each item scores 1 or 0 per category (`bfcl:<category>`) and in
`bfcl:overall`, where every category weighs the same (BFCL's overall is the
unweighted mean of its categories). Runs are written like `llm-deeper eval`
runs, so `eval compare` and its bootstrap intervals apply unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .bfcl import BfclItem, calls_of, check_item, openai_tools


class ChatBackend:
    """BFCL items through a chat model: `EngineChatModel` (base and adapters on one loaded model, all items
    decoded together) or `OpenAIChatModel` (`--base-url`); a schema the model refuses is a miss with its reason."""

    def __init__(self, model, max_new_tokens: int = 256):
        self.model = model  # a chat.ChatModel
        self.backend = model.backend
        self.max_new_tokens = max_new_tokens

    def replies(self, items: list[BfclItem], target: str | None, tool_choice: str, on_done: Callable[[int], None]):
        from ..chat import ChatRequest
        from ..inference.sampling import SamplingConfig

        sampling = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0, seed=0)
        return self.model.chat_many([ChatRequest(item.messages, tools=openai_tools(item.functions), tool_choice=tool_choice,
                                               parallel_tool_calls=True, sampling=sampling, model=target) for item in items], on_done)


def score(items: list[BfclItem], replies) -> list[dict]:
    """Eval records (the shape `evals.report` writes) with BFCL's verdict per item."""
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item.category] = sizes.get(item.category, 0) + 1
    records = []
    for item, reply in zip(items, replies):
        reason = reply.error or check_item(item, calls_of(reply.tool_calls))
        ok = float(not reason)
        records.append({
            "id": item.id, "prompt": str(item.messages[-1].get("content", ""))[:200], "reference": "", "expected_calls": None,
            "prediction": reply.content.strip(), "predicted_calls": reply.tool_calls, "completion_tokens": reply.completion_tokens,
            "finish_reason": reply.finish_reason, "verdict": reason or "pass",
            # every category weighs the same in the overall figure, whatever its sample size
            "scores": {f"bfcl:{item.category}": (ok, 1.0), "bfcl:overall": (ok, 1.0 / sizes[item.category]),
                       "bfcl:hit max_tokens": (float(reply.finish_reason == "length"), 1.0)},
        })
    return records


def run_bfcl(items: list[BfclItem], backend, target: str | None, tool_choice: str, label: str, info: dict | None = None,
             resamples: int = 1000, seed: int = 0, on_done: Callable[[int], None] = lambda _: None):
    """One run (a model or adapter under one tool_choice) as an `EvalRun`."""
    import platform
    from datetime import datetime, timezone

    from .runner import EvalRun
    from .scores import aggregate_all

    if tool_choice not in ("auto", "required"):
        raise UserError(f"--tool-choice must be auto or required (comma-separated for both), got {tool_choice!r}")
    start = time.perf_counter()
    replies = backend.replies(items, target, tool_choice, on_done)
    records = score(items, replies)
    full_info = {
        "label": label, "backend": backend.backend, "data": "BFCL v4 (bfcl-eval wheel): " + ", ".join(sorted({i.category for i in items})),
        "tool_choice": tool_choice, "examples": len(items), "seconds": round(time.perf_counter() - start, 1),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "config": {"metrics": ["bfcl"], "max_new_tokens": backend.max_new_tokens, "resamples": resamples, "seed": seed},
        **(info or {}),
    }
    return EvalRun(info=full_info, records=records, aggregates=aggregate_all(records, resamples, seed))


def write_comparison(folders: list[Path], out: Path, resamples: int = 1000, seed: int = 0, title: str = "BFCL") -> tuple[Path, str]:
    """compare.md (and compare.png) for several written runs; returns the table path and text."""
    from .compare import bar_chart, compare, markdown
    from .report import load_run

    comp = compare([load_run(f) for f in folders], resamples, seed)
    text = markdown(comp, title)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text, encoding="utf-8")
    bar_chart(comp, out / "compare.png")
    return out / "compare.md", text
