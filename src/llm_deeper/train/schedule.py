"""Learning-rate schedules (shared by TinyGPT and fine-tuning): linear warmup, then decay.

Warmup avoids large updates while Adam's moment estimates are still noise;
the decay lets the loss settle into a minimum instead of bouncing. The rate
is a pure function of the step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, peak: float, floor: float, warmup: int, decay_steps: int) -> float:
    """Rate for optimizer step `step` (0-based): nanoGPT's warmup + cosine down to `floor` at `decay_steps`."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    if step >= decay_steps:
        return floor
    progress = (step - warmup) / max(1, decay_steps - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)


def warmup_linear(step: int, peak: float, warmup: int, total: int) -> float:
    """Rate for step `step`: linear warmup, then linear decay to zero at the last step (transformers' default)."""
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def lr_at(step: int, cfg) -> float:
    """TinyGPT's rate from its `TrainConfig`."""
    return warmup_cosine(step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.decay_steps)


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
