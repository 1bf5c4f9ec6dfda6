"""What both adapter formats share: low-rank pairs per module, and the base model's shapes.

A LoRA adapter, whatever its file format, is a set of modules (a layer index
and a path inside the layer, e.g. (3, "self_attn.q_proj")), each with two
factors and a scale: ΔW = scale · B @ A, with A (r, in) and B (out, r) in
PEFT's orientation. The converters read one format into `LoraModule`s and write
the other; `BaseShapes` lets them refuse an adapter that does not fit the base
model before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

# A module inside a decoder layer, as both formats name it: model.layers.<i>.<path>
LAYER_MODULE = re.compile(r"^model\.layers\.(\d+)\.([\w.]+)$")


class ConversionError(UserError):
    """An adapter the converter cannot express in the other format, or that does not fit the base model."""


@dataclass
class LoraModule:
    """One adapted linear layer, in PEFT's orientation (fp32 or the file's dtype)."""

    layer: int  # decoder layer index
    path: str  # module path inside the layer, e.g. "self_attn.q_proj"
    a: object  # torch tensor (r, in)
    b: object  # torch tensor (out, r)
    scale: float  # ΔW = scale · b @ a

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])

    @property
    def name(self) -> str:
        """The module's name in the base model (what PEFT's patterns match against)."""
        return f"model.layers.{self.layer}.{self.path}"

    def delta(self):
        """ΔW (out, in) in float64, for parity checks."""
        return self.scale * (self.b.double() @ self.a.double())


@dataclass
class BaseShapes:
    """Shapes of the base model's linear layers, read from its safetensors headers (no weights loaded)."""

    folder: Path  # the base model's HF folder
    layers: int  # number of decoder layers
    weights: dict[str, tuple[int, ...]]  # weight name -> shape, e.g. "model.layers.0.self_attn.q_proj.weight" -> (out, in)

    def linear(self, layer: int, path: str) -> tuple[int, int] | None:
        """(out, in) of a linear layer inside a decoder layer, or None if the base has no such weight."""
        shape = self.weights.get(f"model.layers.{layer}.{path}.weight")
        return (int(shape[0]), int(shape[1])) if shape is not None and len(shape) == 2 else None

    def check(self, module: LoraModule, source: str) -> None:
        """Refuse a module whose layer or shapes are not the base model's."""
        if module.layer >= self.layers:
            raise ConversionError(f"{source} adapts layer {module.layer}, but the base model {self.folder} has {self.layers} layers: pass the model the adapter was trained on (--model)")
        shape = self.linear(module.layer, module.path)
        if shape is None:
            raise ConversionError(f"{source} adapts {module.name}, which the base model {self.folder} does not have as a linear layer: pass the model the adapter was trained on (--model)")
        out_dim, in_dim = shape
        if tuple(module.a.shape[1:]) != (in_dim,) or tuple(module.b.shape) != (out_dim, module.rank):
            raise ConversionError(
                f"{source}: {module.name} has A {tuple(module.a.shape)} and B {tuple(module.b.shape)}, but the base weight is "
                f"{out_dim}x{in_dim} (A must be r x {in_dim}, B {out_dim} x r): the adapter was trained on another model; pass that one with --model"
            )


def base_folder(model: str) -> Path:
    """An HF folder for `model` (registry names are prepared on first use); GGUF files are refused."""
    from ..models.loaders import model_folder
    from ..models.registry import resolve

    folder = model_folder(resolve(model))
    if folder is None:
        raise ConversionError(f"{model} is a GGUF file; the converter needs an HF model folder or a registry name (prepare one with `llm-deeper models prepare`)")
    return folder


def read_base_shapes(model: str) -> BaseShapes:
    """Layer count and linear weight shapes of a base model, from config.json and the safetensors headers."""
    from safetensors import safe_open

    folder = base_folder(model)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    layers = config.get("num_hidden_layers") or (config.get("text_config") or {}).get("num_hidden_layers")
    files = sorted(folder.glob("*.safetensors"))
    if not layers or not files:
        raise ConversionError(f"{folder} has no num_hidden_layers in config.json or no .safetensors weights: pass a Llama-style HF model folder")
    weights: dict[str, tuple[int, ...]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():
                weights[name] = tuple(handle.get_slice(name).get_shape())
    return BaseShapes(folder=folder, layers=int(layers), weights=weights)


def pattern_value(pattern: dict, module_name: str, default):
    """PEFT's per-module override (rank_pattern, alpha_pattern): a key matches the module name or a dotted suffix of it."""
    for key, value in (pattern or {}).items():
        if re.match(rf"(.*\.)?({key})$", module_name):
            return value
    return default


def write_atomically(out: Path, files: dict[str, object], force: bool) -> Path:
    """Write files (name -> bytes or str) into `out` via a temporary sibling folder, so a failure leaves nothing half-written."""
    import shutil
    import tempfile

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ConversionError(f"{out} already exists and is not empty: choose another folder or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        for name, content in files.items():
            target = staging / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
