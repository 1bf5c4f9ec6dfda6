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
