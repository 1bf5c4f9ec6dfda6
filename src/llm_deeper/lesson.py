"""The small kit every lesson uses: sections, checked claims, quick mode, outputs.

A lesson prints each claim through `check`, which asserts it first, so a lesson
that runs to the end has proven everything it said.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

QUICK_ENV = "LLM_DEEPER_QUICK"
_started = time.perf_counter()
_checks = 0


def is_quick() -> bool:
    """True with `--quick` on the command line or LLM_DEEPER_QUICK=1 (tests use it)."""
    return "--quick" in sys.argv[1:] or os.environ.get(QUICK_ENV, "") not in ("", "0", "false")


def section(title: str) -> None:
    """Print a cell heading."""
    print(f"\n── {title} " + "─" * max(0, 70 - len(title)), flush=True)


def show(label: str, value) -> None:
    """Print a named value (shapes, numbers) aligned under the current section."""
    print(f"  {label}: {value}", flush=True)


def check(claim: str, condition: bool, detail: str = "") -> None:
    """Assert a claim and print it with a check mark; exit non-zero if it is false."""
    global _checks
    if not condition:
        print(f"  ✗ {claim}" + (f"  ({detail})" if detail else ""), flush=True)
        raise SystemExit(f"claim failed: {claim}")
    _checks += 1
    print(f"  ✓ {claim}" + (f"  ({detail})" if detail else ""), flush=True)


FP32_EPS = 2.0 ** -23  # 1.19e-7: the gap between 1.0 and the next fp32 number
FP64_EPS = 2.0 ** -52  # 2.2e-16


def sum_tolerance(terms: int, scale: float = 1.0, eps: float = FP32_EPS, safety: float = 4.0) -> float:
    """How far two evaluations of a sum of `terms` numbers of size ~`scale` may differ when they add in another order.

    Each addition rounds by up to eps relative; the errors are random-signed, so
    they grow like sqrt(terms) (a random walk), not like terms. Another CPU's
    kernels (AVX2 vs AVX-512, AMD vs Intel BLAS) add in another order, so a
    tolerance must come from this, never from what one machine gave.
    """
    return safety * eps * max(1, terms) ** 0.5 * scale


def logits_tolerance(reference, width: int, depth: int) -> float:
    """Allowed |Δ| between two fp32 forward passes that differ only in the order they add (cache or not, LoRA merged or
    not, another CPU): `width`-long dot products in each of `depth` layers, relative to the largest reference value."""
    return sum_tolerance(width * depth, scale=float(abs(reference).max()))


def close(a, b, atol: float = 1e-6) -> tuple[bool, str]:
    """(all close?, 'max |diff| = …') for numpy arrays or torch tensors."""
    import numpy as np

    def to_np(x):
        return x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)

    diff = float(np.max(np.abs(to_np(a) - to_np(b)))) if np.size(to_np(a)) else 0.0
    return diff <= atol, f"max |diff| = {diff:.2e}"


def output_dir(lesson: str) -> Path:
    """Folder for a lesson's artifacts (plots, checkpoints) under the base folder."""
    from .paths import artifact_dir

    return artifact_dir("lessons", lesson)


def saved(path: Path) -> None:
    """Print where an artifact was written."""
    print(f"  → wrote {path}", flush=True)


def done() -> None:
    """Print the closing line that tests look for, then the exercises that follow this lesson."""
    print(f"\nDone: {_checks} checks passed in {time.perf_counter() - _started:.1f} s", flush=True)
    script = Path(sys.argv[0]).resolve()
    if script.name[:2].isdigit():
        from .exercises import for_lesson

        for exercise in for_lesson(f"{script.parent.name}/{script.name[:2]}"):
            print(f"Exercise: {exercise.title} — llm-deeper lessons exercise {exercise.key}", flush=True)
