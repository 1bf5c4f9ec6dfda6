"""Serve the model (and the fine-tuned adapter) and answer through the official openai client."""

from __future__ import annotations

import time

from ..core import Context, StageResult

TITLE = "Serve (OpenAI-compatible API + web chat)"
QUESTION = "What is the capital of France?"
EXPECTED = "Paris"


def run(ctx: Context) -> StageResult:
    import openai

    from ...errors import UserError
    from ...inference.engine import Engine
    from ...serve.app import create_app
    from ...serve.background import BackgroundServer

    loaded = ctx.state["loaded"]
    adapters, adapter_note = {}, "no adapter (the fine-tune stage did not run)"
    if ctx.state.get("adapter_dir"):
        adapters = {"tools-lora": ctx.state["adapter_dir"]}
    try:
        engine = Engine(loaded, adapters=adapters, max_batch=4)
    except UserError as exc:  # an adapter the engine cannot apply: serve the base model, say why
        engine, adapter_note = Engine(loaded, max_batch=4), f"adapter not served: {exc}"
    if engine.adapters:
        adapter_note = f"adapter 'tools-lora' from {ctx.state['adapter_dir']}"
    metrics: dict = {}
    try:
        with BackgroundServer(create_app(engine)) as server:
            ctx.log(f"web chat page at {server.url}/ (this stage's server; `llm-deeper serve` keeps one running)")
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            names = [m.id for m in client.models.list().data]
            start = time.perf_counter()
            chunks = list(client.chat.completions.create(model=engine.name, messages=[{"role": "user", "content": QUESTION}], max_tokens=24,
                                                         temperature=0, stream=True, stream_options={"include_usage": True}))
            seconds = time.perf_counter() - start
            reply = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
            usage = chunks[-1].usage
            metrics = {"url": server.url + "/", "models": names, "question": QUESTION, "reply": reply,
                       "completion tokens": usage.completion_tokens, "streamed tokens/s (incl. prefill)": round(usage.completion_tokens / seconds, 1),
                       "adapter": adapter_note}
            if engine.adapters:
                tuned = client.chat.completions.create(model="tools-lora", messages=[{"role": "user", "content": QUESTION}], max_tokens=24, temperature=0)
                metrics["adapter reply"] = tuned.choices[0].message.content.strip()
    finally:
        engine.close()
    ok = EXPECTED.lower() in metrics.get("reply", "").lower()
    return StageResult(
        headline=f"served {', '.join(metrics['models'])} at {metrics['url']}; {QUESTION} → {metrics['reply']!r}" + ("" if ok else f" (expected {EXPECTED})"),
        metrics=metrics,
        ok=ok,
    )
