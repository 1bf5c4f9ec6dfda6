"""Lessons inferencing_and_advanced/01 (PEFT ⇄ MLX) and 02 (MLX LoRA) run top to bottom in quick mode (tiny random model)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

from llm_deeper.convert.mlx_runtime import mlx_status

MLX_OK, MLX_REASON = mlx_status()
pytestmark = pytest.mark.skipif(not MLX_OK, reason=MLX_REASON)


def run_lesson(name: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLM_DEEPER_QUICK": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(REPO / "src" / "inferencing_and_advanced" / name)], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def assert_ran(done: subprocess.CompletedProcess, *lines: str) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done:" in done.stdout and "✗" not in done.stdout
    for line in lines:
        assert line in done.stdout, line


def test_01_peft_to_mlx_quick():
    assert_ran(run_lesson("01_peft_to_mlx.py"), "lora_a is lora_A transposed, bit for bit", "mlx-lm's ΔW equals PEFT's in every module",
               "mlx-lm's logits equal PEFT's (fp32)", "PEFT → MLX → PEFT gives the same tensors, bit for bit")


def test_02_mlx_lora_quick():
    assert_ran(run_lesson("02_mlx_lora.py"), "mlx-lm wrote an adapter", "the streamed pieces add up to the decoded tokens",
               "mlx-lm's server answered through the openai client", "PEFT with the converted adapter gives mlx-lm's logits",
               "our server serves the mlx-trained adapter by name")
