"""Lessons 00_base, 03_server and 06_serving_ideas run top to bottom (quick mode) and print their checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
@pytest.mark.parametrize("lesson, expected", [
    ("00_base.py", ["engine greedy == by-hand greedy", "the cache's real size matches the formula"]),
    ("03_server.py", ["streamed pieces == non-streamed text", "an unknown model is a 404"]),
    ("06_serving_ideas.py", ["✓ causal: tiled attention equals scaled_dot_product_attention", "✓ one decode step's attention over the pages equals",
                             "✓ the engine's prefix cache reuses the same full blocks as ours", "✓ continuous batching needs fewer decode steps",
                             "✓ prompt lookup, 2-grams: exactly the greedy tokens"]),
])
def test_lesson_runs(lesson, expected):
    result = subprocess.run([sys.executable, str(REPO / "src" / "inferencing_and_advanced" / lesson)], capture_output=True, text=True,
                            timeout=300, cwd=REPO, env={**os.environ, "LLM_DEEPER_QUICK": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done:" in result.stdout and "✗" not in result.stdout
    for line in expected:
        assert line in result.stdout
