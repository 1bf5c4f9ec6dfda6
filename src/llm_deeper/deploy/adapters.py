"""Read what servers care about in a PEFT adapter folder and a base model folder, without loading weights.

The safetensors header is plain JSON after an 8-byte length, so module names
and dtypes come from a few kilobytes of the file, not from torch.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


def safetensors_header(path: Path) -> dict:
    """The tensor table of a .safetensors file: name -> {dtype, shape, data_offsets}."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100_000_000:
            raise UserError(f"{path} does not look like a safetensors file (header of {length} bytes)")
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return header


@dataclass
class AdapterInfo:
    """The facts about one PEFT adapter that decide which servers accept it."""

    folder: Path  # the adapter folder
    config: dict  # adapter_config.json
    rank: int  # the largest rank (r, or a larger one from rank_pattern)
    targets: list[str] | str  # target_modules as written (a list, or one regex string)
    modules_to_save: list[str]  # whole modules trained and saved beside the LoRA factors
    dtypes: set[str]  # safetensors dtypes of the adapter weights
    adapted: set[str]  # module names that carry lora_A/lora_B weights (leaf names, e.g. q_proj)
    base: str | None  # base_model_name_or_path as written


def read_adapter(folder: str | Path) -> AdapterInfo:
    folder = Path(folder).expanduser()
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(f"{folder} is not a PEFT adapter folder: adapter_config.json is missing (train one with `llm-deeper finetune --lora`)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{config_path} is not valid JSON ({exc.msg} at line {exc.lineno}): re-save the adapter") from None
    weights = folder / "adapter_model.safetensors"
    dtypes: set[str] = set()
    adapted: set[str] = set()
    if weights.is_file():
        for name, entry in safetensors_header(weights).items():
            dtypes.add(entry["dtype"])
            found = re.search(r"\.([^.]+)\.lora_[AB]\b", name)
            if found:
                adapted.add(found.group(1))
    ranks = [int(config.get("r", 8))] + [int(v) for v in (config.get("rank_pattern") or {}).values()]
    return AdapterInfo(
        folder=folder, config=config, rank=max(ranks), targets=config.get("target_modules") or [],
        modules_to_save=list(config.get("modules_to_save") or []), dtypes=dtypes, adapted=adapted,
        base=config.get("base_model_name_or_path"),
    )


def base_modules(folder: Path) -> set[str]:
    """Dotted module names of a base model folder's weights (`model.layers.0.self_attn.q_proj`, ...)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise UserError(f"{folder} has no .safetensors weights to check adapter targets against")
    names: set[str] = set()
    for path in files:
        for key in safetensors_header(path):
            names.add(key.rsplit(".", 1)[0] if key.endswith((".weight", ".bias")) else key)
    return names


def matching_targets(targets: list[str] | str, modules: set[str], layers: list[int] | int | None = None) -> tuple[set[str], list[str]]:
    """(base modules the adapter's target_modules select, targets that select nothing), as PEFT matches them;
    `layers` is the config's layers_to_transform (only those decoder layers are adapted)."""
    if layers is not None:
        keep = {layers} if isinstance(layers, int) else set(layers)
        modules = {m for m in modules if (found := re.search(r"\.layers\.(\d+)\.", m)) and int(found.group(1)) in keep}
    if isinstance(targets, str):
        if targets == "all-linear":
            return {m for m in modules if "proj" in m}, []
        chosen = {m for m in modules if re.fullmatch(targets, m)}
        return chosen, ([] if chosen else [targets])
    chosen, missing = set(), []
    for target in targets:
        hits = {m for m in modules if m == target or m.endswith("." + target)}
        chosen |= hits
        if not hits:
            missing.append(target)
    return chosen, missing


def adapter_ranks(loras: dict[str, str]) -> list[int]:
    return [read_adapter(folder).rank for folder in loras.values()]
