"""Imports inside llm_deeper point one way: down DESIGN.md's layers, never up, no cycles (tools/check_layers.py)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_no_import_points_up_a_layer():
    run = subprocess.run([sys.executable, str(REPO / "tools" / "check_layers.py"), str(REPO / "src" / "llm_deeper")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def test_the_checker_sees_an_upward_import(tmp_path):
    """A lazy import inside a function counts: the checker reports it with file and line, and fails."""
    package = tmp_path / "llm_deeper"
    (package / "inference").mkdir(parents=True)
    (package / "serve").mkdir()
    (package / "inference" / "__init__.py").write_text("")
    (package / "serve" / "__init__.py").write_text("from ..inference import engine\n")
    (package / "inference" / "engine.py").write_text("def run():\n    from ..serve import app\n")
    run = subprocess.run([sys.executable, str(REPO / "tools" / "check_layers.py"), str(package)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "llm_deeper/inference/engine.py:2: inference (the engine) imports serve" in run.stdout
    assert "cycle: inference -> serve -> inference" in run.stdout
