"""SIGKILL a real training run at several moments; `--resume` always continues, and ends where an unkilled run ends.

Checkpoints are written every step, so many kills land in the middle of a
save: the atomic write must leave the previous checkpoint readable, and the
next start must clear the killed writer's temporary file. Each kill waits for
that start's own first save, so it lands mid-training (never mid-import); the
unkilled reference run trains at the same time on the core the kills leave idle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llm_deeper", *args], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def newest_save(paths) -> int:
    """The newest modification time (ns) among the checkpoint files, 0 when there is none yet."""
    newest = 0
    for path in paths():
        try:
            newest = max(newest, path.stat().st_mtime_ns)
        except FileNotFoundError:  # pruned by the run between listing and stat
            pass
    return newest


def kill_after_next_checkpoint(proc: subprocess.Popen, saved_since_start, delay: float) -> bool:
    """SIGKILL `proc` `delay` s after it wrote its first checkpoint (so the kill lands mid-training, not mid-import); False when it finished first."""
    deadline = time.monotonic() + 120
    while not saved_since_start() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def run_with_kills(args: list[str], checkpoints, delays: list[float]) -> int:
    """Start, kill at each delay after the start's first own checkpoint, resume; returns how many kills landed. Every restart must succeed."""
    kills = 0
    for delay in delays:
        before = newest_save(checkpoints)
        proc = start(args + (["--resume"] if before else []))
        if kill_after_next_checkpoint(proc, lambda: newest_save(checkpoints) > before, delay):
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read()[-2000:]
            return kills
    final = subprocess.run([sys.executable, "-m", "llm_deeper", *args, "--resume"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "corrupt" not in final.stderr
    return kills


def start_reference(args: list[str], log: Path) -> subprocess.Popen:
    """The unkilled reference run, started first: it trains on the core the kill sequence leaves idle (stderr to a file, so no pipe fills)."""
    return subprocess.Popen([sys.executable, "-m", "llm_deeper", *args], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def finish(proc: subprocess.Popen, log: Path) -> None:
    assert proc.wait(timeout=300) == 0, log.read_text()[-2000:]


def test_tinygpt_killed_at_several_moments_resumes_to_the_same_weights(tmp_path):
    from llm_deeper.train.tinygpt.checkpoint import load_checkpoint

    text = tmp_path / "t.txt"
    text.write_text("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40)
    common = ["tinygpt", "train", "--text", str(text), "--tokenizer", "char", "--layers", "1", "--heads", "2", "--embd", "32",
              "--context", "16", "--batch-size", "4", "--steps", "150", "--warmup", "5", "--eval-every", "50",
              "--checkpoint-every", "1", "--threads", "1", "--dtype", "float32"]
    straight = start_reference([*common, "--out", str(tmp_path / "straight")], tmp_path / "straight.log")
    run = tmp_path / "killed"
    kills = run_with_kills([*common, "--out", str(run)], lambda: [run / "checkpoint.pt"], [0.05, 0.2])
    finish(straight, tmp_path / "straight.log")
    assert kills >= 2  # the run really was interrupted twice, each time mid-training (~0.05 and ~0.2 s after that start's first save)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(run)
    assert b["step"] == 150 and a["losses"] == b["losses"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # killed writers' temp files were cleared


@pytest.mark.usefixtures("tiny_llama_dir")
def test_finetune_killed_mid_training_resumes_to_the_same_adapter(tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say {i}" + " x" * (i % 3), "completion": f"{i}"}) + "\n" for i in range(16)))
    common = ["finetune", "--data", str(data), "--model", str(tiny_llama_dir), "--method", "lora", "--max-length", "32", "--lr", "1e-2",
              "--batch-size", "2", "--epochs", "8", "--save-every", "1", "--dtype", "float32", "--dropout", "0.1"]
    straight = start_reference([*common, "--output", str(tmp_path / "straight")], tmp_path / "straight.log")
    out = tmp_path / "killed"
    kills = run_with_kills([*common, "--output", str(out)], lambda: list(out.glob("checkpoint-*/state.pt")), [0.1])
    finish(straight, tmp_path / "straight.log")
    assert kills == 1  # killed mid-training, 0.1 s after its first save (the TinyGPT test above kills at two moments)
    a = json.loads((tmp_path / "straight" / "train_result.json").read_text())
    b = json.loads((out / "train_result.json").read_text())
    assert b["steps"] == a["steps"] == 64 and b["train_losses"] == pytest.approx(a["train_losses"], abs=1e-6)  # same kernels, same order: exact
    wa, wb = (load_file(Path(f) / "adapter_model.safetensors") for f in (tmp_path / "straight", out))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert not list(out.glob("checkpoint-*"))  # the finished run removed its checkpoints
