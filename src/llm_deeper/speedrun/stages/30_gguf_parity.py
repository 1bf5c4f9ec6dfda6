"""Parity: the cached HF folder tokenizes like the original GGUF, and its logits equal the GGUF's.

The suite checks this only here (tests/e2e/test_speedrun_quick.py fails on a FAILED stage): loading
the GGUF dequantizes every tensor, ~15 s on 2 cores, too dear to pay twice per test run.
"""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Parity: GGUF vs converted folder"
PROMPT = "<|im_start|>user\nThe quick brown fox jumps over the lazy dog. Attention is all you need.<|im_end|>\n"  # specials too
TOLERANCE = 1e-4


def run(ctx: Context) -> StageResult:
    import torch

    from ...models.embedded import gguf_path
    from ...models.loaders import load_gguf

    loaded = ctx.state["loaded"]
    if loaded.ref.spec is None:
        return StageResult(headline="skipped: the model is not an embedded GGUF", metrics={"skipped": True})
    gguf_model, gguf_tokenizer = load_gguf(gguf_path(loaded.ref.spec))
    ids = loaded.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    same_ids = torch.equal(ids, gguf_tokenizer(PROMPT, return_tensors="pt")["input_ids"])
    with torch.inference_mode():
        diff = (loaded.model(ids).logits - gguf_model(ids).logits).abs().max().item()
    del gguf_model
    ok = diff < TOLERANCE and same_ids
    return StageResult(
        headline=(f"max |Δlogit| = {diff:.2e} over {ids.shape[1]} tokens (tolerance {TOLERANCE:g}); "
                  f"token ids {'equal' if same_ids else 'DIFFER'}"),
        metrics={"prompt tokens": ids.shape[1], "same token ids": same_ids, "max abs logit diff": f"{diff:.3e}", "tolerance": TOLERANCE},
        ok=ok,
    )
