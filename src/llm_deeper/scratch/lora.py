"""LoRA from scratch: a low-rank update beside a frozen linear layer.

A linear layer computes y = x Wᵀ (+ b) with W of shape [out, in]. LoRA keeps W
frozen and learns ΔW = (alpha / r) · B A, with A [r, in] and B [out, r], so a
layer trains r · (in + out) numbers instead of in · out. B starts at zero, so
the model is unchanged before the first step; A starts random (the same
Kaiming-uniform draw as `nn.Linear` and PEFT), so gradients reach B at once.

After training, ΔW can be added into W (merge): the model runs at the base
model's speed with no extra layer. Subtracting it again (unmerge) gives the
base weights back, up to float rounding.

This file uses torch only; `tests/parity/test_lora_parity.py` checks that it
gives PEFT's outputs and merged weights for the same A and B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen `nn.Linear` plus a trainable low-rank update (alpha / r) · B A."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.base = base
        for p in base.parameters():  # the whole point: the base layer never trains
            p.requires_grad_(False)
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank  # makes the update's size independent of r for a fixed alpha
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and PEFT) initialise A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # dropout on the LoRA input only
        self.merged = False  # True while ΔW is folded into base.weight

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (alpha / r) · B A, shape [out, in] like the base weight."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:  # ΔW is already inside base.weight
            return y
        # x A^T B^T costs r·(in+out) per token, never materialising ΔW.
        return y + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the base weight (idempotent)."""
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of the base weight (idempotent)."""
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"in={self.base.in_features}, out={self.base.out_features}, rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def matches_target(name: str, targets: list[str]) -> bool:
    """PEFT's rule for a list of names: the module's own name (last part) is listed, or its full dotted path ends with one."""
    return any(name == t or name.endswith("." + t) for t in targets)


def inject_lora(model: nn.Module, target_modules: list[str], rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, seed: int | None = None) -> list[str]:
    """Freeze every parameter of `model`, then wrap each targeted `nn.Linear` in a `LoRALinear`.

    Returns the dotted names of the wrapped layers (in model order). Raises
    ValueError when no linear layer matches, the mistake that otherwise trains nothing.
    """
    if seed is not None:
        torch.manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and matches_target(name, target_modules)]
    if not targets:
        linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no linear layer matches {target_modules}; this model's linear layers are named {linear}")
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), rank=rank, alpha=alpha, dropout=dropout))
    return targets


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The LoRA layers of a model by dotted name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer into its base weight."""
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo `merge_lora`."""
    for layer in lora_layers(model).values():
        layer.unmerge()


def unload_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Replace each LoRA layer by its plain base linear (merged first unless merge=False)."""
    for name, layer in lora_layers(model).items():
        if merge:
            layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.base)
    return model


@dataclass
class TrainableReport:
    """How many parameters train, of how many."""

    trainable: int  # parameters with requires_grad
    total: int  # all parameters (the base model + LoRA)

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:
        return f"trainable params: {self.trainable:,} || all params: {self.total:,} || trainable%: {self.percent:.4f}"


def trainable_report(model: nn.Module) -> TrainableReport:
    """Count trainable vs all parameters (the same figures PEFT prints)."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:  # tied weights count once
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return TrainableReport(trainable, total)


def lora_parameter_count(in_features: int, out_features: int, rank: int) -> int:
    """Numbers a LoRA update of rank r trains for one [out, in] weight: r·(in + out)."""
    return rank * (in_features + out_features)
