"""The speedrun's BFCL stage: a fixed sample, base vs LoRA, in the report beside the project's own set."""

from __future__ import annotations

import importlib

from llm_deeper.speedrun.core import Context

stage = importlib.import_module("llm_deeper.speedrun.stages.65_bfcl")


def test_stage_skips_without_a_fine_tune(tmp_path):
    result = stage.run(Context(quick=True, model="x", run_dir=tmp_path, log=lambda _: None))
    assert result.metrics == {"skipped": True}


def test_stage_reports_every_category_base_and_lora(tmp_path, one_torch_thread):
    from peft import LoraConfig, get_peft_model

    from llm_deeper.models.loaders import load_model
    from llm_deeper.models.tiny import save_tiny_model, tiny_llama

    folder = save_tiny_model(tmp_path / "tiny", arch="llama", context=8192)  # byte-level tokens: a BFCL prompt is ~2,000
    adapter = tmp_path / "adapter"
    get_peft_model(tiny_llama(context=8192), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
    ctx = Context(quick=True, model=str(folder), run_dir=tmp_path / "run", log=lambda _: None,
                  state={"loaded": load_model(str(folder)), "adapter_dir": str(adapter)})
    result = stage.run(ctx)
    assert result.headline.startswith("BFCL overall") and "n=5" in result.headline
    for category in ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "overall"):
        assert f"bfcl:{category}: base → LoRA" in result.metrics
    assert (tmp_path / "run" / "bfcl" / "compare.md").is_file() and "| metric |" in result.details
