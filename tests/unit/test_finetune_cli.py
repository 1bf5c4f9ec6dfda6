"""`llm-deeper finetune`, `merge`, `data make-tools`, `data inspect` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, run_cli


def test_make_tools_finetune_merge(tiny_llama_dir, tmp_path):
    made = run_cli("data", "make-tools", "--out", str(tmp_path / "d"), "--n-train", "6", "--n-test", "2", "--distractors", "0", "--multi", "0.5")
    assert made.returncode == 0, made.stderr
    rows = [json.loads(line) for line in (tmp_path / "d" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and any(r["kind"] == "multi" for r in rows)
    # `data inspect` reads what `finetune` reads and writes nothing: it runs alongside, on the core the fine-tune leaves idle.
    inspecting = subprocess.Popen([sys.executable, "-m", "llm_deeper", "data", "inspect", str(tmp_path / "d" / "train.jsonl"),
                                   "--model", str(tiny_llama_dir), "--show", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    tuned = run_cli("finetune", "--data", str(tmp_path / "d" / "train.jsonl"), "--model", str(tiny_llama_dir), "--output", str(tmp_path / "a"),
                    "--max-length", "4096", "--batch-size", "3", "--max-steps", "1", "--lr", "1e-2")
    inspected_out, inspected_err = inspecting.communicate(timeout=300)
    assert inspecting.returncode == 0 and "trained (assistant) tokens" in inspected_out, inspected_err
    assert tuned.returncode == 0, tuned.stderr
    assert "PEFT adapter" in tuned.stdout and json.loads((tmp_path / "a" / "train_result.json").read_text())["steps"] == 1
    merged = run_cli("merge", "--model", str(tiny_llama_dir), "--adapter", str(tmp_path / "a"), "--output", str(tmp_path / "m"))
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_bad_input_is_one_line(tiny_llama_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"messages": [{"role": "user", "content": "q"}]}\n')
    done = run_cli("data", "inspect", str(bad), "--model", str(tiny_llama_dir))
    assert done.returncode == 2 and f"{bad}:2" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("finetune", "--data", str(bad), "--output", str(tmp_path / "x"), "--qlora")
    assert done.returncode == 2 and "CUDA" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("merge", "--adapter", str(tmp_path), "--output", str(tmp_path / "m"))
    assert done.returncode == 2 and "not a PEFT adapter folder" in done.stderr


def test_named_recipe_errors_are_one_line(tmp_path):
    """`finetune --recipe NAME` knows speedrun and full; a wrong name or a --data beside it says so before anything loads."""
    done = run_cli("finetune", "--recipe", "fast", "--output", str(tmp_path / "r"))
    assert done.returncode == 2 and "'fast' is not a recipe: use one of speedrun, full" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("finetune", "--recipe", "full", "--data", str(tmp_path / "x.jsonl"), "--output", str(tmp_path / "r"))
    assert done.returncode == 2 and "leave out --data" in done.stderr
    done = run_cli("finetune", "--output", str(tmp_path / "r"))
    assert done.returncode == 2 and "--data is required" in done.stderr and "--recipe speedrun|full" in done.stderr
    assert not (tmp_path / "r").exists()
