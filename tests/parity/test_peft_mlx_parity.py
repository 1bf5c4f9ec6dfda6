"""PEFT ⇄ mlx-lm adapter conversion on a tiny random Llama: same ΔW, same files back, same logits in mlx-lm.

The converter itself needs no MLX (torch + safetensors); the tests that run
mlx-lm skip with the reason where `import mlx` fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llm_deeper.convert.lora_shapes import ConversionError
from llm_deeper.convert.mlx_runtime import mlx_status
from llm_deeper.convert.mlx_to_peft import mlx_to_peft
from llm_deeper.convert.peft_to_mlx import peft_to_mlx

MLX_OK, MLX_REASON = mlx_status()
needs_mlx = pytest.mark.skipif(not MLX_OK, reason=MLX_REASON)
IDS = list(range(3, 40))

# Adapters the converter must express exactly (name -> PEFT LoraConfig arguments).
VARIANTS = {
    "plain": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    # rsLoRA (alpha/√r), per-module ranks and alphas (scale folded into B), MLP layers, one layer of two covered
    "rslora-patterns-one-layer": dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "v_proj", "down_proj", "up_proj"],
                                      rank_pattern={"down_proj": 2, "model.layers.1.self_attn.v_proj": 3}, alpha_pattern={"up_proj": 5},
                                      layers_to_transform=[1]),
    # a module in layer 0 only and another in layer 1 only: mlx-lm gets zeros for the uncovered pairs
    "uneven-layers": dict(r=2, lora_alpha=4, target_modules=["model.layers.0.self_attn.q_proj", "model.layers.1.mlp.gate_proj"]),
}


def make_peft_adapter(base_dir: Path, out: Path, seed: int = 0, **lora) -> Path:
    """A PEFT adapter with random nonzero A and B (B = 0 would make ΔW = 0 and prove nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(lora_dropout=0.0, **lora))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    model.save_pretrained(out)
    return out


def peft_model(base_dir: Path, adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter).eval()


def peft_logits(base_dir: Path, adapter: Path) -> tuple[np.ndarray, np.ndarray]:
    """(logits with the adapter, logits of the base) on IDS."""
    model = peft_model(base_dir, adapter)
    with torch.no_grad():
        tuned = model(torch.tensor([IDS])).logits[0].numpy()
        with model.disable_adapter():
            plain = model(torch.tensor([IDS])).logits[0].numpy()
    return tuned, plain


def mlx_delta(folder: Path) -> dict[str, np.ndarray]:
    """ΔW (out, in) of each module of an mlx-lm adapter, as mlx-lm's fuse computes it: scale · bᵀ aᵀ."""
    from safetensors.numpy import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    scale = config["lora_parameters"]["scale"]
    tensors = load_file(str(folder / "adapters.safetensors"))
    names = {k.rsplit(".", 1)[0] for k in tensors}
    return {n: scale * (tensors[f"{n}.lora_b"].astype(np.float64).T @ tensors[f"{n}.lora_a"].astype(np.float64).T) for n in names}


@pytest.fixture(scope="module")
def adapters(tiny_llama_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("peft-adapters")
    return {name: make_peft_adapter(tiny_llama_dir, root / name, seed=i, **lora) for i, (name, lora) in enumerate(VARIANTS.items())}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_delta_w_equals_peft(variant, adapters, tiny_llama_dir, tmp_path, one_torch_thread):
    from peft.tuners.lora import LoraLayer

    result = peft_to_mlx(adapters[variant], tmp_path / "mlx")
    ours = mlx_delta(result.folder)
    model = peft_model(tiny_llama_dir, adapters[variant])
    theirs = {name.removeprefix("base_model.model."): m.get_delta_weight("default").double().numpy()
              for name, m in model.named_modules() if isinstance(m, LoraLayer) and "default" in m.lora_A}
    assert theirs and set(theirs) <= set(ours)
    worst = max(float(np.abs(ours[n] - theirs[n]).max()) for n in theirs)
    assert worst < 1e-6, f"max |ΔW difference| {worst:.2e}"
    extra = set(ours) - set(theirs)  # modules mlx-lm will create that the adapter does not cover
    assert sorted(extra) == sorted(result.padded)
    assert all(not ours[n].any() for n in extra)
    if variant == "rslora-patterns-one-layer":
        assert result.num_layers == 1 and result.rank == 4 and result.folded  # one rank, one scale in mlx-lm
    if variant == "uneven-layers":
        assert result.num_layers == 2 and len(result.padded) == 2


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_round_trip_gives_back_identical_files(variant, adapters, tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file

    peft_to_mlx(adapters[variant], tmp_path / "mlx")
    back, _ = mlx_to_peft(tmp_path / "mlx", tmp_path / "back", model=str(tiny_llama_dir))
    before, after = load_file(str(adapters[variant] / "adapter_model.safetensors")), load_file(str(back / "adapter_model.safetensors"))
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    assert json.loads((back / "adapter_config.json").read_text()) == json.loads((adapters[variant] / "adapter_config.json").read_text())


@needs_mlx
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_mlx_lm_logits_equal_peft(variant, adapters, tiny_llama_dir, tmp_path, one_torch_thread):
    from llm_deeper.convert.mlx_runtime import load_mlx, mlx_logits

    folder = peft_to_mlx(adapters[variant], tmp_path / "mlx").folder
    model, _ = load_mlx(tiny_llama_dir, folder)
    ours = mlx_logits(model, IDS)
    tuned, plain = peft_logits(tiny_llama_dir, adapters[variant])
    assert np.abs(tuned - plain).max() > 1e-2  # the adapter really changes the output
    assert np.abs(ours - tuned).max() < 1e-5


@needs_mlx
def test_adapter_made_by_mlx_lm_converts_to_peft(tiny_llama_dir, tmp_path, one_torch_thread):
    """An adapter laid out by mlx-lm's own LoRA code (last layer only, random B) → PEFT with equal logits."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from llm_deeper.convert.mlx_runtime import load_mlx, mlx_logits

    model, _ = load(str(tiny_llama_dir))
    model.freeze()  # as mlx_lm.lora does: only the LoRA factors stay trainable
    params = {"rank": 4, "scale": 3.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "mlp.down_proj"]}
    linear_to_lora_layers(model, 1, params)
    mx.random.seed(0)
    weights = {k: mx.random.normal(v.shape) * 0.1 for k, v in tree_flatten(model.trainable_parameters())}
    folder = tmp_path / "mlx-native"
    folder.mkdir()
    mx.save_safetensors(str(folder / "adapters.safetensors"), weights)
    (folder / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora", "num_layers": 1, "lora_parameters": params}))

    back, config = mlx_to_peft(folder, tmp_path / "peft", model=str(tiny_llama_dir))
    assert config["r"] == 4 and config["lora_alpha"] == 12.0 and config["layers_to_transform"] == [1]
    assert sorted(config["target_modules"]) == ["down_proj", "q_proj"]
    tuned, plain = peft_logits(tiny_llama_dir, back)
    ours = mlx_logits(load_mlx(tiny_llama_dir, folder)[0], IDS)
    assert np.abs(tuned - plain).max() > 1e-2
    assert np.abs(ours - tuned).max() < 1e-5


# --- refusals: one line, nothing written -------------------------------------------------------

REFUSED = {
    "dora": (dict(r=2, lora_alpha=4, target_modules=["q_proj"], use_dora=True), "DoRA"),
    "modules-to-save": (dict(r=2, lora_alpha=4, target_modules=["q_proj"], modules_to_save=["lm_head"]), "modules_to_save"),
    "embedding": (dict(r=2, lora_alpha=4, target_modules=["embed_tokens", "q_proj"]), "embedding or LM head"),
    "lm-head": (dict(r=2, lora_alpha=4, target_modules=["lm_head"]), "embedding or LM head"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refuses_what_mlx_cannot_express(case, tiny_llama_dir, tmp_path):
    lora, words = REFUSED[case]
    adapter = make_peft_adapter(tiny_llama_dir, tmp_path / "peft", **lora)
    with pytest.raises(ConversionError, match=words) as info:
        peft_to_mlx(adapter, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["peft"]  # no staging folder left behind


def test_refuses_a_base_model_of_other_shapes(adapters, tmp_path):
    from llm_deeper.models.tiny import save_tiny_model

    other = save_tiny_model(tmp_path / "other", "llama", hidden=32, intermediate=64)
    with pytest.raises(ConversionError, match="trained on another model"):
        peft_to_mlx(adapters["plain"], tmp_path / "out", model=str(other))
    assert not (tmp_path / "out").exists()
    folder = peft_to_mlx(adapters["plain"], tmp_path / "mlx").folder
    with pytest.raises(ConversionError, match="trained on another model"):
        mlx_to_peft(folder, tmp_path / "back", model=str(other))
    assert not (tmp_path / "back").exists()


def test_refuses_mlx_dora_and_full_fine_tunes(adapters, tmp_path, tiny_llama_dir):
    folder = peft_to_mlx(adapters["plain"], tmp_path / "mlx").folder
    config = json.loads((folder / "adapter_config.json").read_text())
    for kind, words in (("dora", "DoRA"), ("full", "not a LoRA adapter")):
        (folder / "adapter_config.json").write_text(json.dumps({**config, "fine_tune_type": kind}))
        with pytest.raises(ConversionError, match=words):
            mlx_to_peft(folder, tmp_path / "back", model=str(tiny_llama_dir))
    assert not (tmp_path / "back").exists()


def test_existing_output_needs_force(adapters, tmp_path):
    out = tmp_path / "mlx"
    peft_to_mlx(adapters["plain"], out)
    with pytest.raises(ConversionError, match="--force"):
        peft_to_mlx(adapters["plain"], out)
    assert peft_to_mlx(adapters["plain"], out, force=True).folder == out


def test_cli_converts_both_ways_and_refuses_in_one_line(adapters, tiny_llama_dir, tmp_path):
    from conftest import run_cli

    done = run_cli("convert", "peft-to-mlx", str(adapters["plain"]), str(tmp_path / "mlx"))
    assert done.returncode == 0, done.stderr
    assert "mlx-lm adapter" in done.stdout and (tmp_path / "mlx" / "adapters.safetensors").is_file()
    back = run_cli("convert", "mlx-to-peft", str(tmp_path / "mlx"), str(tmp_path / "peft"), "--model", str(tiny_llama_dir))
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "peft" / "adapter_model.safetensors").is_file()
    bad = run_cli("convert", "peft-to-mlx", str(tmp_path / "nothing"), str(tmp_path / "x"))
    assert bad.returncode == 2 and "not a PEFT adapter folder" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()
