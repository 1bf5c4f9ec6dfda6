"""mlx-lm adapter folder → PEFT LoRA adapter (loads with `PeftModel.from_pretrained` and `llm-deeper serve --lora`).

An adapter trained by mlx-lm (`mlx_lm.lora`) has one rank and one scale; it
becomes a PEFT adapter with r = rank and lora_alpha = scale · r (PEFT's scale
is alpha / r), target_modules = the adapted layer names, and
layers_to_transform = the layers mlx-lm adapted (its last `num_layers`). An
adapter that `peft_to_mlx` wrote carries the original PEFT config, and the
padding and folding are undone, so PEFT → MLX → PEFT gives back the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

from .lora_shapes import LAYER_MODULE, ConversionError, LoraModule, read_base_shapes, write_atomically
from .peft_to_mlx import MLX_CONFIG, MLX_WEIGHTS, PEFT_CONFIG, PEFT_PREFIX, PEFT_WEIGHTS, UNFOLDED


def read_mlx(folder: Path) -> tuple[dict, list[LoraModule]]:
    """(config, modules) of an mlx-lm LoRA adapter, in PEFT's orientation (A (r, in), B (out, r))."""
    from safetensors.torch import load_file

    folder = Path(folder)
    source = f"mlx adapter {folder}"
    if not (folder / MLX_CONFIG).is_file() or not (folder / MLX_WEIGHTS).is_file():
        raise ConversionError(f"{folder} is not an mlx-lm adapter folder: it needs {MLX_CONFIG} and {MLX_WEIGHTS} (train one with `mlx_lm.lora --train`)")
    config = json.loads((folder / MLX_CONFIG).read_text(encoding="utf-8"))
    kind = config.get("fine_tune_type", "lora")
    if kind == "dora":
        raise ConversionError(f"{source} is DoRA (a learned magnitude per output); only LoRA converts: fuse it with `mlx_lm.fuse` instead")
    if kind != "lora":
        raise ConversionError(f"{source} is a {kind!r} fine-tune, not a LoRA adapter: fuse it with `mlx_lm.fuse` to get a model folder")
    params = config.get("lora_parameters") or {}
    if "rank" not in params or "scale" not in params or "num_layers" not in config:
        raise ConversionError(f"{source}: adapter_config.json lacks num_layers or lora_parameters.rank/scale, which mlx-lm writes")
    pairs: dict[str, dict[str, object]] = {}
    for key, tensor in load_file(str(folder / MLX_WEIGHTS)).items():
        name, _, leaf = key.rpartition(".")
        if leaf == "m":
            raise ConversionError(f"{source} has a DoRA magnitude ({key}); only LoRA converts")
        if leaf not in ("lora_a", "lora_b"):
            raise ConversionError(f"{source} has a weight that is not a LoRA factor: {key}")
        if not LAYER_MODULE.match(name):
            raise ConversionError(f"{source} adapts {name} (an embedding, the LM head or a module outside the decoder layers); a PEFT conversion holds linear layers inside model.layers only")
        pairs.setdefault(name, {})[leaf] = tensor
    modules = []
    for name, pair in sorted(pairs.items()):
        if set(pair) != {"lora_a", "lora_b"}:
            raise ConversionError(f"{source} has lora_a without lora_b (or the reverse) for {name}: the file is incomplete")
        match = LAYER_MODULE.match(name)
        a, b = pair["lora_a"].T.contiguous(), pair["lora_b"].T.contiguous()
        modules.append(LoraModule(layer=int(match.group(1)), path=match.group(2), a=a, b=b, scale=float(params["scale"])))
    if not modules:
        raise ConversionError(f"{source} holds no LoRA weights")
    return config, modules


def restore_peft(folder: Path, config: dict, modules: list[LoraModule]) -> tuple[dict, list[LoraModule]] | None:
    """Undo peft_to_mlx's padding and folding when the folder came from it (None otherwise)."""
    import torch
    from safetensors.torch import load_file

    record = config.get("llm_deeper") or {}
    if record.get("source") != "peft" or "peft_config" not in record:
        return None
    padded, ranks, folded = set(record.get("padded", [])), record.get("ranks", {}), record.get("folded", {})
    rank = int(config["lora_parameters"]["rank"])
    originals = load_file(str(folder / UNFOLDED)) if (folder / UNFOLDED).is_file() else {}
    restored = []
    for m in modules:
        if m.name in padded:
            if m.b.abs().max() > 0:  # trained further after conversion: the record no longer describes the weights
                return None
            continue
        r = int(ranks.get(m.name, rank))
        a, b = m.a[:r].contiguous(), m.b[:, :r].contiguous()
        if m.name in folded:
            kept = originals.get(m.name)
            refolded = None if kept is None else (kept.double() * folded[m.name]).to(b.dtype)
            # The kept B is the exact original as long as the weights are still the ones it was folded into.
            b = kept if refolded is not None and torch.equal(refolded, b) else (b.double() / folded[m.name]).to(b.dtype)
        restored.append(LoraModule(layer=m.layer, path=m.path, a=a, b=b, scale=m.scale))
    return record["peft_config"], restored


def peft_config_for(config: dict, modules: list[LoraModule], base: Path, layers: int) -> dict:
    """A PEFT LoraConfig (as PEFT writes it) for an adapter trained by mlx-lm."""
    from peft import LoraConfig

    params = config["lora_parameters"]
    rank, scale = int(params["rank"]), float(params["scale"])
    covered = sorted({m.layer for m in modules})
    lora = LoraConfig(
        r=rank, lora_alpha=scale * rank, lora_dropout=float(params.get("dropout") or 0.0), task_type="CAUSAL_LM",
        target_modules=sorted({m.path.rsplit(".", 1)[-1] for m in modules}),
        layers_to_transform=None if covered == list(range(layers)) else covered,
        base_model_name_or_path=str(base), inference_mode=True,
    )
    record = lora.to_dict()
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in record.items()}


def mlx_to_peft(adapter: str | Path, out: str | Path, model: str, force: bool = False) -> tuple[Path, dict]:
    """Convert an mlx-lm LoRA adapter folder to a PEFT adapter folder for base `model`; returns (folder, PEFT config)."""
    from safetensors.torch import save

    adapter = Path(adapter)
    config, modules = read_mlx(adapter)
    shapes = read_base_shapes(model)
    restored = restore_peft(adapter, config, modules)
    if restored is None:
        peft_config = peft_config_for(config, modules, shapes.folder, shapes.layers)
    else:
        peft_config, modules = restored
    for module in modules:
        shapes.check(module, f"mlx adapter {adapter}")
    tensors = {}
    for m in modules:
        tensors[f"{PEFT_PREFIX}{m.name}.lora_A.weight"] = m.a.contiguous()
        tensors[f"{PEFT_PREFIX}{m.name}.lora_B.weight"] = m.b.contiguous()
    files = {PEFT_WEIGHTS: save(tensors, metadata={"format": "pt"}), PEFT_CONFIG: json.dumps(peft_config, indent=2, sort_keys=True) + "\n"}
    return write_atomically(Path(out), files, force), peft_config
