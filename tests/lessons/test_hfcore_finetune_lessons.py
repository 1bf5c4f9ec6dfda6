"""hfcore lessons 01-05 run top to bottom (03-05 in quick mode on a tiny random model)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO


def run_lesson(name: str, quick: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLM_DEEPER_QUICK": "1" if quick else "0", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(REPO / "src" / "hfcore" / name)], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def assert_ran(done: subprocess.CompletedProcess, *lines: str) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done:" in done.stdout and "✗" not in done.stdout
    for line in lines:
        assert line in done.stdout, line


@pytest.mark.slow
def test_01_transformers():
    assert_ran(run_lesson("01_transformers.py", quick=False), "the most likely next token is ' Paris'", "greedy decoding is deterministic")


@pytest.mark.slow
def test_02_peft_lora():
    assert_ran(run_lesson("02_peft_lora.py", quick=False), "our logits equal PEFT's", "unmerge gives the base weights back", "the adapter learned the new answer")


def test_03_to_05_quick_chain():
    assert_ran(run_lesson("03_dataset_plus_finetune_full.py", quick=True), "the end-of-turn token is a target", "a full fine-tune trains 100% of the weights")
    assert_ran(run_lesson("04_dataset_plus_finetune_lora.py", quick=True), "a standard PEFT adapter", "both runs start from the same held-out loss")
    assert_ran(run_lesson("05_finetuned_model_inference.py", quick=True), "merged gives the loaded adapter's logits", "switched off gives exactly the base model's logits")
