"""Tool-calling lessons (src/inferencing_and_advanced/04, 05) run as scripts in quick mode."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEEK = REPO / "src" / "inferencing_and_advanced"

KEY_LINES = {
    "04_tool_calling_basic.py": [
        "✓ Literal became an enum",
        "✓ the constrained output parses as exactly one tool call",
        "✓ its arguments match the schema of",
        "✓ the executor validated and ran the call",
        "✓ the model answered in text after reading the tool result",
    ],
    "05_tool_calling_advanced.py": [
        "✓ the invalid call never ran: it came back as invalid_arguments",
        "✓ the calculator worked it out: 12 + 30 = 42",
        "✓ every call matched its tool's schema",
        "✓ the loop ended with a text answer",
        "✓ the deltas add up to the call parsed from the whole text",
        'delta.tool_calls: [{"index": 0, "id": "call_',
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KEY_LINES))
def test_tool_lesson_runs_and_prints_its_checks(name):
    # One torch thread: on a busy shared 2-core machine it is many times faster than two.
    env = {**os.environ, "LLM_DEEPER_QUICK": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(WEEK / name)], capture_output=True, text=True, timeout=600, env=env, cwd=WEEK)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "✗" not in result.stdout
    for line in KEY_LINES[name]:
        assert line in result.stdout, f"{name} did not print {line!r}"
    done = re.search(r"Done: (\d+) checks passed", result.stdout)
    assert done and int(done.group(1)) >= 10, result.stdout[-500:]
