"""Which number format a run computes in: bf16 where the hardware runs it faster than fp32.

On a CPU with AVX512-BF16/AMX (or a GPU with bf16), bfloat16 matmuls can run
at about twice the fp32 rate, and autocast keeps the weights, the optimizer
and the loss in fp32, so training stays as stable as fp32 (TinyGPT on Tiny
Shakespeare: val loss 1.656 vs 1.652). Without those units torch emulates
bf16, slower than fp32; and one CPU that has the flag ran bf16 matmuls at
half the fp32 rate. So "auto" asks `hardware.bf16_matmul_pays` (the flag,
then a 20 ms measurement). Fine-tuning and TinyGPT both ask here.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from ..errors import UserError

DTYPES = ("auto", "bfloat16", "float32")


def resolve_dtype(requested: str | None, device: torch.device | str = "cpu") -> str:
    """"auto"/None → "bfloat16" where `device` multiplies bf16 faster than fp32, else "float32"."""
    if requested in (None, "auto"):
        from .. import hardware

        if torch.device(device).type == "cuda":
            return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
        return "bfloat16" if not torch.cuda.is_available() and hardware.bf16_matmul_pays() else "float32"
    if requested not in DTYPES:
        raise UserError(f"--dtype {requested!r}: use auto, bfloat16 or float32")
    return requested


def autocast_for(dtype: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts: bf16 for forward matmuls, nothing for fp32."""
    if dtype == "bfloat16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
