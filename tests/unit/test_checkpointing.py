"""The shared checkpoint manager: checksums catch flipped bytes, stale temp files go, truncation is one line."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from conftest import run_cli
from llm_deeper.errors import UserError
from llm_deeper.train.checkpointing import StepCheckpoints, content_digest, load_verified, remove_stale_temps, save_atomic

FIX = "train again"


def payload() -> dict:
    torch.manual_seed(0)
    return {"model": {"w": torch.randn(64, 64), "b": torch.randn(64).to(torch.bfloat16)}, "step": 3, "losses": [2.5, 2.25], "rng": torch.get_rng_state()}


def test_round_trip_keeps_every_value(tmp_path):
    saved = payload()
    save_atomic(tmp_path / "c.pt", saved)
    loaded = load_verified(tmp_path / "c.pt", "checkpoint", FIX)
    assert content_digest(loaded) == content_digest(saved)
    assert torch.equal(loaded["model"]["w"], saved["model"]["w"]) and loaded["losses"] == [2.5, 2.25]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_digest_sees_a_single_changed_value():
    a, b = payload(), payload()
    assert content_digest(a) == content_digest(b)
    b["model"]["w"][3, 7] += 1e-7
    assert content_digest(a) != content_digest(b)
    c = payload()
    c["losses"][1] = 2.2500001
    assert content_digest(a) != content_digest(c)


def test_flipped_bytes_fail_with_one_clear_line(tmp_path):
    path = save_atomic(tmp_path / "c.pt", payload())
    raw = bytearray(path.read_bytes())
    rng = random.Random(0)
    for offset in rng.sample(range(len(raw) // 4, len(raw) // 2), 400):  # inside the tensor data
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(UserError) as caught:
        load_verified(path, "checkpoint", FIX)
    message = str(caught.value)
    assert "corrupted" in message and "\n" not in message and FIX in message


def test_truncated_file_fails_with_one_clear_line(tmp_path):
    path = save_atomic(tmp_path / "c.pt", payload())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupted") as caught:
        load_verified(path, "checkpoint", FIX)
    assert "\n" not in str(caught.value)


def test_a_file_without_checksum_is_refused(tmp_path):
    torch.save({"model": {}}, tmp_path / "old.pt")
    with pytest.raises(UserError, match="no checksum"):
        load_verified(tmp_path / "old.pt", "checkpoint", FIX)


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".checkpoint.pt.{dead}.tmp"
    stale.write_bytes(b"half a checkpoint")
    alive = tmp_path / f".checkpoint.pt.{os.getppid()}.tmp"  # a writer that still runs: left alone
    alive.write_bytes(b"being written")
    keep = tmp_path / "notes.tmp"
    keep.write_text("not ours")
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and keep.exists()


def test_step_checkpoints_keep_the_newest(tmp_path):
    manager = StepCheckpoints(tmp_path, keep=2)
    for step in (1, 2, 3):
        manager.save(step, {"step": step})
    assert [p.name for p in manager.all()] == ["checkpoint-2", "checkpoint-3"]
    assert manager.load(manager.latest(), FIX)["step"] == 3
    (tmp_path / "checkpoint-4").mkdir()  # a folder whose state never got renamed into place is no checkpoint
    assert manager.latest().name == "checkpoint-3"
    manager.clear()  # a finished run leaves no checkpoint folder, not even a killed writer's empty one
    assert not list(tmp_path.glob("checkpoint-*"))


def test_finetune_resume_from_a_truncated_state_is_one_line_exit_2(tiny_llama_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say {i}", "completion": f"{i}"}) + "\n" for i in range(8)))
    common = ["finetune", "--data", str(data), "--model", str(tiny_llama_dir), "--method", "lora", "--max-length", "32",
              "--batch-size", "2", "--dtype", "float32", "--output", str(tmp_path / "out")]
    first = run_cli(*common, "--save-every", "1", "--max-steps", "4", env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr[-2000:]
    # A finished run removes its checkpoints; write one the way an interrupted run leaves it.
    from llm_deeper.finetune import checkpoint

    state = checkpoint.save(tmp_path / "out", checkpoint.Progress(step=2), {}, {"state": {}, "param_groups": []}, torch.get_rng_state()) / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    resumed = run_cli(*common, "--resume", env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 2, resumed.stderr[-2000:]
    lines = [line for line in resumed.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in resumed.stderr
    assert "state.pt" in lines[0] and "truncated or corrupted" in lines[0]
