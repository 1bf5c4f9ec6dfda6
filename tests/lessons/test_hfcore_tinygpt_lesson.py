"""Lesson hfcore/00 (TinyGPT) runs as a script in quick mode and prints its checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LESSON = Path(__file__).resolve().parents[2] / "src" / "hfcore" / "00_tinygpt.py"
KEY_LINES = [
    "✓ no validation docstring appears in the training text",
    "✓ Hugging Face `tokenizers` with our vocab + merges gives the same ids",
    "✓ untrained loss ≈ ln(vocab)",
    "✓ validation loss fell well below chance",
    "✓ KV cache: same greedy tokens and logits as recomputing everything",
    "✓ transformers' logits equal TinyGPT's",
    "loss.png",
]


def test_tinygpt_lesson_runs_in_quick_mode():
    env = {**os.environ, "LLM_DEEPER_QUICK": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(LESSON)], capture_output=True, text=True, timeout=300, env=env, cwd=LESSON.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for line in KEY_LINES:
        assert line in proc.stdout, line
    assert "Done: " in proc.stdout and "checks passed" in proc.stdout
