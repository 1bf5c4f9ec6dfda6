"""One chat turn: the default model answers a question whose answer we know."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Chat turn"
QUESTION = "What is the capital of France?"
EXPECTED = "Paris"


def run(ctx: Context) -> StageResult:
    from ...inference.engine import Engine
    from ...inference.sampling import SamplingConfig

    with Engine(ctx.state["loaded"], max_batch=1) as engine:
        result = engine.generate([{"role": "user", "content": QUESTION}], SamplingConfig(max_new_tokens=24, temperature=0.0))
    reply = result.text.strip()
    tokens, seconds = result.usage.completion_tokens, result.seconds
    ok = EXPECTED.lower() in reply.lower()
    return StageResult(
        headline=f"{QUESTION} → {reply!r}" + ("" if ok else f" (expected {EXPECTED})"),
        metrics={"question": QUESTION, "reply": reply, "contains expected answer": ok, "tokens/s (engine, prompt included)": round(tokens / seconds, 1)},
        ok=ok,
    )
