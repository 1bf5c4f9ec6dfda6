"""PEFT LoRA adapter → mlx-lm adapter folder (mlx-lm cannot read PEFT's format itself).

The two formats hold the same numbers in different places:

| | PEFT | mlx-lm |
|---|---|---|
| files | adapter_config.json + adapter_model.safetensors | adapter_config.json + adapters.safetensors |
| names | base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight | model.layers.3.self_attn.q_proj.lora_a |
| A | lora_A (r, in) | lora_a (in, r) = Aᵀ |
| B | lora_B (out, r) | lora_b (r, out) = Bᵀ |
| scale | alpha / r (alpha / √r with rsLoRA), per module with rank_pattern / alpha_pattern | one `scale` in lora_parameters |
| which layers | any set (target_modules, layers_to_transform) | the last `num_layers` layers, the same `keys` in each |

mlx-lm has one rank and one scale for the whole adapter, and adapts the same
modules in each of its last `num_layers` layers. So: a module with a smaller
rank is padded with zero columns/rows (adds exactly 0 to ΔW), a module whose
scale differs has the ratio folded into its B, and a module mlx-lm will create
but the adapter does not cover gets zero factors (ΔW = 0). The PEFT config and
what was padded or folded are kept in the MLX config under "llm_deeper" (and
the folded B tensors beside it), so `mlx_to_peft` gives back the original
adapter bit for bit.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .lora_shapes import LAYER_MODULE, BaseShapes, ConversionError, LoraModule, pattern_value, read_base_shapes, write_atomically

PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
MLX_CONFIG, MLX_WEIGHTS = "adapter_config.json", "adapters.safetensors"
# B of the modules whose scale was folded: B·f rounded to fp32 does not always divide back to the same bits.
UNFOLDED = "llm_deeper_unfolded_b.safetensors"
PEFT_PREFIX = "base_model.model."  # PeftModel wraps the base model twice


@dataclass
class MlxConversion:
    """What `peft_to_mlx` wrote."""

    folder: Path  # the mlx-lm adapter folder
    base: Path  # the base model's HF folder (pass it to mlx-lm as --model)
    num_layers: int  # mlx-lm adapts the last num_layers layers
    rank: int  # the one rank mlx-lm uses (the largest of the adapter's)
    scale: float  # the one scale mlx-lm uses
    keys: list[str]  # module paths adapted in each of those layers
    modules: int  # modules the PEFT adapter trains
    padded: list[str] = field(default_factory=list)  # modules mlx-lm creates that the adapter does not cover (zero factors)
    folded: dict[str, float] = field(default_factory=dict)  # module -> its scale / the global scale, folded into B


def read_peft_config(folder: Path) -> dict:
    """adapter_config.json of a PEFT LoRA adapter, refusing what mlx-lm's LoRA cannot express."""
    folder = Path(folder)
    if not (folder / PEFT_CONFIG).is_file() or not (folder / PEFT_WEIGHTS).is_file():
        raise ConversionError(f"{folder} is not a PEFT adapter folder: it needs {PEFT_CONFIG} and {PEFT_WEIGHTS} (train one with `llm-deeper finetune --method lora`)")
    config = json.loads((folder / PEFT_CONFIG).read_text(encoding="utf-8"))
    source = f"adapter {folder}"
    if config.get("peft_type", "LORA") != "LORA":
        raise ConversionError(f"{source} is {config.get('peft_type')}, not LoRA: only LoRA adapters convert to mlx-lm")
    refusals = {
        "use_dora": "uses DoRA (a learned magnitude per output); convert a plain LoRA adapter or merge this one (`llm-deeper merge`)",
        "modules_to_save": "also trains whole modules (modules_to_save), which an mlx-lm adapter cannot hold; merge it instead (`llm-deeper merge`)",
        "trainable_token_indices": "trains embedding rows (trainable_token_indices), which an mlx-lm adapter cannot hold; merge it instead (`llm-deeper merge`)",
        "fan_in_fan_out": "is for Conv1D layers (fan_in_fan_out, GPT-2 style); mlx-lm's LoRA adapts Linear layers only",
        "use_qalora": "is a QA-LoRA adapter (pooled inputs); mlx-lm's LoRA cannot express it",
        "layer_replication": "replicates layers (layer_replication); mlx-lm's LoRA cannot express it",
        "lora_bias": "trains a bias on B (lora_bias); mlx-lm's LoRA has no bias",
    }
    for key, why in refusals.items():
        if config.get(key):
            raise ConversionError(f"{source} {why}")
    return config


def read_peft(folder: Path) -> tuple[dict, list[LoraModule]]:
    """(config, modules) of a PEFT LoRA adapter, each module with its own rank and scale."""
    import math

    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_peft_config(folder)
    source = f"adapter {folder}"
    pairs: dict[str, dict[str, object]] = {}
    for key, tensor in load_file(str(folder / PEFT_WEIGHTS)).items():
        name = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
        if "lora_embedding" in name or "embed_tokens" in name or "lm_head" in name:
            raise ConversionError(f"{source} changes the embedding or LM head ({key}); mlx-lm adapters hold linear-layer deltas only: merge it instead (`llm-deeper merge`)")
        if "lora_magnitude_vector" in name:
            raise ConversionError(f"{source} uses DoRA ({key}); convert a plain LoRA adapter or merge this one (`llm-deeper merge`)")
        for which in ("A", "B"):
            suffix = f".lora_{which}.weight"
            if name.endswith(suffix):
                pairs.setdefault(name[: -len(suffix)], {})[which] = tensor
                break
        else:
            raise ConversionError(f"{source} has a weight that is not a LoRA factor: {key}")
    modules = []
    for name, pair in sorted(pairs.items()):
        match = LAYER_MODULE.match(name)
        if not match:
            raise ConversionError(f"{source} adapts {name}, outside the decoder layers; mlx-lm adapts model.layers.<i>.* only")
        if set(pair) != {"A", "B"}:
            raise ConversionError(f"{source} has lora_A without lora_B (or the reverse) for {name}: the file is incomplete")
        a, b = pair["A"], pair["B"]
        rank = int(a.shape[0])
        expected = int(pattern_value(config.get("rank_pattern"), name, config["r"]))
        if rank != expected or b.shape[1] != rank:
            raise ConversionError(f"{source}: {name} has rank {rank} in its weights but {expected} in adapter_config.json: the files do not belong together")
        alpha = float(pattern_value(config.get("alpha_pattern"), name, config["lora_alpha"]))
        scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        modules.append(LoraModule(layer=int(match.group(1)), path=match.group(2), a=a, b=b, scale=scale))
    if not modules:
        raise ConversionError(f"{source} holds no LoRA weights")
    return config, modules


def resolve_base(config: dict, model: str | None, folder: Path) -> BaseShapes:
    """The base model: --model, else the one the adapter names (base_model_name_or_path)."""
    from ..errors import ModelNotFoundError

    name = model or config.get("base_model_name_or_path")
    if not name:
        raise ConversionError(f"adapter {folder} does not name its base model: pass it with --model")
    try:
        return read_base_shapes(str(name))
    except ModelNotFoundError as exc:
        hint = "" if model else f" (the adapter names {name!r}; pass the base model with --model)"
        raise ConversionError(f"{exc}{hint}") from exc


def peft_to_mlx(adapter: str | Path, out: str | Path, model: str | None = None, force: bool = False) -> MlxConversion:
    """Convert a PEFT LoRA adapter folder to an mlx-lm adapter folder; nothing is written if it cannot be expressed."""
    import torch
    from safetensors.torch import save

    adapter = Path(adapter)
    config, modules = read_peft(adapter)
    shapes = resolve_base(config, model, adapter)
    for module in modules:
        shapes.check(module, f"adapter {adapter}")
    keys = sorted({m.path for m in modules})
    first = min(m.layer for m in modules)
    rank = max(m.rank for m in modules)
    scale = Counter(m.scale for m in modules).most_common(1)[0][0]  # the most common scale needs no folding
    by_name = {m.name: m for m in modules}
    tensors, padded, folded, originals = {}, [], {}, {}
    for layer in range(first, shapes.layers):
        for path in keys:
            name = f"model.layers.{layer}.{path}"
            module = by_name.get(name)
            shape = shapes.linear(layer, path)
            if shape is None:
                raise ConversionError(f"adapter {adapter} adapts {path} in some layers, but layer {layer} of {shapes.folder} has no such linear layer; mlx-lm adapts the same modules in every layer")
            out_dim, in_dim = shape
            dtype = modules[0].a.dtype if module is None else module.a.dtype
            lora_a = torch.zeros(in_dim, rank, dtype=dtype)
            lora_b = torch.zeros(rank, out_dim, dtype=dtype)
            if module is None:
                padded.append(name)
            else:
                b = module.b
                if module.scale != scale:  # one scale in mlx-lm: fold this module's ratio into B (in float64, then rounded once)
                    folded[name] = module.scale / scale
                    originals[name] = module.b.contiguous()
                    b = (b.double() * folded[name]).to(b.dtype)
                lora_a[:, : module.rank] = module.a.T
                lora_b[: module.rank, :] = b.T
            tensors[f"{name}.lora_a"] = lora_a.contiguous()
            tensors[f"{name}.lora_b"] = lora_b.contiguous()
    mlx_config = {
        "fine_tune_type": "lora",
        "num_layers": shapes.layers - first,
        "lora_parameters": {"rank": rank, "scale": scale, "dropout": float(config.get("lora_dropout") or 0.0), "keys": keys},
        "model": str(shapes.folder),
        # Ignored by mlx-lm; lets mlx_to_peft give back the original adapter exactly.
        "llm_deeper": {
            "source": "peft",
            "peft_config": config,
            "ranks": {m.name: m.rank for m in modules if m.rank != rank},
            "folded": folded,
            "padded": padded,
        },
    }
    files = {MLX_WEIGHTS: save(tensors, metadata={"format": "mlx"}), MLX_CONFIG: json.dumps(mlx_config, indent=2) + "\n"}
    if originals:  # mlx-lm reads only the two files above; this one makes the way back bit-exact
        files[UNFOLDED] = save(originals, metadata={"format": "pt"})
    folder = write_atomically(Path(out), files, force)
    return MlxConversion(folder=folder, base=shapes.folder, num_layers=mlx_config["num_layers"], rank=rank, scale=scale, keys=keys,
                         modules=len(modules), padded=padded, folded=folded)
