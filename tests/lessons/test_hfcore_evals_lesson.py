"""Lesson hfcore/06_evals.py runs as a script in quick mode and prints its key checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LESSON = Path(__file__).resolve().parents[2] / "src" / "hfcore" / "06_evals.py"
KEY_LINES = [
    "✓ ROUGE prefers the wrong copy to the right paraphrase",
    "✓ the paraphrase gains much more from BERTScore than from ROUGE",
    "✓ a negation that flips the meaning still scores above 0.9",
    "✓ the library's mean NLL equals the by-hand one",
    "✓ a uniform model's perplexity equals its vocabulary size",
    "✓ per byte, SmolLM2 is better: bits per byte puts both on one scale",
    "✓ parallel calls match as a set, in any order",
    "| metric | base | lora | Δ lora − base |",
    "compare.png",
    "✓ the loaded model is the base model again after the LoRA run",
]


@pytest.mark.slow
def test_evals_lesson_runs_and_prints_its_checks():
    result = subprocess.run([sys.executable, str(LESSON)], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "LLM_DEEPER_QUICK": "1"}, cwd=LESSON.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in KEY_LINES:
        assert line in result.stdout, line
    assert "Done: " in result.stdout and "✗" not in result.stdout
