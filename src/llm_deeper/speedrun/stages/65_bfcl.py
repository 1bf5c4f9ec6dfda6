"""BFCL beside the project's own set: a fixed sample of the Berkeley Function Calling Leaderboard, base vs LoRA."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Eval: BFCL v4 sample, base vs LoRA"


def settings(quick: bool) -> tuple[int, int]:
    """(items per category, max new tokens): 4 x 5 categories x 2 models keeps the stage to ~2 minutes on 2 cores."""
    return (1, 16) if quick else (4, 96)


def run(ctx: Context) -> StageResult:
    from ...evals.bfcl import CATEGORIES, load_category
    from ...chat.engine_model import EngineChatModel
    from ...evals.bfcl_run import ChatBackend, run_bfcl, write_comparison
    from ...evals.report import write_run
    from ...evals.scores import fmt
    from ...inference.engine import Engine

    adapter = ctx.state.get("adapter_dir")
    if not adapter:
        return StageResult(headline="skipped: no adapter from the fine-tune stage (run it in the same speedrun)", metrics={"skipped": True})
    per_category, max_new_tokens = settings(ctx.quick)
    items = [item for category in CATEGORIES for item in load_category(category, per_category, ctx.seed)]  # evaluation only, never training
    out = ctx.run_dir / "bfcl"
    engine = Engine(ctx.state["loaded"], adapters={"lora": adapter}, max_batch=4)
    try:
        backend = ChatBackend(EngineChatModel(engine), max_new_tokens)
        runs = {}
        for label, target in (("base", None), ("lora", "lora")):
            ctx.log(f"BFCL {label}: {len(items)} items ({per_category} per category), tool_choice auto")
            runs[label] = run_bfcl(items, backend, target, "auto", label, info={"model": ctx.model, "adapter": str(adapter) if target else None}, seed=ctx.seed)
            write_run(runs[label], out / label)
    finally:
        engine.close()
    table, text = write_comparison([out / "base", out / "lora"], out, seed=ctx.seed, title="BFCL v4 sample: base vs LoRA (auto)")
    figures = {}
    for name in [f"bfcl:{c}" for c in CATEGORIES] + ["bfcl:overall", "bfcl:hit max_tokens"]:
        base, lora = runs["base"].aggregates.get(name), runs["lora"].aggregates.get(name)
        if base and lora:
            figures[f"{name}: base → LoRA"] = f"{fmt(name, base.value)} → {fmt(name, lora.value)}"
    figures["comparison"] = str(table)
    overall = (runs["base"].aggregates["bfcl:overall"].value, runs["lora"].aggregates["bfcl:overall"].value)
    irrelevance = (runs["base"].aggregates["bfcl:irrelevance"].value, runs["lora"].aggregates["bfcl:irrelevance"].value)
    return StageResult(
        headline=f"BFCL overall {overall[0]:.2f} → {overall[1]:.2f}, irrelevance {irrelevance[0]:.2f} → {irrelevance[1]:.2f} (n={len(items)}, {per_category} per category)",
        metrics=figures,
        details=text.split("\n", 2)[2],
    )
