"""Read a PEFT LoRA adapter folder into plain (A, B, scale) per projection.

The engine applies adapters itself, per request row: in one decode batch, row
0 may use adapter "sql" and row 1 the base model (the idea behind multi-LoRA
servers such as S-LoRA and vLLM's `--lora-modules`). The base weights are
never modified, so any number of adapters share one copy of the model.
A test checks the result against PEFT's own `PeftModel` logits.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

# Projections the engine knows how to adapt (Llama naming).
SUPPORTED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


@dataclass
class LoraAdapter:
    """One adapter: low-rank factors for some projections of some layers."""

    name: str  # the model name clients use to pick it
    folder: Path  # where it was read from
    rank: int  # r
    # (layer, projection) -> (A [r, in], B [out, r], scale)
    weights: dict[tuple[int, str], tuple] = field(default_factory=dict)


def load_lora(name: str, folder: str | Path, dtype=None) -> LoraAdapter:
    """Load a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)."""
    from safetensors.torch import load_file

    folder = Path(folder).expanduser()
    config_path, weights_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise UserError(f"{folder} is not a PEFT LoRA adapter folder: it needs adapter_config.json and adapter_model.safetensors")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"adapter {folder} is {config.get('peft_type')}, not LORA")
    for flag in ("use_dora", "use_qalora", "fan_in_fan_out"):
        if config.get(flag):
            raise UserError(f"adapter {folder} uses {flag}, which the engine does not apply; merge it first (`llm-deeper merge`)")
    if config.get("modules_to_save") or config.get("trainable_token_indices"):
        raise UserError(f"adapter {folder} also trains whole modules or tokens; merge it first (`llm-deeper merge`)")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    rank_pattern, alpha_pattern = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    tensors = load_file(str(weights_path))
    parts: dict[tuple[int, str], dict[str, object]] = {}
    for key, tensor in tensors.items():
        match = KEY.search(key)
        if not match:
            raise UserError(f"adapter {folder} has a weight the engine cannot place: {key}")
        layer, proj, which = int(match.group(1)), match.group(2), match.group(3)
        if proj not in SUPPORTED:
            raise UserError(f"adapter {folder} adapts {proj}; the engine supports {', '.join(SUPPORTED)}")
        parts.setdefault((layer, proj), {})[which] = tensor if dtype is None else tensor.to(dtype)
    adapter = LoraAdapter(name=name, folder=folder, rank=rank)
    for (layer, proj), pair in parts.items():
        r = int(_pattern_value(rank_pattern, layer, proj, rank))
        a = float(_pattern_value(alpha_pattern, layer, proj, alpha))
        scale = a / math.sqrt(r) if config.get("use_rslora") else a / r
        adapter.weights[(layer, proj)] = (pair["A"], pair["B"], scale)
    return adapter


def _pattern_value(pattern: dict, layer: int, proj: str, default):
    """PEFT's per-module overrides: a key matches a module name or its dotted suffix (as PEFT does)."""
    parent = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    module = f"model.layers.{layer}.{parent}.{proj}"
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default
