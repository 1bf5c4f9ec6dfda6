"""Parity: logits of the cached HF folder equal those of the original GGUF."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Parity: GGUF vs converted folder"
PROMPT = "The quick brown fox jumps over the lazy dog. Attention is all you need."
TOLERANCE = 1e-4


def run(ctx: Context) -> StageResult:
    import torch

    from ...models.embedded import gguf_path
    from ...models.loaders import load_gguf

    loaded = ctx.state["loaded"]
    if loaded.ref.spec is None:
        return StageResult(headline="skipped: the model is not an embedded GGUF", metrics={"skipped": True})
    gguf_model, _ = load_gguf(gguf_path(loaded.ref.spec))
    ids = loaded.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        diff = (loaded.model(ids).logits - gguf_model(ids).logits).abs().max().item()
    del gguf_model
    ok = diff < TOLERANCE
    return StageResult(
        headline=f"max |Δlogit| = {diff:.2e} over {ids.shape[1]} tokens (tolerance {TOLERANCE:g})",
        metrics={"prompt tokens": ids.shape[1], "max abs logit diff": f"{diff:.3e}", "tolerance": TOLERANCE},
        ok=ok,
    )
