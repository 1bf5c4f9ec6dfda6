"""Checkpoints a fine-tuning run resumes from: trainable weights, optimizer, progress, RNG.

A checkpoint is `OUTPUT/checkpoint-STEP/state.pt`, written by the shared
checkpoint manager (`train/checkpointing.py`: atomic, checksummed, the newest
`KEEP` kept). For LoRA it holds only the adapter weights (megabytes); for a
full fine-tune, every weight. The learning rate is a function of the step,
so no scheduler state is needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError
from ..train.checkpointing import StepCheckpoints

KEEP = 1  # checkpoints kept per output folder (a full fine-tune's is ~3× the model size with Adam's moments)
FORMAT = "llm-deeper-finetune"  # marks our checkpoints
VERSION = 3  # 2: checksummed, progress as a plain record, no scheduler state; 3: held-out losses as (step, loss)
FIX = "delete that checkpoint folder and resume from an earlier one, or start again without --resume"


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint, so a resumed run continues the same run."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # 0-based epoch in progress
    batch_in_epoch: int = 0  # optimizer steps done within this epoch
    train_losses: list[float] = field(default_factory=list)  # loss of every step so far
    eval_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out loss): before training (step 0), then after each epoch
    seconds: float = 0.0  # training time so far (evaluation and saving excluded)
    tokens: int = 0  # input tokens trained on so far, all processes


def manager(output: Path) -> StepCheckpoints:
    return StepCheckpoints(output, keep=KEEP)


def latest(output: Path) -> Path | None:
    return manager(output).latest()


def save(output: Path, progress: Progress, trainable: dict, optimizer_state: dict, rng_state) -> Path:
    """Write checkpoint-STEP (atomically: a half-written one is never picked up), then prune old ones."""
    payload = {"format": FORMAT, "version": VERSION, "model": trainable, "optimizer": optimizer_state,
               "progress": asdict(progress), "rng": rng_state}
    return manager(output).save(progress.step, payload)


def load(folder: Path) -> dict:
    """The verified payload of a checkpoint folder; a truncated or corrupted one is one `UserError` line."""
    state = manager(folder.parent).load(folder, FIX)
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise UserError(f"{folder / 'state.pt'} was written by another version of llm-deeper (format {state.get('format')!r}, version {state.get('version')!r}): {FIX}")
    try:
        state["progress"] = Progress(**state["progress"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{folder / 'state.pt'} has an unreadable progress record ({exc}): {FIX}") from exc
    return state
