"""Convert the fine-tuned tool adapter to mlx-lm and check it is the same model there: logits and the tool answer."""

from __future__ import annotations

from ..core import Context, StageResult

TITLE = "MLX: the tool adapter in mlx-lm"
LOGIT_TOLERANCE = 1e-2  # two fp32 implementations of a 30-layer model agree to ~1e-4; a wrong scale or orientation is off by >0.1


def run(ctx: Context) -> StageResult:
    from ...convert.mlx_runtime import mlx_status

    usable, reason = mlx_status()
    adapter, data = ctx.state.get("adapter_dir"), ctx.state.get("tool_test_data")
    if not usable:
        return StageResult(headline=f"skipped: {reason}", metrics={"skipped": True})
    if not adapter or not data:
        return StageResult(headline="skipped: no adapter and test set from the fine-tune stage (run it in the same speedrun)", metrics={"skipped": True})
    from ...chat_format import prompt_ids
    from ...convert.mlx_parity import compare_with_peft
    from ...convert.peft_to_mlx import peft_to_mlx
    from ...data.sft import read_jsonl
    from ...finetune.tool_probe import expected_tool, prompt_messages
    from ...models.loaders import load_tokenizer
    from ...tools.formats import HERMES

    converted = peft_to_mlx(adapter, ctx.run_dir / "adapter-mlx", model=ctx.model, force=True)
    ctx.log(f"mlx-lm adapter → {converted.folder} (rank {converted.rank}, scale {converted.scale:g}, last {converted.num_layers} layers)")
    tokenizer = load_tokenizer(ctx.model)
    # the shortest held-out tool prompt: mlx-lm on this CPU reads ~10 tokens/s (reference BLAS), so every token counts
    prompts = [prompt_ids(tokenizer, prompt_messages(e), e.tools) for e in read_jsonl(data) if expected_tool(e)]
    ids = min(prompts, key=len)
    if ctx.quick:  # only the path: the prompt's tail (question and assistant header) costs mlx-lm seconds, not half a minute
        ids = ids[-48:]
    new_tokens = 8 if ctx.quick else 40  # a whole call needs ~25-40 tokens; quick mode only proves the path
    parity = compare_with_peft(ctx.model, adapter, converted.folder, ids, max_new_tokens=new_tokens)
    peft_calls, mlx_calls = HERMES.parse(parity.peft_text).calls, HERMES.parse(parity.mlx_text).calls
    same_call = [(c.name, c.arguments) for c in peft_calls] == [(c.name, c.arguments) for c in mlx_calls]
    called = f"{peft_calls[0].name}" if peft_calls else "no complete call"
    metrics = {
        "mlx adapter": str(converted.folder),
        "prompt tokens": parity.prompt_tokens,
        "positions compared": parity.positions,
        "max |Δlogit| mlx-lm vs PEFT, with adapter": f"{parity.max_logit_diff:.2e}",
        "max |Δlogit| the adapter causes": f"{parity.adapter_effect:.2e}",
        "greedy tokens": len(parity.peft_ids),
        "same greedy tokens": parity.same_greedy,
        "same tool answer": same_call,
        "PEFT answer": parity.peft_text,
        "mlx-lm answer": parity.mlx_text,
    }
    ok = parity.max_logit_diff < LOGIT_TOLERANCE
    return StageResult(
        headline=(f"max |Δlogit| mlx-lm vs PEFT {parity.max_logit_diff:.1e} over {parity.positions} positions; "
                  f"{len(parity.peft_ids)} greedy tokens {'equal' if parity.same_greedy else 'DIFFER'}; tool answer ({called}) "
                  f"{'the same' if same_call else 'differs'}"),
        metrics=metrics,
        ok=ok,
    )
