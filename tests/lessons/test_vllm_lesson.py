"""Lesson inferencing_and_advanced/07 runs in quick mode against the session's vLLM (started once for all vLLM tests)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_vllm_lesson_runs(vllm_server):
    env = {**os.environ, "LLM_DEEPER_QUICK": "1", "LLM_DEEPER_VLLM_BASE_URL": vllm_server.base_url,
           "LLM_DEEPER_VLLM_ADAPTER": str(vllm_server.adapter_dir)}
    result = subprocess.run([sys.executable, str(REPO / "src" / "inferencing_and_advanced" / "07_vllm_cuda_plus_tools.py")],
                            capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "Done:" in result.stdout
    for line in ("vLLM accepts the adapter as it is", "vLLM serves the base model and the adapter by name",
                 "every failure is a known vLLM behaviour", "vLLM", "ours"):
        assert line in result.stdout
    # The lesson runs the conformance suite against the session's vLLM (once per run: no second copy in e2e/);
    # with the hermes parser, tool_choice auto must pass there.
    assert "pass  tool_choice auto" in result.stdout, result.stdout[-4000:]
