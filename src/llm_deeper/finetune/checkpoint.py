"""Checkpoints a run can resume from: trainable weights, optimizer, schedule, data position, RNG.

A checkpoint is `OUTPUT/checkpoint-STEP/state.pt`. For LoRA it holds only the
adapter weights (megabytes); for a full fine-tune, every weight. Only the
newest `KEEP` checkpoints stay on disk.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

KEEP = 1  # checkpoints kept per output folder (a full fine-tune's is ~3× the model size with Adam's moments)
PATTERN = re.compile(r"checkpoint-(\d+)$")


def checkpoints(output: Path) -> list[Path]:
    """Checkpoint folders in step order."""
    if not output.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output.iterdir() if (m := PATTERN.match(p.name)) and (p / "state.pt").is_file()]
    return [p for _, p in sorted(found)]


def latest(output: Path) -> Path | None:
    found = checkpoints(output)
    return found[-1] if found else None


def save(output: Path, step: int, model, optimizer, scheduler, progress: dict) -> Path:
    """Write checkpoint-STEP (atomically: a half-written one is never picked up), then prune old ones."""
    import torch

    folder = output / f"checkpoint-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    trainable = {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad}
    state = {
        "model": trainable,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": progress,  # step, epoch, batches consumed in the epoch, log history
        "rng": torch.get_rng_state(),
    }
    tmp = folder / "state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "state.pt")
    for old in checkpoints(output)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def load(folder: Path, model, optimizer, scheduler) -> dict:
    """Restore a checkpoint into a freshly built model/optimizer/scheduler; returns the progress dict."""
    import torch

    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    missing = [name for name in state["model"] if name not in params]
    if missing:
        from ..errors import UserError

        raise UserError(f"checkpoint {folder} does not fit this model ({len(missing)} unknown weights, e.g. {missing[0]}); resume with the same --model and --method")
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state["progress"]
