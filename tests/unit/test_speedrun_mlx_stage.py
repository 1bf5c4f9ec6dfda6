"""The speedrun's MLX stage and the parity check it runs, on a tiny random Llama (seconds).

compare_with_peft reads prompt + PEFT's greedy continuation once on each side: these tests check that it
compares every position, that mlx-lm's picks are read off its logits (and stop at the first that differs),
and that the stage uses the shortest held-out tool prompt and reports the figures.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from llm_deeper.convert.mlx_runtime import mlx_status

MLX_OK, MLX_REASON = mlx_status()
pytestmark = pytest.mark.skipif(not MLX_OK, reason=MLX_REASON)


def seeded_adapter(base_dir: Path, out: Path, seed: int, size: float) -> Path:
    """A PEFT LoRA adapter on q/v with seeded A and B (B = 0 would make it a no-op)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * size)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from llm_deeper.data.toolcalls import write_tool_dataset
    from llm_deeper.models.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("mlx-stage")
    model = save_tiny_model(root / "tiny-llama", "llama", context=4096)  # byte-level tokens: a tool prompt is ~1,000 of them
    _, test = write_tool_dataset(root / "data", n_train=1, n_test=3, seed=0, distractors=0, mix={"call": 1.0})
    return model, test, seeded_adapter(model, root / "adapter", seed=0, size=0.3), seeded_adapter(model, root / "other", seed=1, size=0.3)


def test_stage_converts_compares_every_position_on_the_shortest_tool_prompt(tiny, tmp_path, one_torch_thread):
    from llm_deeper.chat_format import prompt_ids
    from llm_deeper.data.sft import read_jsonl
    from llm_deeper.finetune.tool_probe import prompt_messages
    from llm_deeper.models.loaders import load_tokenizer
    from llm_deeper.speedrun.core import Context

    model, test, adapter, _ = tiny
    stage = importlib.import_module("llm_deeper.speedrun.stages.55_mlx_adapter")
    ctx = Context(quick=False, model=str(model), run_dir=tmp_path, state={"adapter_dir": adapter, "tool_test_data": test}, log=lambda _: None)
    result = stage.run(ctx)
    tokenizer = load_tokenizer(str(model))
    lengths = [len(prompt_ids(tokenizer, prompt_messages(e), e.tools)) for e in read_jsonl(test)]
    metrics = result.metrics
    assert result.ok, result.headline
    assert (tmp_path / "adapter-mlx" / "adapters.safetensors").is_file()
    assert metrics["prompt tokens"] == min(lengths) < max(lengths)
    assert metrics["positions compared"] == metrics["prompt tokens"] + metrics["greedy tokens"] - 1
    assert metrics["same greedy tokens"] is True and float(metrics["max |Δlogit| mlx-lm vs PEFT, with adapter"]) < 1e-4
    assert float(metrics["max |Δlogit| the adapter causes"]) > 1e-2


def test_a_different_adapter_is_caught_by_logits_and_greedy_picks(tiny, tmp_path, one_torch_thread):
    from llm_deeper.convert.mlx_parity import compare_with_peft
    from llm_deeper.convert.peft_to_mlx import peft_to_mlx

    model, _, adapter, other = tiny
    wrong = peft_to_mlx(other, tmp_path / "wrong").folder  # mlx-lm runs another adapter than PEFT
    parity = compare_with_peft(str(model), adapter, wrong, list(range(40, 90)), max_new_tokens=12)
    assert parity.max_logit_diff > 1e-2
    assert len(parity.peft_ids) == 12 and not parity.same_greedy
    miss = len(parity.mlx_ids) - 1  # mlx-lm's picks end at the first one that differs from PEFT's
    assert parity.mlx_ids[:miss] == parity.peft_ids[:miss] and parity.mlx_ids[miss] != parity.peft_ids[miss]
