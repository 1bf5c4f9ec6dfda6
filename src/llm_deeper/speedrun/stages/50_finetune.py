"""LoRA-fine-tune the default model on the synthetic tool data; probe held-out tool calls before and after."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "LoRA fine-tune on tool calls"


def run(ctx: Context) -> StageResult:
    from dataclasses import asdict, replace

    from ...finetune.tool_recipe import QUICK, ToolRecipe, run_tool_recipe

    recipe = replace(QUICK if ctx.quick else ToolRecipe(), seed=ctx.seed)
    run = run_tool_recipe(ctx.model, ctx.state["loaded"], ctx.run_dir / "finetune", recipe, log=ctx.log)
    ctx.state["adapter_dir"] = str(run.adapter_dir)  # the evals and serve stages use the adapter ...
    ctx.state["tool_test_data"] = str(run.test_file)  # ... and the same held-out conversations
    before, after = run.before.accuracy, run.after.accuracy
    # The stage fails only if fine-tuning did not help (later stages build on the adapter);
    # the 80% right-tool target is reported, and quick mode (2 steps) only proves the path works.
    ok = run.learned and (ctx.quick or after >= before)
    figures = run.figures()
    figures["target (full mode): right tool after ≥ 80%"] = "n/a in quick mode" if ctx.quick else ("met" if after >= 0.8 else "missed")
    details = "Held-out answers after fine-tuning:\n\n" + "\n".join(f"- {s['prompt']!r} → expected `{s['expected']}`, called `{s['called']}`" for s in run.after.samples[:3])
    return StageResult(
        headline=f"right tool on held-out prompts {before:.0%} → {after:.0%}; held-out loss {run.loss_before:.3f} → {run.loss_after:.3f}",
        metrics={**figures, "adapter": str(run.adapter_dir), "recipe": asdict(run.recipe)},
        ok=ok,
        details=details,
    )
