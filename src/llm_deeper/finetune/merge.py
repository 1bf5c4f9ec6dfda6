"""Load a PEFT adapter onto its base model, and merge it into a standalone HF folder."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def check_adapter_folder(adapter: Path) -> Path:
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json); train one with `llm-deeper finetune --method lora`")
    return adapter


def load_with_adapter(model: str, adapter: str | Path, dtype: str = "float32"):
    """(PeftModel, tokenizer): the base model with the adapter applied (not merged)."""
    from peft import PeftModel

    from ..models.loaders import load_model

    adapter = check_adapter_folder(Path(adapter))
    loaded = load_model(model, dtype=dtype)
    import warnings

    try:
        with warnings.catch_warnings():  # PEFT calls a transformers method transformers has renamed; not our concern
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(loaded.model, adapter)
    except (ValueError, RuntimeError, KeyError) as exc:
        raise UserError(f"adapter {adapter} does not fit {model}: {str(exc).splitlines()[0]}") from exc
    return peft_model.eval(), loaded.tokenizer


def merge_adapter(model: str, adapter: str | Path, output: str | Path, dtype: str = "float32") -> Path:
    """Fold the adapter's ΔW into the base weights and save a plain HF folder any loader accepts."""
    from ..models.embedded import write_portable_config

    peft_model, tokenizer = load_with_adapter(model, adapter, dtype)
    merged = peft_model.merge_and_unload()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    write_portable_config(output)
    return output
