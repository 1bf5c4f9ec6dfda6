"""Held-out loss, shared by TinyGPT and fine-tuning: eval mode, no gradients, a token-weighted mean."""

from __future__ import annotations

from typing import Callable, Iterable

import torch


@torch.inference_mode()
def mean_loss(model: torch.nn.Module, batches: Iterable, loss_of: Callable[[object], tuple[torch.Tensor | float, int]]) -> float:
    """Σ loss / Σ count over `batches`; `loss_of(batch)` returns (summed loss, what it summed over).

    The model is put in eval mode (no dropout) and back in the mode it was in.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for batch in batches:
            loss, n = loss_of(batch)
            total, count = total + float(loss), count + int(n)
    finally:
        model.train(was_training)
    return total / max(count, 1)
