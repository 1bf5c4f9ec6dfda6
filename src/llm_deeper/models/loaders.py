"""Load a resolved model as (transformers model, tokenizer).

One entry point, `load_model`, takes whatever `--model` accepts. Heavy imports
(torch, transformers) happen here, not at package import, so the CLI stays fast.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ModelNotFoundError
from .registry import ModelRef, resolve


@dataclass
class LoadedModel:
    """A model ready for inference, with where it came from."""

    model: Any  # transformers PreTrainedModel, in eval mode
    tokenizer: Any  # transformers tokenizer with a chat template when the model has one
    ref: ModelRef  # what the user asked for
    folder: Path | None  # HF folder the weights were read from (None for a direct GGUF load)
    seconds: float  # wall time of the load


def model_folder(ref: ModelRef, progress: Callable[[str], None] = lambda _: None) -> Path | None:
    """HF folder for a ref, converting an embedded model on first use."""
    if ref.kind == "registry":
        from .embedded import prepare

        assert ref.spec is not None
        return prepare(ref.spec, progress)
    if ref.kind == "hf":
        return ref.path
    return None


def quiet_transformers() -> None:
    """Hide transformers' own progress bars and notices; our commands show their own."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_model(value: str | ModelRef, dtype: str = "float32", progress: Callable[[str], None] = lambda _: None) -> LoadedModel:
    """Resolve and load a model; `dtype` is "float32", "bfloat16" or "float16"."""
    ref = value if isinstance(value, ModelRef) else resolve(value)
    start = time.perf_counter()
    folder = model_folder(ref, progress)
    if folder is None:
        assert ref.path is not None
        model, tokenizer = load_gguf(ref.path, dtype)
    else:
        model, tokenizer = load_hf_folder(folder, dtype)
    return LoadedModel(model=model, tokenizer=tokenizer, ref=ref, folder=folder, seconds=time.perf_counter() - start)


def torch_dtype(name: str):
    """Map a dtype name to torch, with an error that lists the choices."""
    import torch

    choices = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if name not in choices:
        raise ModelNotFoundError(f"unknown dtype {name!r}: use float32, bfloat16 or float16")
    return choices[name]


def load_hf_folder(folder: Path, dtype: str = "float32"):
    """Load weights and tokenizer from an HF folder, offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype(dtype), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelNotFoundError(f"could not load the model folder {folder}: {first_line(exc)}") from exc
    model.eval()
    return model, tokenizer


def load_gguf(path: Path, dtype: str = "float32"):
    """Load a GGUF through transformers (dequantized), ready to save or run.

    transformers marks a GGUF-loaded model as quantized; `save_pretrained`
    refuses it until that bookkeeping is cleared, although the weights are
    already plain tensors.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    try:
        # The GGUF dequantizer draws its own tqdm bar that no switch turns off.
        with contextlib.redirect_stderr(io.StringIO()), gguf_read_once():
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch_dtype(dtype), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelNotFoundError(f"could not read the GGUF {path}: {first_line(exc)}") from exc
    clear_quantizer_state(model)
    model.eval()
    return model, tokenizer


_GGUF_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def gguf_read_once():
    """While loading one GGUF through transformers, parse the file once and build gguf's tensor-name map once.

    transformers parses the GGUF's metadata (a 49,152-token vocabulary and its
    merges: ~3 s) three times per load (tokenizer, config, weights) and rebuilds
    gguf's tensor-name table for each of the model's ~400 modules (~6 s in all), so loading
    the default model took ~20 s on 2 cores; sharing one reader and one table
    brings it to ~10 s, with the same weights bit for bit. transformers looks both
    names up on the `gguf` module at each call, which is where they are swapped.
    """
    import functools

    import gguf

    with _GGUF_PATCH_LOCK:
        reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
        readers: dict = {}

        def shared_reader(path, mode="r"):
            key = (str(path), mode)
            if key not in readers:
                readers[key] = reader_class(path, mode)
            return readers[key]

        gguf.GGUFReader, gguf.get_tensor_name_map = shared_reader, functools.lru_cache(maxsize=None)(name_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = reader_class, name_map


def clear_quantizer_state(model) -> None:
    """Forget that weights came from a quantized file (they are dequantized now)."""
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:
            pass
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def first_line(exc: BaseException) -> str:
    """The first line of an exception message, for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def load_tokenizer(value: str | ModelRef):
    """Only the tokenizer of a model (fast: no weights are read)."""
    from transformers import AutoTokenizer

    ref = value if isinstance(value, ModelRef) else resolve(value)
    quiet_transformers()
    folder = model_folder(ref)
    if folder is None:
        assert ref.path is not None
        return AutoTokenizer.from_pretrained(ref.path.parent, gguf_file=ref.path.name, local_files_only=True)
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)
