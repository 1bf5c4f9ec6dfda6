"""`llm-deeper eval bfcl`: BFCL's AST categories through our engine or any OpenAI-compatible server.

In-process, every item goes through the engine the server uses (same tool
prompt, same grammar for `tool_choice`, same parser), base and LoRA adapter
side by side on one loaded model; with `--base-url` the server does it all.
Each item scores 1 or 0 per category (`bfcl:<category>`) and in
`bfcl:overall`, where every category weighs the same (BFCL's overall is the
unweighted mean of its categories). Runs are written like `llm-deeper eval`
runs, so `eval compare` and its bootstrap intervals apply unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .bfcl import BfclItem, calls_of, check_item, openai_tools


@dataclass
class Reply:
    """What the model answered to one item."""

    tool_calls: list[dict]  # OpenAI-shaped calls (parsed from the reply)
    text: str  # the rest of the reply
    finish_reason: str  # "stop", "tool_calls" or "length"
    completion_tokens: int
    error: str = ""  # set when the item could not be asked (a schema the server refused)


class EngineBackend:
    """Items through an in-process `Engine` (the server's prompt, grammar and parser), several at a time."""

    backend = "in-process engine"

    def __init__(self, engine, max_new_tokens: int = 256):
        self.engine = engine
        self.max_new_tokens = max_new_tokens

    def _submit(self, item: BfclItem, adapter: str | None, tool_choice: str):
        from ..inference.sampling import SamplingConfig
        from ..tools.constrain import tool_call_grammar

        tools = openai_tools(item.functions)
        constraint = self.engine.constraint(tool_call_grammar(tools, tool_choice, True))  # what the server applies
        prompt = self.engine.encode(item.messages, tools)
        config = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0)
        return self.engine.submit(prompt, config, adapter=adapter, constraint=constraint), [t["function"]["name"] for t in tools]

    def replies(self, items: list[BfclItem], adapter: str | None, tool_choice: str, on_done: Callable[[int], None]) -> list[Reply]:
        from ..tools.formats import HERMES

        window = max(1, self.engine.max_batch)  # keep the batch full, never the queue
        out: list[Reply | None] = [None] * len(items)
        pending: list[tuple[int, object, list[str]]] = []
        done = 0

        def collect(entry) -> None:
            nonlocal done
            index, request, names = entry
            result = request.result()
            parsed = HERMES.parse(result.text, tool_names=names)
            calls = [c.to_openai() for c in parsed.calls]
            finish = "tool_calls" if calls and result.finish_reason == "stop" else result.finish_reason
            out[index] = Reply(calls, parsed.content.strip(), finish, result.usage.completion_tokens)
            done += 1
            on_done(done)

        for index, item in enumerate(items):
            try:
                request, names = self._submit(item, adapter, tool_choice)
            except UserError as exc:  # a schema xgrammar cannot compile: the server would answer 400
                out[index] = Reply([], "", "error", 0, error=str(exc))
                done += 1
                continue
            pending.append((index, request, names))
            if len(pending) >= window:
                collect(pending.pop(0))
        for entry in pending:
            collect(entry)
        return out  # type: ignore[return-value]


class OpenAIBackend:
    """Items through an OpenAI-compatible server with the official client."""

    backend = "OpenAI-compatible endpoint"

    def __init__(self, base_url: str, api_key: str | None = None, max_new_tokens: int = 256, timeout: float = 300.0):
        from openai import OpenAI

        self.base_url = base_url
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)
        self.max_new_tokens = max_new_tokens

    def replies(self, items: list[BfclItem], model: str | None, tool_choice: str, on_done: Callable[[int], None]) -> list[Reply]:
        import openai

        out = []
        for index, item in enumerate(items):
            try:
                response = self.client.chat.completions.create(
                    model=model, messages=item.messages, tools=openai_tools(item.functions), tool_choice=tool_choice,
                    parallel_tool_calls=True, max_tokens=self.max_new_tokens, temperature=0, seed=0)
            except openai.APIConnectionError as exc:
                raise UserError(f"could not reach {self.base_url}: {exc}; is the server running (llm-deeper serve)?") from exc
            except openai.BadRequestError as exc:  # a schema this server refuses: a miss, with its reason
                out.append(Reply([], "", "error", 0, error=f"HTTP 400: {exc.message}"))
            except openai.APIStatusError as exc:
                raise UserError(f"{self.base_url} answered {exc.status_code}: {exc.message}") from exc
            else:
                choice = response.choices[0]
                calls = [c.model_dump(exclude_none=True) for c in choice.message.tool_calls or []]
                tokens = response.usage.completion_tokens if response.usage else 0
                out.append(Reply(calls, (choice.message.content or "").strip(), choice.finish_reason, tokens))
            on_done(index + 1)
        return out


def score(items: list[BfclItem], replies: list[Reply]) -> list[dict]:
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
            "prediction": reply.text, "predicted_calls": reply.tool_calls, "completion_tokens": reply.completion_tokens,
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
