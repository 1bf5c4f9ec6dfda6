"""What the machine computes natively, for choices like the fine-tuning dtype."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Does this machine multiply bfloat16 matrices in hardware?

    A CUDA GPU with bf16, an x86 CPU with AVX512-BF16 or AMX, or an Arm CPU
    with the BF16 extension. Elsewhere PyTorch emulates bf16, slower than fp32.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if sys.platform == "darwin":
        try:
            found = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return False
        return found.stdout.strip() == "1"
    try:
        with open("/proc/cpuinfo") as handle:
            flags = set(handle.read().split())
    except OSError:
        return False
    if platform.machine() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)
