"""Evaluate the fine-tune: base model vs base + LoRA adapter on the held-out tool set."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "Eval: base vs LoRA on held-out tool calls"
HEADLINE_METRICS = ("tool_full_match", "tool_args_exact", "rougeL")


def settings(quick: bool):
    """(examples, metrics, max new tokens): quick keeps the whole stage to seconds."""
    if quick:
        return 2, ("tools", "rouge"), 16  # a smoke test: 16 tokens rarely finish a call
    return 40, ("tools", "rouge", "bertscore", "ppl"), 64


def run(ctx: Context) -> StageResult:
    from ...evals.data import read_examples
    from ...evals.report import load_run
    from ...evals.runner import EvalConfig
    from ...evals.scores import fmt, spec
    from ...evals.suite import base_vs_adapter

    adapter, data = ctx.state.get("adapter_dir"), ctx.state.get("tool_test_data")
    if not adapter or not data:
        return StageResult(headline="skipped: no adapter and test set from the fine-tune stage (run it in the same speedrun)", metrics={"skipped": True})
    limit, metrics, max_new_tokens = settings(ctx.quick)
    examples = read_examples(data, limit)
    config = EvalConfig(metrics=metrics, max_new_tokens=max_new_tokens, seed=ctx.seed, resamples=1000)
    out = ctx.run_dir / "eval"
    ctx.log(f"{len(examples)} held-out examples, metrics {', '.join(metrics)}, base then LoRA")
    result = base_vs_adapter(ctx.state["loaded"], adapter, examples, config, out, data=data, on_run=lambda which: ctx.log(f"evaluating {which}"))
    base, lora = (load_run(folder)["aggregate"] for folder in result.folders)
    figures = {}
    for name in base:
        # "Right tool" (tool selection) is the fine-tune stage's figure, same scorer: reported once, there.
        if name in lora and name != "tool_selection":
            figures[f"{spec(name).label}: base → LoRA"] = f"{fmt(name, base[name]['value'])} → {fmt(name, lora[name]['value'])}"
    figures["comparison"] = str(result.comparison_md)
    figures["chart"] = str(result.chart)
    shown = [n for n in HEADLINE_METRICS if n in base and n in lora]
    headline = "; ".join(f"{spec(n).label} {fmt(n, base[n]['value'])} → {fmt(n, lora[n]['value'])}" for n in shown)
    table = result.markdown.split("\n", 2)[2]  # drop the "# title" line: the report has its own heading
    return StageResult(headline=f"{headline} (n={len(examples)})", metrics=figures, details=table)
