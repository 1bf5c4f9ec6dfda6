"""TinyGPT's checkpoint: everything needed to continue *bit-exactly*.

Weights, optimizer moments, the step, the batch generator's state and torch's
global RNG (dropout), the losses so far, the tokenizer and both configs, in
one `checkpoint.pt`. Written and read through `train/checkpointing.py` (atomic,
checksummed, shared with fine-tuning).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..checkpointing import load_verified, save_atomic

FORMAT = "llm-deeper-tinygpt"  # marks our checkpoints among other .pt files
VERSION = 2  # bump when the layout changes (2: a content checksum inside)
# Settings that must match for a resumed run to continue the same run.
RESUME_KEYS = ("batch_size", "grad_accum", "seed", "sharding")
FIX = "delete it and train again (or resume from another run folder)"


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write `payload` (plus format marker) to `path` atomically, with its checksum."""
    return save_atomic(path, {"format": FORMAT, "version": VERSION, **payload})


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint; a missing, truncated, corrupted or foreign file is a `UserError`."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}: train first (`llm-deeper tinygpt train --out DIR`) or pass the run folder")
    data = load_verified(path, "TinyGPT checkpoint", FIX)
    if data.get("format") != FORMAT:
        raise UserError(f"{path} is not a TinyGPT checkpoint (written by `llm-deeper tinygpt train`)")
    if data.get("version") != VERSION:
        raise UserError(f"{path} is a version {data.get('version')} checkpoint; this llm-deeper reads version {VERSION}: train again")
    data["path"] = str(path)
    return data


def check_resumable(ckpt: dict, model_config: dict, train_config: dict, tokenizer: dict, data_fingerprint: str, world_size: int) -> None:
    """Refuse to resume a checkpoint from a different model, data or batch layout."""
    problems = []
    for key, want in model_config.items():
        have = ckpt["model_config"].get(key)
        if have != want:
            problems.append(f"model {key}: checkpoint {have!r}, now {want!r}")
    for key in RESUME_KEYS:
        have = ckpt["train_config"].get(key, "ddp" if key == "sharding" else None)  # checkpoints from before FSDP were DDP's
        if have != train_config.get(key):
            problems.append(f"{key}: checkpoint {have!r}, now {train_config.get(key)!r}")
    if ckpt.get("world_size") != world_size:
        problems.append(f"processes: checkpoint {ckpt.get('world_size')}, now {world_size}")
    if ckpt.get("tokenizer") != tokenizer:
        problems.append("the tokenizer differs (another corpus, kind or vocab size)")
    if ckpt.get("data_fingerprint") != data_fingerprint:
        problems.append("the training text differs")
    if problems:
        raise UserError(f"cannot resume from {ckpt['path']}: " + "; ".join(problems) + ". Use the same settings, or start a new run without --resume")


def model_from_checkpoint(path: str | Path):
    """(TinyGPT in eval mode, tokenizer, checkpoint dict) from a checkpoint file or run folder."""
    from ...scratch.tinygpt import TinyGPT, TinyGPTConfig
    from .text import tokenizer_from_dict

    ckpt = load_checkpoint(path)
    try:
        model = TinyGPT(TinyGPTConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"checkpoint {ckpt['path']} does not match this TinyGPT ({str(exc).splitlines()[0]}): train again") from exc
    return model.eval(), tokenizer_from_dict(ckpt["tokenizer"]), ckpt
