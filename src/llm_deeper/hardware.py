"""What the machine computes natively, for choices like the fine-tuning dtype."""

from __future__ import annotations

import functools
import os
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


@functools.lru_cache(maxsize=1)
def bf16_matmul_pays() -> bool:
    """Is a bfloat16 matmul actually faster than fp32 here? Flags are not enough: measured once per machine.

    On an AMD EPYC with AVX512-BF16, bf16 autocast made TinyGPT's step ~1.6×
    faster; on an Intel Xeon VM advertising the same flag, oneDNN's bf16 matmul
    ran at half the fp32 rate (21 vs 43 GFLOP/s, 768×128 @ 128×704, one thread).
    So: the flag first, then ~10-20 ms of alternating fp32/bf16 matmuls at a
    training-like shape; bf16 must win clearly (≥ 1.2×) to be chosen. The answer
    is kept in the artifact home per CPU and torch version: a timing can flip on a
    busy machine, and every process (torchrun ranks, a resumed run) must agree.
    """
    if not native_bf16():
        return False
    import torch

    if torch.cuda.is_available():
        return True  # GPUs with bf16 support run it at least as fast as fp32
    import json

    from .paths import home

    key = f"{_cpu_model()} | torch {torch.__version__}"
    cache = home() / "hardware.json"
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), bool):
        return known[key]
    answer = _measure_bf16_matmul()
    known[key] = answer
    tmp = cache.with_name(f".hardware.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
    tmp.replace(cache)
    return answer


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor() or platform.machine()


def _measure_bf16_matmul() -> bool:
    import time

    import torch

    a32, b32 = torch.randn(384, 128), torch.randn(128, 384)  # ~38 MFLOP: about 1 ms in fp32
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    best = {"fp32": float("inf"), "bf16": float("inf")}
    for _ in range(5):
        for name, (a, b) in (("fp32", (a32, b32)), ("bf16", (a16, b16))):
            start = time.perf_counter()
            a @ b
            best[name] = min(best[name], time.perf_counter() - start)
    return best["bf16"] * 1.2 < best["fp32"]
