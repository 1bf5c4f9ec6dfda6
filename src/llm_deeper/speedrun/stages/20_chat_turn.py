"""One chat turn: the default model answers a question whose answer we know."""

from __future__ import annotations

import time

from ..core import Context, StageResult

TITLE = "Chat turn"
QUESTION = "What is the capital of France?"
EXPECTED = "Paris"


def run(ctx: Context) -> StageResult:
    from ...inference.hf_stream import chat_input_ids, stream_generate
    from ...inference.sampling import SamplingConfig

    loaded = ctx.state["loaded"]
    input_ids = chat_input_ids(loaded.tokenizer, [{"role": "user", "content": QUESTION}])
    start = time.perf_counter()
    pieces = list(stream_generate(loaded.model, loaded.tokenizer, input_ids, SamplingConfig(max_new_tokens=24, temperature=0.0)))
    seconds = time.perf_counter() - start
    reply = "".join(pieces).strip()
    tokens = len(loaded.tokenizer(reply, add_special_tokens=False)["input_ids"])
    ok = EXPECTED.lower() in reply.lower()
    return StageResult(
        headline=f"{QUESTION} → {reply!r}" + ("" if ok else f" (expected {EXPECTED})"),
        metrics={"question": QUESTION, "reply": reply, "contains expected answer": ok, "decode tokens/s (transformers generate)": round(tokens / seconds, 1)},
        ok=ok,
    )
