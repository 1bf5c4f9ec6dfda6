"""Speedrun stage 60: base vs LoRA table from what the fine-tune stage left (tiny model, tiny adapter)."""

from __future__ import annotations

import importlib

import torch

from llm_deeper.speedrun.core import Context, write_report

stage = importlib.import_module("llm_deeper.speedrun.stages.60_eval")


def test_stage_skips_without_a_fine_tune(tmp_path):
    result = stage.run(Context(quick=True, model="x", run_dir=tmp_path, log=lambda _: None))
    assert result.ok and result.headline.startswith("skipped")


def test_stage_writes_the_before_after_table_into_the_report(tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.models.loaders import load_model
    from llm_deeper.models.tiny import save_tiny_model, tiny_llama

    # Room for the tool prompts (byte-level tokens: ~1,400): the engine refuses a prompt beyond the context.
    tiny_llama_dir = save_tiny_model(tmp_path / "tiny", context=4096)

    _, test_path = write_tool_dataset(tmp_path / "data", n_train=2, n_test=6, seed=0, distractors=0)
    get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(tmp_path / "adapter")
    loaded = load_model(str(tiny_llama_dir))
    ctx = Context(quick=True, model=str(tiny_llama_dir), run_dir=tmp_path / "run", log=lambda _: None,
                  state={"loaded": loaded, "adapter_dir": str(tmp_path / "adapter"), "tool_test_data": str(test_path)})
    ctx.run_dir.mkdir()
    assert stage.settings(True)[0] < stage.settings(False)[0]
    monkeypatch.setattr(stage, "settings", lambda quick: (2, ("tools", "rouge"), 8))  # tinier than --quick: seconds here
    result = stage.run(ctx)
    assert result.ok and "tool: all right" in result.headline and "(n=2)" in result.headline
    assert "| metric | base | lora | Δ lora − base |" in result.details
    assert (ctx.run_dir / "eval" / "compare.png").is_file() and (ctx.run_dir / "eval" / "lora" / "results.json").is_file()
    assert "tool: all right: base → LoRA" in result.metrics
    assert torch.equal(loaded.model(torch.tensor([[1, 2, 3]])).logits, load_model(str(tiny_llama_dir)).model(torch.tensor([[1, 2, 3]])).logits)

    from llm_deeper.speedrun.core import Outcome, Stage

    report = write_report(ctx, [Outcome(Stage("60_eval", stage.TITLE, stage.run), result, 1.0)], tmp_path / "report.md").read_text()
    assert "| metric | base | lora |" in report and stage.TITLE in report
